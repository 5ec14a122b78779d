// The tracking filter's rate (src/clock/offset/tracking-rate.ts): slopes over several
// baselines, and Lepski's rule for the longest one the samples show straight.

import { describe, expect, test } from "bun:test";
import { DEFAULT_TRACKING_RULES } from "../../../src/clock/offset/tracking.ts";
import { combine, faded, longestAgreeing, measureRate } from "../../../src/clock/offset/tracking-rate.ts";

const S = 1e9;
const SCALES = [30 * S, 60 * S, 120 * S, 240 * S];
/** 8 samples a second on the line y = rate·x, for `seconds`, with `bend` ppm per minute of rate change. */
function line(seconds: number, ratePpm: number, bendPpmPerMinute = 0) {
  const out: { x: number; y: number }[] = [];
  for (let k = 0; k <= seconds * 8; k++) {
    const x = k * 0.125 * S;
    const minutes = x / (60 * S);
    out.push({ x, y: Math.round(ratePpm * 1e-6 * x + bendPpmPerMinute * 1e-6 * 60 * S * minutes * minutes * 0.5) });
  }
  return out;
}

describe("Lepski's rule", () => {
  test("the longest baseline whose slope is within kappa errors of every shorter one's", () => {
    const m = (slope: number, sigma: number, scale: number) => ({ slope, sigma, scale });
    expect(longestAgreeing([m(10, 1, 1), m(10.5, 0.5, 2), m(10.4, 0.2, 4)], 2)?.scale).toBe(4);
    // The 4 disagrees with the 1 (|10 − 20| > 2·(1 + 0.2)): the 2 it is.
    expect(longestAgreeing([m(10, 1, 1), m(11, 0.5, 2), m(20, 0.2, 4)], 2)?.scale).toBe(2);
    // Agreeing with the one just shorter is not enough: every shorter one counts.
    expect(longestAgreeing([m(0, 0.1, 1), m(1, 1, 2), m(2, 0.1, 4)], 1)?.scale).toBe(2);
    expect(longestAgreeing([], 2)).toBeNull();
  });
});

describe("measureRate", () => {
  test("an exact line: its rate, over the longest baseline there is", () => {
    for (const ppm of [-50, 0, 37]) {
      const r = measureRate(line(300, ppm), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!;
      expect(r.scale).toBe(240 * S);
      expect((r.evidence.sum / r.evidence.weight) * 1e6).toBeCloseTo(ppm, 6);
    }
  });

  test("a short record: the baselines it has (a longer one counts only when the samples reach back 3/4 of it)", () => {
    expect(measureRate(line(40, 10), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!.scale).toBe(30 * S);
    expect(measureRate(line(100, 10), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!.scale).toBe(120 * S);
    expect(measureRate([], 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)).toBeNull();
  });

  test("a rate that bends (2 ppm a minute) on a quiet path: a short baseline, near the rate of now", () => {
    const r = measureRate(line(300, 10, 2), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!;
    expect(r.scale).toBe(30 * S);
    // The rate at 300 s is 20 ppm; a 30 s chord between its quarters is centred 15 s earlier.
    expect((r.evidence.sum / r.evidence.weight) * 1e6).toBeCloseTo(20 - 0.5, 1);
  });

  test("the precision grows with the baseline and falls with the path's spread", () => {
    const quiet = measureRate(line(300, 0), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!;
    const noisy = measureRate(line(300, 0), 8e-9, 1_000_000, DEFAULT_TRACKING_RULES, SCALES)!;
    const short = measureRate(line(40, 0), 8e-9, 1000, DEFAULT_TRACKING_RULES, SCALES)!;
    expect(quiet.evidence.weight).toBeGreaterThan(noisy.evidence.weight * 1e5);
    expect(quiet.evidence.weight).toBeGreaterThan(short.evidence.weight * 100);
  });
});

describe("rate evidence", () => {
  test("combines by precision and fades with age", () => {
    const a = { sum: 10 * 4, weight: 4 };
    const b = { sum: 20 * 1, weight: 1 };
    const c = combine(a, b);
    expect(c.sum / c.weight).toBe(12);
    const old = faded(a, 30 * S, 30 * S);
    expect(old.weight).toBeCloseTo(4 / Math.E, 12);
    expect(old.sum / old.weight).toBe(10);
    expect(faded(a, -5, 30 * S)).toEqual(a);
  });
});
