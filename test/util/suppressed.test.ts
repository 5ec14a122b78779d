// Both log limiters say "held back" the same way: the shell's LogRateLimiter (with suppressedSuffix)
// and the pure tracker's limitLog, each run through a burst until it suppresses, then past its interval.

import { describe, expect, test } from "bun:test";
import { NO_LOG_LIMITS, limitLog, type LogLimits } from "../../src/clock/log-limit.ts";
import { LogRateLimiter, suppressedSuffix } from "../../src/util/rate-limit.ts";
import { withSuppressedCount } from "../../src/util/suppressed.ts";

describe("the wording of suppressed log lines", () => {
  test("withSuppressedCount appends the count, or nothing", () => {
    expect(withSuppressedCount("clock table full", 3)).toBe("clock table full (3 similar messages suppressed)");
    expect(withSuppressedCount("clock table full", 0)).toBe("clock table full");
  });

  test("the shell's limiter and the tracker's limiter word the same count the same way", () => {
    const rules = { intervalNs: 1000n, burst: 1 };
    let limits: LogLimits = NO_LOG_LIMITS;
    const tracker: (string | null)[] = [];
    const shell: (string | null)[] = [];
    const limiter = new LogRateLimiter(1000);
    for (const now of [0, 1, 2, 3, 1000]) {
      const step = limitLog(limits, "k", "new clock record 10.0.0.1", BigInt(now), rules);
      limits = step.limits;
      tracker.push(step.message);
      const decision = limiter.check("k", now);
      shell.push(decision.log ? `new clock record 10.0.0.1${suppressedSuffix(decision)}` : null);
    }
    expect(tracker).toEqual(["new clock record 10.0.0.1", null, null, null, "new clock record 10.0.0.1 (3 similar messages suppressed)"]);
    expect(shell).toEqual(tracker);
  });
});
