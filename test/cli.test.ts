import { describe, expect, test } from "bun:test";
import { DEFAULTS, helpText, planFromArgs } from "../src/cli.ts";

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
    expect(run([])).toEqual({ ...DEFAULTS, verbosity: 0 });
    expect(DEFAULTS).toMatchObject({ interfaceVersion: 5, shmName: "/nqptp", controlPort: 9000, eventPort: 319, generalPort: 320 });
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
    [["--event-port", "400", "--general-port", "400"], "must differ"],
    [["--interface-version", "7"], "must be one of 5, 6, 8, 9, 10"],
    [["--shm-name", "nqptp"], "--shm-name"],
    [["--shm-name", "/a/b"], "--shm-name"],
    [["--control-address", "localhost"], "not an IP address"],
    [["--control-address", ""], "at least one address"],
  ])("%j is refused (%s)", (args, message) => {
    expect(error(args)).toContain(message);
  });
});

test("the help names every option and the subcommands", async () => {
  const help = await helpText();
  for (const word of ["--interface-version", "--shm-name", "--control-port", "--control-address", "--event-port", "--general-port", "--ptp-address", "--allow-remote-control", "status", "install", "uninstall"]) {
    expect(help).toContain(word);
  }
});
