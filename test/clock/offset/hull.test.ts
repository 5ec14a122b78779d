// The tracking filter's geometry (src/clock/offset/hull.ts) and order statistics
// (order-statistics.ts), on point sets whose answers are worked out by hand.

import { describe, expect, test } from "bun:test";
import { chordSlope, hullAt, supportLevel, upperHull } from "../../../src/clock/offset/hull.ts";
import { selectMedian } from "../../../src/clock/offset/order-statistics.ts";
import { createPrng } from "../../support/prng.ts";

const pts = (...xy: [number, number][]) => xy.map(([x, y]) => ({ x, y }));

describe("upper hull", () => {
  test("keeps the vertices on top, drops points on or under the chain", () => {
    expect(upperHull(pts([0, 0], [1, 5], [2, 1], [3, 6], [4, 0]))).toEqual(pts([0, 0], [1, 5], [3, 6], [4, 0]));
    // Collinear points are not vertices.
    expect(upperHull(pts([0, 0], [1, 1], [2, 2], [3, 3]))).toEqual(pts([0, 0], [3, 3]));
    expect(upperHull(pts([5, 5]))).toEqual(pts([5, 5]));
    expect(upperHull([])).toEqual([]);
  });

  test("every point lies on or under it (random sets)", () => {
    const random = createPrng(9);
    for (let round = 0; round < 50; round++) {
      const set = Array.from({ length: 40 }, (_, i) => ({ x: i * 10 + random.int(0, 9), y: random.int(-1000, 1000) }));
      const hull = upperHull(set);
      for (const p of set) expect(hullAt(hull, p.x)).toBeGreaterThanOrEqual(p.y - 1e-9);
    }
  });
});

describe("values and slopes of a hull", () => {
  const hull = upperHull(pts([0, 0], [10, 10], [20, 10], [40, 0]));
  test("hullAt interpolates along its edges", () => {
    expect(hullAt(hull, 0)).toBe(0);
    expect(hullAt(hull, 5)).toBe(5);
    expect(hullAt(hull, 15)).toBe(10);
    expect(hullAt(hull, 30)).toBe(5);
  });
  test("chordSlope between fractions of the span", () => {
    // span 40: 0.25 → x 10 (y 10), 0.75 → x 30 (y 5): slope −0.25
    expect(chordSlope(hull, 0.25, 0.75)).toBe(-0.25);
    expect(chordSlope(hull, 0, 0.25)).toBe(1);
    expect(chordSlope(pts([3, 3]), 0.25, 0.75)).toBeNull();
  });
  test("supportLevel: the lowest line of a slope with every point under it", () => {
    expect(supportLevel(pts([0, 0], [10, 10], [20, 10]), 0.5)).toBe(5);
    expect(supportLevel(pts([0, 0], [10, 10], [20, 10]), 0)).toBe(10);
    expect(supportLevel([], 1)).toBe(-Infinity);
  });
});

describe("selectMedian", () => {
  test("the median (upper, for an even count) of a prefix, as sorting would give it", () => {
    const random = createPrng(4);
    for (let round = 0; round < 200; round++) {
      const count = random.int(1, 40);
      const a = new Float64Array(48);
      for (let i = 0; i < a.length; i++) a[i] = random.int(-50, 50);
      const sorted = Array.from(a.subarray(0, count)).sort((x, y) => x - y);
      expect(selectMedian(a, count)).toBe(sorted[count >> 1]!);
    }
  });
});
