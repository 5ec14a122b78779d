import { describe, expect, test } from "bun:test";
import { helpText, planFromArgs } from "../../src/cli/daemon-command.ts";
import { INTERFACE_VERSIONS } from "../../src/rules/interface-version.ts";
import { DEFAULTS } from "../../src/daemon/options.ts";

function run(args: string[]) {
  const plan = planFromArgs(args);
  if (plan.kind !== "run") throw new Error(`expected run, got ${JSON.stringify(plan)}`);
  return plan.options;
}
function error(args: string[]) {
  const plan = planFromArgs(args);
  if (plan.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(plan)}`);
  return plan.message;
}

describe("planFromArgs", () => {
  test("defaults are the original's", () => {
    expect(run([])).toEqual({
      ...DEFAULTS,
      controlAddresses: [...DEFAULTS.controlAddresses],
      ptpAddresses: [],
      interfaces: [],
      verbosity: 0,
    });
    expect(DEFAULTS).toMatchObject({
      interfaceVersion: 5,
      shmName: "/nqptp",
      controlPort: 9000,
      eventPort: 319,
      generalPort: 320,
      offsetFilter: "tracking",
      maxClients: 8,
    });
    expect(DEFAULTS.controlAddresses).toEqual(["127.0.0.1", "::1"]);
  });

  test("-V and --version, with the interface version chosen", () => {
    expect(planFromArgs(["-V"])).toEqual({ kind: "version", interfaceVersion: 5 });
    expect(planFromArgs(["--version", "--interface-version", "6"])).toEqual({ kind: "version", interfaceVersion: 6 });
  });

  test("-h and --help (an unknown option next to them is still an error)", () => {
    expect(planFromArgs(["-h"]).kind).toBe("help");
    expect(planFromArgs(["--help", "--bogus"]).kind).toBe("error");
  });

  test.each([
    [["-v"], 1],
    [["-vv"], 2],
    [["-vvv"], 3],
    [["-v", "-v"], 2],
    [["--verbose", "-vv"], 3],
  ])("%j raises verbosity to %d", (args, verbosity) => {
    expect(run(args).verbosity).toBe(verbosity);
  });

  test("options in both spellings", () => {
    const options = run(["--shm-name=/x", "--event-port", "1319", "--general-port=1320", "--control-port", "1900", "--ptp-address", "127.0.0.1,::1"]);
    expect(options).toMatchObject({ shmName: "/x", eventPort: 1319, generalPort: 1320, controlPort: 1900, ptpAddresses: ["127.0.0.1", "::1"] });
  });

  test("-V and -v group like the original's getopt; a value option given twice is refused", () => {
    expect(planFromArgs(["-vV"])).toEqual({ kind: "version", interfaceVersion: 5 });
    expect(error(["--shm-name=/a", "--shm-name=/b"])).toBe("option --shm-name is given twice");
  });

  test("the options returned are copies: changing one leaves the defaults alone", () => {
    const options = run([]);
    options.controlAddresses.push("10.0.0.1");
    expect(DEFAULTS.controlAddresses).toEqual(["127.0.0.1", "::1"]);
    expect(run([]).controlAddresses).toEqual(["127.0.0.1", "::1"]);
  });

  test("--offset-filter: either filter; tracking for every interface version when not given", () => {
    expect(run(["--offset-filter", "classic"]).offsetFilter).toBe("classic");
    expect(run(["--offset-filter=tracking", "--interface-version=10"]).offsetFilter).toBe("tracking");
    for (const version of INTERFACE_VERSIONS) {
      expect(run([`--interface-version=${version}`]).offsetFilter).toBe("tracking");
    }
    expect(error(["--offset-filter", "smooth"])).toBe('--offset-filter: "smooth" is not one of tracking, classic');
  });

  test("--max-clients: 1-64, default 8; accepted (and without effect) for interfaces 5 and 6 too", () => {
    expect(run([]).maxClients).toBe(8);
    expect(run(["--max-clients", "1"]).maxClients).toBe(1);
    expect(run(["--max-clients=64", "--interface-version", "10"]).maxClients).toBe(64);
    expect(run(["--max-clients=3", "--interface-version", "5"])).toMatchObject({ maxClients: 3, interfaceVersion: 5 });
  });

  test("--interface and -i: repeatable, in the order given, each once; none means every interface", () => {
    expect(run([]).interfaces).toEqual([]);
    expect(run(["-i", "eth0"]).interfaces).toEqual(["eth0"]);
    expect(run(["--interface", "wlan0", "-i", "eth0", "--interface=wlan0"]).interfaces).toEqual(["wlan0", "eth0"]);
  });

  test("--interface with --ptp-address is refused, saying why", () => {
    expect(error(["-i", "eth0", "--ptp-address", "10.0.0.2"])).toBe(
      "--interface and --ptp-address cannot be combined: --interface hears PTP on every address of the named interfaces, " +
        "whichever addresses they have now or get later; give one or the other",
    );
    expect(run(["--ptp-address", "10.0.0.2"])).toMatchObject({ ptpAddresses: ["10.0.0.2"], interfaces: [] });
  });

  test("--allow-remote-control is off unless given", () => {
    expect(run([]).allowRemoteControl).toBe(false);
    expect(run(["--allow-remote-control"]).allowRemoteControl).toBe(true);
  });

  test.each([
    [["--bogus"], 'unknown option "--bogus"'],
    [["-x"], 'unknown option "-x"'],
    [["stray"], 'unexpected argument "stray"'],
    [["--event-port"], "needs a value"],
    [["--event-port", "0"], "port number"],
    [["--event-port", "65536"], "port number"],
    [["--event-port", "31x"], "port number"],
    [["--control-port", "1e3"], '--control-port: "1e3" is not a port number 1-65535'],
    [["--event-port", "400", "--general-port", "400"], "must differ"],
    [["--interface-version", "7"], '--interface-version: "7" is not one of 5, 6, 8, 9, 10'],
    [["-V", "--interface-version", "7"], "is not one of 5, 6, 8, 9, 10"],
    [["--shm-name", "nqptp"], '--shm-name: "nqptp" does not begin with "/"'],
    [["--shm-name", "/a/b"], '--shm-name: "/a/b" has a "/" after the first character'],
    [["--shm-name", `/${"n".repeat(63)}`], "is 64 bytes of UTF-8, more than 63"],
    [["--shm-name", "/a b"], "holds a space"],
    [["--control-address", "localhost"], 'holds "localhost", which is not an IP address'],
    [["--control-address", ""], "option --control-address needs a value"],
    [["--control-address", ","], "names no address"],
    [["--ptp-address", "::1,10.0.0.300"], '--ptp-address: "::1,10.0.0.300" holds "10.0.0.300"'],
    [["--offset-filter", "kalman"], '--offset-filter: "kalman" is not one of tracking, classic'],
    [["--offset-filter"], "option --offset-filter needs a value"],
    [["--max-clients", "0"], '--max-clients: "0" is not a whole number 1-64'],
    [["--max-clients", "65"], "is not a whole number 1-64"],
    [["--max-clients", "8.0"], "is not a whole number 1-64"],
    [["--interface"], "option --interface needs a value"],
    [["-i="], "option -i needs a value"],
    [["-i", "eth0", "-i", "a/b"], '--interface: "a/b" holds "/", which an interface name cannot hold'],
    [["-i", "wlan0wlan0wlan0x"], '--interface: "wlan0wlan0wlan0x" is 16 bytes long; an interface name is at most 15'],
    [["-ieth0"], 'option -i takes a value, so it cannot be grouped (in "-ieth0")'],
  ])("%j is refused (%s)", (args, message) => {
    expect(error(args)).toContain(message);
  });
});

test("the help names every option and the subcommands", async () => {
  const help = await helpText();
  for (const word of [
    "--interface-version",
    "--shm-name",
    "--control-port",
    "--control-address",
    "--event-port",
    "--general-port",
    "--ptp-address",
    "-i, --interface",
    "--allow-remote-control",
    "--offset-filter=<tracking|classic>",
    "--max-clients",
    "status",
    "install",
    "uninstall",
  ]) {
    expect(help).toContain(word);
  }
  expect(help).toContain("classic is the original's rules (default: tracking)");
  expect(help).toContain("no effect on 5 and 6 (one client)");
});
