import { describe, expect, test } from "bun:test";
import { SHM_NAME_MAX_BYTES, checkShmName, parseShmName } from "../../src/rules/shm-name.ts";

const bytes = (s: string) => new TextEncoder().encode(s).byteLength;

describe("checkShmName", () => {
  test.each(["/nqptp", "/a", "/nqptp-e2e-1234-1-99", "/Ω", "/.hidden", "/...", "/a.b_c-d~e", "/日本語"])("%j is a name", (name) => {
    expect(checkShmName(name)).toBeNull();
    expect(parseShmName(name)).toEqual({ ok: true, value: name });
  });

  test.each([
    ["", "empty"],
    ["/", '"/" alone'],
    ["nqptp", 'does not begin with "/"'],
    ["../x", 'does not begin with "/"'],
    ["/../x", 'a "/" after the first'],
    ["/a/b", 'a "/" after the first'],
    ["//", 'a "/" after the first'],
    ["/.", "directories"],
    ["/..", "directories"],
    ["/a b", "a space (U+0020)"],
    ["/a\u00a0b", "a space (U+00A0)"],
    ["/a\tb", "unprintable character (U+0009)"],
    ["/a\nb", "unprintable character (U+000A)"],
    ["/a\0b", "unprintable character (U+0000)"],
    ["/a\x1bb", "unprintable character (U+001B)"],
    ["/a\x7fb", "unprintable character (U+007F)"],
    ["/a\u0085b", "unprintable character (U+0085)"],
    ["/a\u202eb", "unprintable character (U+202E)"],
    ["/a\ud800b", "lone surrogate"],
  ])("%j is refused (%s)", (name, reason) => {
    const why = checkShmName(name);
    expect(why).toContain(reason);
    expect(parseShmName(name)).toEqual({ ok: false, reason: why! });
  });

  test("63 bytes of UTF-8 at most (the client's 64-byte field less its NUL), counted in bytes", () => {
    expect(SHM_NAME_MAX_BYTES).toBe(63);
    const longest = `/${"a".repeat(62)}`;
    expect(bytes(longest)).toBe(63);
    expect(checkShmName(longest)).toBeNull();
    expect(checkShmName(`${longest}a`)).toBe("is 64 bytes of UTF-8, more than 63");
    expect(checkShmName(`/${"a".repeat(300)}`)).toContain("301 bytes");
  });

  test("multi-byte UTF-8 at the 63-byte boundary", () => {
    // "é" is 2 bytes, "€" 3, "😀" 4 (and 2 UTF-16 units, so .length would count it wrong).
    for (const [char, size] of [
      ["é", 2],
      ["€", 3],
      ["😀", 4],
    ] as const) {
      const fits = `/${"a".repeat(62 - size)}${char}`;
      expect(bytes(fits)).toBe(63);
      expect(checkShmName(fits)).toBeNull();
      const over = `/${"a".repeat(63 - size)}${char}`;
      expect(bytes(over)).toBe(64);
      expect(checkShmName(over)).toContain("64 bytes");
    }
    // 21 three-byte characters: 22 UTF-16 units, 64 bytes.
    const euros = `/${"€".repeat(21)}`;
    expect(euros.length).toBe(22);
    expect(checkShmName(euros)).toContain("64 bytes");
  });
});
