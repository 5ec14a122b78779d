import { describe, expect, test } from "bun:test";
import { timestampToNs } from "../../src/time/ns.ts";
import { ptpTimestamp } from "./timestamp.ts";

describe("ptpTimestamp", () => {
  test("seconds and nanoseconds, the inverse of timestampToNs, up to the last 48-bit second", () => {
    for (const ns of [0n, 999_999_999n, 1_000_000_000n, 1_700_000_000_123_456_789n, (1n << 48n) * 1_000_000_000n - 1n]) {
      const t = ptpTimestamp(ns);
      expect(t.nanoseconds).toBeLessThan(1e9);
      expect(timestampToNs(t.seconds, t.nanoseconds)).toBe(ns);
    }
    expect(ptpTimestamp(1_700_000_000_123_456_789n)).toEqual({ seconds: 1_700_000_000n, nanoseconds: 123_456_789 });
  });

  test("a time the wire cannot carry is refused, not wrapped", () => {
    expect(() => ptpTimestamp(-1n)).toThrow(RangeError);
    expect(() => ptpTimestamp((1n << 48n) * 1_000_000_000n)).toThrow("is not a PTP timestamp");
  });
});
