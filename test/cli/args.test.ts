import { describe, expect, test } from "bun:test";
import type { ArgsDef } from "citty";
import {
  integerIn,
  oneOf,
  parseCommandLine,
  parseInterfaceName,
  parseInterfaceVersion,
  parseIpAddress,
  parseIpAddressList,
  parsePort,
  parseSeconds,
  parseShmNameOption,
  usageError,
  type CommandLine,
  type Validator,
} from "../../src/cli/args.ts";
import { INTERFACE_VERSIONS } from "../../src/rules/interface-version.ts";

const accepts = <T>(validate: Validator<T>, text: string): T => {
  const parsed = validate(text);
  if (!parsed.ok) throw new Error(`${JSON.stringify(text)} refused: ${parsed.reason}`);
  return parsed.value;
};
const refuses = <T>(validate: Validator<T>, text: string): string => {
  const parsed = validate(text);
  if (parsed.ok) throw new Error(`${JSON.stringify(text)} accepted as ${JSON.stringify(parsed.value)}`);
  return parsed.reason;
};

describe("validators", () => {
  test("ports: 1-65535 in digits only", () => {
    expect(accepts(parsePort, "1")).toBe(1);
    expect(accepts(parsePort, "65535")).toBe(65535);
    expect(accepts(parsePort, "09000")).toBe(9000);
    for (const text of ["0", "65536", "1e3", "0x50", "-1", "+80", "80.0", " 80", "80 ", "", "Infinity", "99999999999999999999"]) {
      expect(refuses(parsePort, text)).toBe("is not a port number 1-65535");
    }
  });

  test("integerIn", () => {
    const clients = integerIn(1, 64);
    expect(accepts(clients, "64")).toBe(64);
    expect(refuses(clients, "65")).toBe("is not a whole number 1-64");
    expect(refuses(clients, "0")).toBe("is not a whole number 1-64");
    expect(refuses(clients, "2.5")).toBe("is not a whole number 1-64");
  });

  test("seconds: digits and an optional fraction", () => {
    expect(accepts(parseSeconds, "5")).toBe(5);
    expect(accepts(parseSeconds, "0")).toBe(0);
    expect(accepts(parseSeconds, "0.25")).toBe(0.25);
    for (const text of ["1e3", "-1", ".5", "5.", "NaN", "Infinity", "5s", "", `1${"0".repeat(400)}`]) {
      expect(refuses(parseSeconds, text)).toContain("is not a number of seconds");
    }
  });

  test("interface versions: exactly those src/rules/interface-version.ts lists", () => {
    for (const version of INTERFACE_VERSIONS) expect(accepts(parseInterfaceVersion, String(version))).toBe(version);
    for (const text of ["7", "4", "11", "5.0", "1e1", "+5", "ten", ""]) {
      expect(refuses(parseInterfaceVersion, text)).toBe(`is not one of ${INTERFACE_VERSIONS.join(", ")}`);
    }
  });

  test("one IP address, canonical", () => {
    expect(accepts(parseIpAddress, "::1")).toBe("::1");
    expect(accepts(parseIpAddress, "[FE80::0:1]")).toBe("fe80::1");
    expect(accepts(parseIpAddress, "::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(refuses(parseIpAddress, "localhost")).toBe("is not an IP address");
    expect(refuses(parseIpAddress, "127.0.0.1,::1")).toBe("is not an IP address");
  });

  test("IP address lists: canonical, each once, at least one", () => {
    expect(accepts(parseIpAddressList, "127.0.0.1,::1")).toEqual(["127.0.0.1", "::1"]);
    expect(accepts(parseIpAddressList, "0:0::1,::1,,127.0.0.1,")).toEqual(["::1", "127.0.0.1"]);
    expect(refuses(parseIpAddressList, "127.0.0.1,localhost")).toBe('holds "localhost", which is not an IP address');
    expect(refuses(parseIpAddressList, ",")).toBe("names no address");
  });

  test("shared-memory names, by src/rules/shm-name.ts's rule", () => {
    expect(accepts(parseShmNameOption, "/nqptp")).toBe("/nqptp");
    expect(refuses(parseShmNameOption, "/a/b")).toStartWith('has a "/" after the first character; a name is "/" and 1 to 62 more bytes');
    expect(refuses(parseShmNameOption, `/${"x".repeat(63)}`)).toStartWith("is 64 bytes of UTF-8");
  });

  test("network interface names: what the kernel accepts as one (dev_valid_name, and the names it reserves)", () => {
    for (const name of [
      "eth0",
      "wlan0",
      "enp3s0f1",
      "br-1a2b3c4d5e6f",
      "veth1234567890a",
      "wg0",
      "-lead",
      "a,b",
      "a$b",
      "é1",
      "eth0.100",
      "a\u0001b",
    ]) {
      expect(accepts(parseInterfaceName, name)).toBe(name);
    }
    expect(accepts(parseInterfaceName, "x".repeat(15))).toBe("x".repeat(15));
    expect(refuses(parseInterfaceName, "x".repeat(16))).toBe("is 16 bytes long; an interface name is at most 15");
    // 8 two-byte characters: 16 bytes of UTF-8, though 8 characters.
    expect(refuses(parseInterfaceName, "é".repeat(8))).toBe("is 16 bytes long; an interface name is at most 15");
    for (const name of [".", "..", "all", "default"]) expect(refuses(parseInterfaceName, name)).toBe("cannot be an interface name");
    for (const [name, bad] of [
      ["eth0/1", "/"],
      ["eth0:1", ":"],
      ["eth%d", "%"],
      ["eth 0", " "],
      ["eth\t0", "\t"],
      ["eth\n", "\n"],
      ["\r", "\r"],
    ]) {
      expect(refuses(parseInterfaceName, name!)).toBe(`holds ${JSON.stringify(bad)}, which an interface name cannot hold`);
    }
    // The kernel's isspace() counts byte 0xA0 (no-break space in Latin-1); "à" is C3 A0 in UTF-8.
    for (const name of ["a\u00a0b", "à"]) {
      expect(refuses(parseInterfaceName, name)).toBe("holds byte 0xA0 (which the kernel counts as white space), so it cannot be an interface name");
    }
  });

  test("oneOf", () => {
    const filter = oneOf(["tracking", "classic"]);
    expect(accepts(filter, "classic")).toBe("classic");
    expect(refuses(filter, "Classic")).toBe("is not one of tracking, classic");
  });

  test("the usage error: what, then where to look", () => {
    expect(usageError("nqptp status", 'unknown option "--x"')).toBe('nqptp status: unknown option "--x"\nTry "nqptp status --help".');
  });
});

const defs = {
  name: { type: "string" },
  port: { type: "string" },
  verbose: { type: "boolean", alias: ["v"] },
  version: { type: "boolean", alias: ["V"] },
  help: { type: "boolean", alias: ["h"] },
} as const satisfies ArgsDef;

function line(args: string[]): CommandLine {
  const parsed = parseCommandLine(args, defs);
  if (!parsed.ok) throw new Error(`refused: ${parsed.reason}`);
  return parsed.line;
}
function refused(args: string[]): string {
  const parsed = parseCommandLine(args, defs);
  if (parsed.ok) throw new Error(`accepted ${JSON.stringify(args)}`);
  return parsed.reason;
}

describe("parseCommandLine", () => {
  test("--opt value and --opt=value both work", () => {
    expect(line(["--name", "/a"]).value("name")).toBe("/a");
    expect(line(["--name=/a"]).value("name")).toBe("/a");
    expect(line(["--name=a=b"]).value("name")).toBe("a=b");
    expect(line(["--name=-x"]).value("name")).toBe("-x");
    expect(line([]).value("name")).toBeUndefined();
  });

  test("flags, their aliases, clusters and counts", () => {
    const l = line(["-vv", "--verbose", "-V", "-hv"]);
    expect(l.count("verbose")).toBe(4);
    expect(l.flag("version")).toBe(true);
    expect(l.flag("help")).toBe(true);
    expect(line([]).flag("help")).toBe(false);
    expect(line([]).count("verbose")).toBe(0);
  });

  test.each([
    [["--bogus"], 'unknown option "--bogus"'],
    [["--bogus=1"], 'unknown option "--bogus"'],
    [["-x"], 'unknown option "-x"'],
    [["-vx"], 'unknown option "-x" (in "-vx")'],
    [["stray"], 'unexpected argument "stray"'],
    [["--name", "/a", "stray"], 'unexpected argument "stray"'],
    [["-"], 'unexpected argument "-"'],
    [["--"], 'unexpected argument "--"'],
    [["--name"], "option --name needs a value"],
    [["--name="], "option --name needs a value"],
    [["--name", ""], "option --name needs a value"],
    [["--name", "--port", "1"], "option --name needs a value"],
    [["--name", "-v"], "option --name needs a value"],
    [["--verbose=2"], "option --verbose takes no value"],
    [["-v=2"], "option -v takes no value"],
    [["--name=/a", "--name", "/b"], "option --name is given twice"],
    [["--no-verbose"], 'unknown option "--no-verbose"'],
    [["--Name=/a"], 'unknown option "--Name"'],
  ])("%j is refused (%s)", (args, reason) => {
    expect(refused(args)).toBe(reason);
  });

  test("a repeatable option: every value in order, each once; others are still refused twice", () => {
    const parsed = parseCommandLine(["--name", "b", "--port=1", "--name=a", "--name", "b"], defs, ["name"]);
    if (!parsed.ok) throw new Error(parsed.reason);
    const identity = (text: string) => ({ ok: true as const, value: text });
    expect(parsed.line.takeEach("name", identity)).toEqual(["b", "a"]);
    expect(parsed.line.value("name")).toBe("b");
    expect(parsed.line.takeEach("port", parsePort)).toEqual([1]);
    expect(parsed.line.takeEach("help", parsePort)).toEqual([]);
    expect(parsed.line.error).toBeNull();
    const twice = parseCommandLine(["--port=1", "--port=2"], defs, ["name"]);
    expect(twice.ok ? "accepted" : twice.reason).toBe("option --port is given twice");
  });

  test("takeEach: the first refusal among the values, and nothing taken", () => {
    const parsed = parseCommandLine(["--port=1", "--port=x", "--port=y"], defs, ["port"]);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(parsed.line.takeEach("port", parsePort)).toEqual([]);
    expect(parsed.line.error).toBe('--port: "x" is not a port number 1-65535');
  });

  test("take: the validated value, the fallback when absent, and the first refusal", () => {
    const l = line(["--port", "1e3", "--name", "/a/b"]);
    expect(l.error).toBeNull();
    expect(l.take("port", parsePort, 9000)).toBe(9000);
    expect(l.error).toBe('--port: "1e3" is not a port number 1-65535');
    l.take("name", parseShmNameOption, "/nqptp");
    expect(l.error).toBe('--port: "1e3" is not a port number 1-65535');

    const good = line(["--port=320"]);
    expect(good.take("port", parsePort, 9000)).toBe(320);
    expect(good.take("name", parseShmNameOption, null)).toBeNull();
    expect(good.error).toBeNull();
  });
});
