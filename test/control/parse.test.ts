import { describe, expect, test } from "bun:test";
import { MAX_CONTROL_MESSAGE_BYTES, parseControlMessage } from "../../src/control/parse.ts";
import type { InterfaceVersion } from "../../src/rules/interface-version.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const cString = (s: string) => bytes(`${s}\0`);

function command(input: Uint8Array, version: InterfaceVersion) {
  const result = parseControlMessage(input, version);
  if (!result.ok) throw new Error(`expected ok, got ${result.error.kind}: ${result.error.detail}`);
  return result;
}
function errorKind(input: Uint8Array, version: InterfaceVersion) {
  const result = parseControlMessage(input, version);
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result.command)}`);
  return result.error.kind;
}

describe("seed form (interface 5, 6)", () => {
  test.each([
    ["T 10.0.0.5 10.0.0.9", "plain"],
    ["T 10.0.0.5 10.0.0.9\0", "with the NUL Shairport Sync sends"],
    ["T 10.0.0.5 10.0.0.9\n", "with a newline"],
    ["T 10.0.0.5 10.0.0.9\r\n", "with CRLF"],
    ["T  10.0.0.5\t10.0.0.9 ", "with extra blanks"],
  ])("%j (%s) gives the peer list", (text) => {
    expect(command(bytes(text), 5).command).toEqual({
      kind: "timing-peers",
      addresses: ["10.0.0.5", "10.0.0.9"],
      skipped: [],
    });
  });

  test("T alone clears the list", () => {
    expect(command(cString("T"), 6).command).toEqual({ kind: "timing-peers", addresses: [], skipped: [] });
  });

  test("IPv6 peers are canonicalised and duplicates collapse", () => {
    const result = command(cString("T FE80::1 fe80:0::1 ::ffff:10.0.0.5 10.0.0.5"), 5);
    expect(result.command).toEqual({ kind: "timing-peers", addresses: ["fe80::1", "10.0.0.5"], skipped: [] });
  });

  test("malformed addresses are skipped, the rest kept", () => {
    expect(command(cString("T 10.0.0.5 10.0.0.300 bogus fe80::1"), 5).command).toEqual({
      kind: "timing-peers",
      addresses: ["10.0.0.5", "fe80::1"],
      skipped: ["10.0.0.300", "bogus"],
    });
  });

  test("the 4.1+ form gets a wrong-form error", () => {
    expect(errorKind(cString("/nqptp T"), 5)).toBe("wrong-form");
    expect(errorKind(cString("/nqptp T 10.0.0.5"), 6)).toBe("wrong-form");
  });

  test("B/E/P and unknown letters are unknown commands in the seed form", () => {
    for (const text of ["B", "E", "P", "X 1.2.3.4", "t 10.0.0.5"]) expect(errorKind(cString(text), 5)).toBe("unknown-command");
  });
});

describe("named form (interface 8, 9, 10)", () => {
  test("T with addresses, with the NUL", () => {
    const result = command(cString("/nqptp T 192.168.1.7 192.168.1.8"), 10);
    expect(result.shmName).toBe("/nqptp");
    expect(result.command).toEqual({ kind: "timing-peers", addresses: ["192.168.1.7", "192.168.1.8"], skipped: [] });
  });

  test("T alone stops timing", () => {
    expect(command(cString("/nqptp T"), 8).command).toEqual({ kind: "timing-peers", addresses: [], skipped: [] });
  });

  test.each([
    ["B", "play-begin"],
    ["E", "play-end"],
    ["P", "pause"],
  ] as const)("%s is %s in 9 and 10", (letter, kind) => {
    expect(command(cString(`/nqptp ${letter}`), 9).command).toEqual({ kind });
    expect(command(bytes(`/nqptp ${letter}\n`), 10).command).toEqual({ kind });
  });

  test("B/E/P do not exist in version 8", () => {
    for (const letter of ["B", "E", "P"]) expect(errorKind(cString(`/nqptp ${letter}`), 8)).toBe("unknown-command");
  });

  test("B with arguments is refused", () => {
    expect(errorKind(cString("/nqptp B 10.0.0.5"), 10)).toBe("unexpected-arguments");
  });

  test("the seed form gets a wrong-form error", () => {
    expect(errorKind(cString("T 10.0.0.5"), 10)).toBe("wrong-form");
    expect(errorKind(cString("T"), 9)).toBe("wrong-form");
  });

  test("a name with no command", () => {
    expect(errorKind(cString("/nqptp"), 10)).toBe("unknown-command");
  });
});

describe("garbage", () => {
  test("empty and blank messages", () => {
    expect(errorKind(new Uint8Array(0), 5)).toBe("empty");
    expect(errorKind(cString(""), 10)).toBe("empty");
    expect(errorKind(bytes("   \n"), 5)).toBe("empty");
  });

  test("over-long messages", () => {
    expect(errorKind(bytes(`T ${"1".repeat(MAX_CONTROL_MESSAGE_BYTES)}`), 5)).toBe("too-long");
  });

  test("not UTF-8", () => {
    expect(errorKind(new Uint8Array([0x54, 0x20, 0xff, 0xfe]), 5)).toBe("not-text");
  });

  test("binary bytes before the NUL", () => {
    expect(errorKind(new Uint8Array([0x54, 0x20, 0x01, 0x02, 0x00]), 5)).toBe("not-text");
    expect(errorKind(bytes("T 10.0.0.5\n10.0.0.6"), 5)).toBe("not-text");
  });

  test("bytes after the NUL are ignored", () => {
    expect(command(new Uint8Array([...cString("T 10.0.0.5"), 0xff, 0x01]), 5).command).toEqual({
      kind: "timing-peers",
      addresses: ["10.0.0.5"],
      skipped: [],
    });
  });

  test("a long list of junk never throws and skips every word", () => {
    const junk = `T ${Array.from({ length: 500 }, (_, i) => `x${i}`).join(" ")}`;
    const result = command(bytes(junk), 5);
    expect(result.command.kind).toBe("timing-peers");
    if (result.command.kind === "timing-peers") expect(result.command.skipped).toHaveLength(500);
  });
});
