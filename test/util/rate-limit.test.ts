// The shell's log limiter (src/util/rate-limit.ts): one line per key per interval, a count of the
// lines it held back on the next one, and bounded memory whatever the keys.

import { describe, expect, test } from "bun:test";
import { LogRateLimiter, suppressedSuffix } from "../../src/util/rate-limit.ts";

describe("LogRateLimiter", () => {
  test("the first line of a key is logged, the rest of the interval only counted, the next says how many", () => {
    const limiter = new LogRateLimiter(1000);
    expect(limiter.check("busy", 0)).toEqual({ log: true, suppressed: 0 });
    expect(limiter.check("busy", 10)).toEqual({ log: false, suppressed: 1 });
    expect(limiter.check("busy", 999)).toEqual({ log: false, suppressed: 2 });
    const next = limiter.check("busy", 1000);
    expect(next).toEqual({ log: true, suppressed: 2 });
    expect(`shm busy${suppressedSuffix(next)}`).toBe("shm busy (2 similar messages suppressed)");
    // The count starts again after a logged line.
    expect(limiter.check("busy", 2000)).toEqual({ log: true, suppressed: 0 });
  });

  test("keys are limited independently", () => {
    const limiter = new LogRateLimiter(1000);
    expect(limiter.check("decode:truncated", 0).log).toBe(true);
    expect(limiter.check("decode:length-mismatch", 1).log).toBe(true);
    expect(limiter.check("decode:truncated", 2).log).toBe(false);
  });

  test("a line with nothing held back gets no suffix", () => {
    expect(suppressedSuffix({ log: true, suppressed: 0 })).toBe("");
  });

  test("at most maxKeys keys are remembered: the oldest is forgotten first", () => {
    const limiter = new LogRateLimiter(1000, 3);
    for (const key of ["a", "b", "c"]) limiter.check(key, 0);
    limiter.check("d", 1); // forgets "a"
    expect(limiter.check("a", 2).log).toBe(true); // new again; forgets "b"
    expect(limiter.check("c", 3).log).toBe(false);
    expect(limiter.check("b", 4).log).toBe(true);
  });
});
