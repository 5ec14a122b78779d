import { describe, expect, test } from "bun:test";
import { acceptSample, lookBack, type V5Estimate } from "../../../src/clock/offset/classic-master.ts";
import type { OffsetSample } from "../../../src/clock/syfu.ts";
import { MS, S, US } from "../helpers.ts";

const T0 = 5_000n * S;
const N = 7n * S; // the newest sample's offset

function sample(localTimeNs: bigint, offsetNs: bigint): OffsetSample {
  return { localTimeNs, offsetNs: BigInt.asUintN(64, offsetNs), preciseOriginNs: localTimeNs + offsetNs, paired: true };
}

describe("look back when a clock becomes master", () => {
  test("takes the largest offset in the last 10 s, skipping one more than 1.15 s ahead", () => {
    const ring = [
      sample(T0 - 1n * S, N + 1n * MS), // 11 s before the newest: outside the window
      sample(T0, N - 3n * MS), // exactly 10 s before: the oldest in the window
      sample(T0 + 500n * MS, N + 2n * S), // outlier, 2 s ahead
      sample(T0 + 2n * S, N + 800n * US), // the best
      sample(T0 + 4n * S, N + 1_200n * MS), // outlier, 1.2 s ahead
      sample(T0 + 6n * S, N + 300n * US),
      sample(T0 + 10n * S, N), // newest
    ];
    expect(lookBack(ring)).toEqual({
      localTimeNs: T0 + 10n * S,
      offsetNs: N + 800n * US,
      masterStartTimeNs: T0,
      lastAcceptedNs: T0 + 10n * S,
    });
  });

  test("1.15 s ahead exactly is allowed, 1 ns more is not", () => {
    const at = sample(T0, N + 1_150n * MS);
    const over = sample(T0, N + 1_150n * MS + 1n);
    const newest = sample(T0 + S, N);
    expect(lookBack([at, newest])?.offsetNs).toBe(N + 1_150n * MS);
    expect(lookBack([over, newest])?.offsetNs).toBe(N);
  });

  test("newest alone, or newest best: newest offset, start at the oldest sample in the window", () => {
    expect(lookBack([sample(T0, N)])).toEqual({ localTimeNs: T0, offsetNs: N, masterStartTimeNs: T0, lastAcceptedNs: T0 });
    const r = lookBack([sample(T0, N - 5n * MS), sample(T0 + S, N - MS), sample(T0 + 2n * S, N)]);
    expect(r?.offsetNs).toBe(N);
    expect(r?.masterStartTimeNs).toBe(T0);
  });

  test("no samples → null", () => {
    expect(lookBack([])).toBeNull();
  });

  test("offsets compare as signed differences across the u64 wrap", () => {
    // Newest −1000 ns (2^64 − 1000 as u64); an older +500 ns is 1500 ns ahead and wins.
    const r = lookBack([sample(T0, 500n), sample(T0 + S, -1000n)]);
    expect(r?.offsetNs).toBe(500n);
    // And a huge u64 value that is really −2 s does not beat the newest +0.
    expect(lookBack([sample(T0, -2n * S), sample(T0 + S, 0n)])?.offsetNs).toBe(0n);
  });
});

describe("accepting the master's next samples", () => {
  const est: V5Estimate = { localTimeNs: T0, offsetNs: N, masterStartTimeNs: T0 - 10n * S, lastAcceptedNs: T0 };
  const next = T0 + 125n * MS; // tolerance 125 µs (1000 ppm of 125 ms)

  test("a rise is taken as is", () => {
    const r = acceptSample(est, sample(next, N + 5n * US));
    expect(r.outcome).toBe("ROSE");
    expect(r.estimate).toEqual({ localTimeNs: next, offsetNs: N + 5n * US, masterStartTimeNs: T0 - 10n * S, lastAcceptedNs: next });
  });

  test("no change counts as a rise", () => {
    expect(acceptSample(est, sample(next, N)).outcome).toBe("ROSE");
  });

  test("a fall within 1000 ppm of the elapsed time is taken as is (edge included)", () => {
    const small = acceptSample(est, sample(next, N - 100n * US));
    expect(small.outcome).toBe("SMALL_FALL");
    expect(small.estimate.offsetNs).toBe(N - 100n * US);
    const edge = acceptSample(est, sample(next, N - 125n * US));
    expect(edge.outcome).toBe("SMALL_FALL");
    expect(edge.estimate.lastAcceptedNs).toBe(next);
  });

  test("a larger fall is delay: the estimate falls by 10 µs only", () => {
    const r = acceptSample(est, sample(next, N - 125n * US - 1n));
    expect(r.outcome).toBe("DELAYED");
    expect(r.estimate).toEqual({ localTimeNs: next, offsetNs: N - 10n * US, masterStartTimeNs: T0 - 10n * S, lastAcceptedNs: T0 });
  });

  test("a delayed step never takes the estimate below the sample", () => {
    // 1 ms elapsed → 1 µs tolerance; a 4 µs fall is "delay" but only 4 µs of it.
    const r = acceptSample(est, sample(T0 + MS, N - 4n * US));
    expect(r.outcome).toBe("DELAYED");
    expect(r.estimate.offsetNs).toBe(N - 4n * US);
  });

  test("after 60 s without an accepted sample, the next one is taken as is", () => {
    let e = est;
    let t = T0;
    const outcomes: string[] = [];
    // A master whose samples all come 10 ms low, every 125 ms, for 60 s.
    while (t < T0 + 60n * S) {
      t += 125n * MS;
      const r = acceptSample(e, sample(t, N - 10n * MS));
      outcomes.push(r.outcome);
      e = r.estimate;
    }
    expect(outcomes.slice(0, -1).every((o) => o === "DELAYED")).toBe(true);
    expect(outcomes[outcomes.length - 1]).toBe("STALE_TAKEN");
    expect(e.offsetNs).toBe(N - 10n * MS);
    expect(e.lastAcceptedNs).toBe(T0 + 60n * S);
    // 479 delayed steps of 10 µs before that: the estimate had fallen 4.79 ms.
    expect(outcomes.length).toBe(480);
  });

  test("60 s minus 1 ns is not yet stale", () => {
    const e: V5Estimate = { ...est, localTimeNs: T0 + 60n * S - 126n * MS };
    expect(acceptSample(e, sample(T0 + 60n * S - 1n, N - 10n * MS)).outcome).toBe("DELAYED");
    expect(acceptSample(e, sample(T0 + 60n * S, N - 10n * MS)).outcome).toBe("STALE_TAKEN");
  });

  test("local time running backwards allows no fall", () => {
    const r = acceptSample(est, sample(T0 - S, N - 1n));
    expect(r.outcome).toBe("DELAYED");
    expect(r.estimate.offsetNs).toBe(N - 1n);
  });

  test("signed comparison across the wrap: −1 µs → +1 µs is a rise, +1 µs → −1 µs a fall", () => {
    const neg: V5Estimate = { ...est, offsetNs: BigInt.asUintN(64, -US) };
    const up = acceptSample(neg, sample(next, US));
    expect(up.outcome).toBe("ROSE");
    const pos: V5Estimate = { ...est, offsetNs: US };
    const down = acceptSample(pos, sample(next, -US));
    expect(down.outcome).toBe("SMALL_FALL");
    expect(down.estimate.offsetNs).toBe(2n ** 64n - US);
    const bigDown = acceptSample(pos, sample(next, -S));
    expect(bigDown.outcome).toBe("DELAYED");
    expect(bigDown.estimate.offsetNs).toBe(2n ** 64n - 9n * US);
  });
});
