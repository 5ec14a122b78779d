import { describe, expect, test } from "bun:test";
import { UNQUALIFIED, qualifyAnnounce, type Qualification } from "../../src/clock/qualify.ts";
import { MS, S } from "./helpers.ts";

function run(arrivals: [atNs: bigint, sequenceId: number, stepsRemoved?: number][]): Qualification[] {
  let q = UNQUALIFIED;
  const out: Qualification[] = [];
  for (const [atNs, sequenceId, stepsRemoved] of arrivals) {
    q = qualifyAnnounce(q, { sequenceId, stepsRemoved: stepsRemoved ?? 0 }, atNs);
    out.push(q);
  }
  return out;
}

describe("Announce qualification (IEEE 1588-2008 9.3.2.5)", () => {
  test("one Announce is not enough", () => {
    expect(run([[0n, 1]]).map((q) => q.qualified)).toEqual([false]);
  });

  test("two Announces 1 s apart qualify", () => {
    expect(
      run([
        [0n, 1],
        [1n * S, 2],
      ]).map((q) => q.qualified),
    ).toEqual([false, true]);
  });

  test("two Announces exactly 4 s apart qualify (the window includes its edge)", () => {
    expect(
      run([
        [0n, 1],
        [4n * S, 2],
      ]).map((q) => q.qualified),
    ).toEqual([false, true]);
  });

  test("two Announces 4.1 s apart do not", () => {
    expect(
      run([
        [0n, 1],
        [4n * S + 100n * MS, 2],
      ]).map((q) => q.qualified),
    ).toEqual([false, false]);
  });

  test("qualification is lost at an Announce after a gap, and regained by the next in time", () => {
    const q = run([
      [0n, 1],
      [1n * S, 2],
      [6n * S, 3],
      [7n * S, 4],
    ]);
    expect(q.map((x) => x.qualified)).toEqual([false, true, false, true]);
  });

  test("stepsRemoved 255 (or more) is never qualified (d)", () => {
    expect(
      run([
        [0n, 1, 255],
        [1n * S, 2, 255],
        [2n * S, 3, 255],
      ]).map((q) => q.qualified),
    ).toEqual([false, false, false]);
    expect(
      run([
        [0n, 1, 300],
        [1n * S, 2, 65535],
      ]).map((q) => q.qualified),
    ).toEqual([false, false]);
    // 254 is fine.
    expect(
      run([
        [0n, 1, 254],
        [1n * S, 2, 254],
      ]).map((q) => q.qualified),
    ).toEqual([false, true]);
  });

  test("a 255 Announce unqualifies and does not count; good ones around it do", () => {
    const q = run([
      [0n, 1],
      [1n * S, 2],
      [2n * S, 3, 255],
      [3n * S, 4],
    ]);
    expect(q.map((x) => x.qualified)).toEqual([false, true, false, true]);
    // Only counted arrivals are kept.
    expect(q[3]!.arrivals.map((a) => a.sequenceId)).toEqual([2, 4]);
  });

  test("a duplicate (same sequenceId) is not a second distinct Announce", () => {
    expect(
      run([
        [0n, 7],
        [10n * MS, 7],
        [20n * MS, 7],
      ]).map((q) => q.qualified),
    ).toEqual([false, false, false]);
  });

  test("keeps no more arrivals than the threshold", () => {
    const q = run(Array.from({ length: 50 }, (_, i) => [BigInt(i) * S, i] as [bigint, number]));
    expect(q[49]!.arrivals.length).toBe(2);
  });

  test("a threshold of 3 needs three in the window", () => {
    let q = UNQUALIFIED;
    const rules = { threshold: 3, windowNs: 4n * S };
    const seen: boolean[] = [];
    for (const [at, seq] of [
      [0n, 1],
      [1n * S, 2],
      [2n * S, 3],
      [7n * S, 4],
      [8n * S, 5],
      [9n * S, 6],
    ] as const) {
      q = qualifyAnnounce(q, { sequenceId: seq, stepsRemoved: 0 }, at, rules);
      seen.push(q.qualified);
    }
    expect(seen).toEqual([false, false, true, false, false, true]);
  });
});
