// The tracking offset filter (src/clock/offset/tracking.ts) on synthetic sample streams with a
// known truth (test/support/offset-streams.ts): a master clock at a given rate (ppm) against
// ours, Syncs sent at 8 Hz, each delayed by a seeded random path delay; standing queues, bursts,
// steps of the master's time, gaps. Every stream is deterministic.
//
// "Above the path minimum" (eps) is how far the published offset is below the best any filter
// could do, the true offset less the path's minimum one-way delay. Each case prints its figures.
// The bounds: on a wire, median ≤ 5 µs above the path minimum and p99 ≤ 15 µs; on a Wi-Fi-like
// path, ≤ 50 µs and a spread ≤ 150 µs while the rate's baseline fills, ≤ 15 and ≤ 50 µs once it
// has (2 minutes); a standing queue of up to 60 s moves nothing, a step down is followed at once
// only with evidence, else after the hold, slewed.

import { describe, expect, test } from "bun:test";
import {
  DEFAULT_TRACKING_RULES,
  TRACKING_IDLE,
  startsTimeline,
  trackOffset,
  trackingRatePpm,
  type TrackingOutcome,
  type TrackingSample,
  type TrackingState,
} from "../../../src/clock/offset/tracking.ts";
import {
  LOCAL0,
  MS,
  PARETO,
  S,
  US,
  WIFI,
  WIRE,
  convergenceS,
  describeFigures,
  excursion,
  figures,
  makeStream,
  quantile,
  runFilter,
  us,
  type Path,
  type Published,
  type Stream,
} from "../../support/offset-streams.ts";
import { deepFreeze } from "../helpers.ts";

const DRIFTS = [-100, -50, -20, 0, 20, 50, 100];
const STEADY_FROM_S = 25;

// ---- tests ----

describe("drift on a wire", () => {
  for (const ppm of DRIFTS) {
    test(`${ppm} ppm: median ≤ 5 µs and p99 ≤ 15 µs above the path minimum; the start contract`, () => {
      const stream = makeStream({ seconds: 90, path: WIRE, seed: 100 + ppm, ppm });
      const { published, state } = runFilter(stream);
      const f = figures(published, STEADY_FROM_S);
      const first = published[0]!;
      // Largest change between consecutive estimates in the first 10 s, net of the true change.
      let maxStep = 0;
      for (let i = 1; i < published.length && published[i]!.t < 10; i++)
        maxStep = Math.max(maxStep, Math.abs(published[i]!.epsNs - published[i - 1]!.epsNs));
      const at04 = published.find((p) => p.t - first.t >= 0.4)!;
      console.log(
        `wire ${ppm} ppm: ${describeFigures(f)}; first ${us(first.epsNs)} µs, at 0.4 s ${us(at04.epsNs - f.median)} µs from final, ` +
          `largest step in 10 s ${us(maxStep)} µs; rate ${trackingRatePpm(state)!.toFixed(3)} ppm`,
      );
      expect(f.median).toBeLessThanOrEqual(5 * US);
      expect(f.absP99).toBeLessThanOrEqual(15 * US);
      expect(Math.abs(first.epsNs)).toBeLessThanOrEqual(100 * US);
      expect(maxStep).toBeLessThanOrEqual(50 * US);
      expect(Math.abs(at04.epsNs - f.median)).toBeLessThanOrEqual(100 * US);
      expect(trackingRatePpm(state)!).toBeCloseTo(ppm, 1);
    });
  }

  test("a rate that changes by 2 ppm a minute (from −20 ppm): still within 15 µs", () => {
    const stream = makeStream({ seconds: 300, path: WIRE, seed: 7, ppm: -20, ppmPerMinute: 2 });
    const f = figures(runFilter(stream).published, STEADY_FROM_S);
    console.log(`wire, −20 ppm + 2 ppm/min for 5 min: ${describeFigures(f)}`);
    expect(f.median).toBeLessThanOrEqual(5 * US);
    expect(f.absP99).toBeLessThanOrEqual(15 * US);
  });
});

describe("jitter: the lower envelope of the delay", () => {
  const convergences: number[] = [];
  for (const ppm of DRIFTS) {
    test(`Wi-Fi-like path, ${ppm} ppm: median ≤ 50 µs above the path minimum, p1–p99 spread ≤ 150 µs`, () => {
      const stream = makeStream({ seconds: 120, path: WIFI, seed: 200 + ppm, ppm });
      const { published } = runFilter(stream);
      const f = figures(published, STEADY_FROM_S);
      const conv = convergenceS(published, f.median);
      convergences.push(conv);
      console.log(
        `Wi-Fi ${ppm} ppm: ${describeFigures(f)}; first ${us(published[0]!.epsNs)} µs; within 100 µs of final (for 2 s) after ${conv.toFixed(2)} s`,
      );
      expect(f.median).toBeLessThanOrEqual(50 * US);
      expect(f.median).toBeGreaterThanOrEqual(-15 * US);
      expect(f.spread).toBeLessThanOrEqual(150 * US);
      expect(conv).toBeLessThanOrEqual(20);
    });
  }
  test("Wi-Fi-like path: the median convergence over those drifts is ≤ 6 s", () => {
    // The information limit: with exponential delay of mean 2 ms, the best of 16 samples (2 s)
    // is 125 µs above the minimum on average, and the rate is still uncertain then.
    expect(convergences.length).toBe(DRIFTS.length);
    const median = quantile(convergences, 0.5);
    console.log(`Wi-Fi: convergence median ${median.toFixed(2)} s over ${convergences.map((c) => c.toFixed(2)).join(", ")}`);
    expect(median).toBeLessThanOrEqual(6);
  });

  for (const ppm of [-100, -20, 50]) {
    test(`Pareto delay (shape 1.5) with spikes up to 100 ms, ${ppm} ppm: median ≤ 50 µs, spread ≤ 150 µs`, () => {
      const stream = makeStream({ seconds: 120, path: PARETO, seed: 300 + ppm, ppm });
      const f = figures(runFilter(stream).published, STEADY_FROM_S);
      console.log(`Pareto ${ppm} ppm: ${describeFigures(f)}`);
      expect(f.median).toBeLessThanOrEqual(50 * US);
      expect(f.spread).toBeLessThanOrEqual(150 * US);
    });
  }

  test("Wi-Fi-like path, a rate that changes by 1 ppm a minute: median ≤ 50 µs, spread ≤ 150 µs", () => {
    const stream = makeStream({ seconds: 300, path: WIFI, seed: 11, ppm: 30, ppmPerMinute: -1 });
    const f = figures(runFilter(stream).published, STEADY_FROM_S);
    console.log(`Wi-Fi, 30 ppm − 1 ppm/min for 5 min: ${describeFigures(f)}`);
    expect(f.median).toBeLessThanOrEqual(50 * US);
    expect(f.spread).toBeLessThanOrEqual(150 * US);
  });

  test("wire with 2 % spikes of 10–100 ms: unchanged", () => {
    const spiky: Path = { ...WIRE, spikeChance: 0.02, spikeMinNs: 10 * MS, spikeMaxNs: 100 * MS };
    const f = figures(runFilter(makeStream({ seconds: 90, path: spiky, seed: 12, ppm: 45 })).published, STEADY_FROM_S);
    console.log(`wire + spikes to 100 ms: ${describeFigures(f)}`);
    expect(f.median).toBeLessThanOrEqual(5 * US);
    expect(f.absP99).toBeLessThanOrEqual(15 * US);
  });

  test("reordered samples (5 % delivered after the next): bounds hold; the published local time never goes back", () => {
    for (const path of [WIRE, WIFI]) {
      const { published } = runFilter(makeStream({ seconds: 90, path, seed: 13, ppm: -35, reorder: 0.05 }));
      const f = figures(published, STEADY_FROM_S);
      console.log(`${path.name}, 5 % reordered: ${describeFigures(f)}`);
      for (let i = 1; i < published.length; i++) expect(published[i]!.localTimeNs >= published[i - 1]!.localTimeNs).toBe(true);
      expect(f.median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
      expect(f.spread).toBeLessThanOrEqual(path === WIRE ? 15 * US : 150 * US);
    }
  });
});

/** The largest |change| of the published offset, net of the true one, per ns of local time between consecutive estimates, in ppm. */
function largestSlewPpm(published: Published[], fromS: number, toS: number): number {
  let largest = 0;
  for (let i = 1; i < published.length; i++) {
    const a = published[i - 1]!;
    const b = published[i]!;
    if (a.t < fromS || b.t > toS || b.localTimeNs === a.localTimeNs) continue;
    largest = Math.max(largest, (Math.abs(b.epsNs - a.epsNs) / Number(b.localTimeNs - a.localTimeNs)) * 1e6);
  }
  return largest;
}

describe("steps of the master's time", () => {
  const outcomesAfter = (published: Published[], fromS: number) =>
    published.filter(
      (p) => p.t >= fromS && p.outcome !== "TRACKED" && p.outcome !== "DELAYED" && p.outcome !== "HELD" && p.outcome !== "RISE_PENDING",
    );

  for (const path of [WIRE, WIFI]) {
    for (const stepMs of [5, 1.5]) {
      test(`${path.name}: a step up of ${stepMs} ms restarts the timeline within 1 s, taken whole (no creeping)`, () => {
        const { published } = runFilter(makeStream({ seconds: 80, path, seed: 20, ppm: 30, stepAtS: 40, stepNs: stepMs * MS }));
        const events = outcomesAfter(published, 40);
        // On Wi-Fi the confirming samples of a 1.5 ms step may all be delayed by more than
        // 0.5 ms: the rise they measure is then under 1 ms and it is told as ROSE; the
        // restart is the same.
        expect(path === WIFI && stepMs < 2 ? ["STEPPED_UP", "ROSE"] : ["STEPPED_UP"]).toContain(events[0]?.outcome ?? "none");
        const restartAt = events[0]!.t;
        const settled = restartAt + (path === WIRE ? 0 : 5);
        const f = figures(published, settled);
        console.log(
          `${path.name}, step up ${stepMs} ms: ${events[0]!.outcome} after ${(restartAt - 40).toFixed(2)} s; from ${(settled - 40).toFixed(2)} s on ${describeFigures(f)}`,
        );
        expect(restartAt - 40).toBeLessThanOrEqual(1);
        expect(events.length).toBe(1);
        // Taken whole at once: from the restart on, never back near the old level …
        for (const p of published.filter((q) => q.t >= restartAt)) expect(p.epsNs).toBeLessThan(stepMs * MS - 250 * US);
        // … and, once settled (at once on a wire, as at a start on Wi-Fi), as good as before.
        expect(f.median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
        expect(path === WIRE ? f.absP99 : f.spread).toBeLessThanOrEqual(path === WIRE ? 15 * US : 150 * US);
      });

      test(`${path.name}: a step down of ${stepMs} ms, alone, is held for the hold and then followed, slewed, within 65 s`, () => {
        const { published } = runFilter(makeStream({ seconds: 150, path, seed: 21, ppm: -30, stepAtS: 40, stepNs: -stepMs * MS }));
        const events = outcomesAfter(published, 40);
        const followed = events.find((p) => p.outcome === "FOLLOWED_DOWN");
        expect(followed).toBeDefined();
        const delay = followed!.t - 40;
        const f = figures(published, followed!.t + 1);
        console.log(`${path.name}, step down ${stepMs} ms, no evidence: followed after ${delay.toFixed(2)} s; then ${describeFigures(f)}`);
        expect(delay).toBeGreaterThanOrEqual(60);
        expect(delay).toBeLessThanOrEqual(65);
        expect(events.filter((p) => startsTimeline(p.outcome))).toEqual([followed!]);
        // Held: until the hold ends, the old timeline stands; no creeping towards the new one.
        for (const p of published.filter((q) => q.t >= 40.5 && q.t < 100)) expect(p.epsNs).toBeLessThan(-(stepMs * MS) + 300 * US);
        // Slewed: never more than the bound per ns of local time (and no jump).
        expect(largestSlewPpm(published, 100, followed!.t + 1)).toBeLessThanOrEqual(DEFAULT_TRACKING_RULES.followDownPpm + 1);
        expect(f.median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
      });

      test(`${path.name}: a step down of ${stepMs} ms with evidence (a new Announce, a restarted Sync sequence) is followed at once`, () => {
        const stream = makeStream({ seconds: 80, path, seed: 21, ppm: -30, stepAtS: 40, stepNs: -stepMs * MS });
        const { published } = runFilter(stream, DEFAULT_TRACKING_RULES, (t) => (t >= 40 ? 1 : 0));
        const events = outcomesAfter(published, 40);
        expect(events[0]?.outcome).toBe("STEPPED_DOWN");
        const delay = events[0]!.t - 40;
        console.log(`${path.name}, step down ${stepMs} ms with evidence: taken after ${delay.toFixed(2)} s`);
        // On a wire a few samples; on Wi-Fi, where most samples are low anyway, as many as make a
        // false step less likely than 10^-9 (some 5 s).
        expect(delay).toBeLessThanOrEqual(path === WIRE ? 1 : 8);
        expect(events.length).toBe(1);
        expect(figures(published, events[0]!.t + (path === WIRE ? 0.5 : 10)).median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
      });
    }

    test(`${path.name}: a burst of 10–25 ms extra delay for 8 s is not a step`, () => {
      const { published } = runFilter(
        makeStream({ seconds: 80, path, seed: 22, ppm: 15, burst: { atS: 40, seconds: 8, minNs: 10 * MS, maxNs: 25 * MS } }),
      );
      expect(outcomesAfter(published, 1).filter((p) => startsTimeline(p.outcome))).toEqual([]);
      const f = figures(published, 30);
      console.log(`${path.name}, 8 s burst: ${describeFigures(f)}`);
      expect(f.median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
      expect(f.spread).toBeLessThanOrEqual(path === WIRE ? 15 * US : 150 * US);
    });
  }

  test("a burst of 2 ms more delay than the path's own for 8 s on a wire is not a step either", () => {
    // Spread (uniform 1–5 ms) unlike a wire's: not the same delay moved down.
    const { published } = runFilter(
      makeStream({ seconds: 60, path: WIRE, seed: 23, ppm: 0, burst: { atS: 30, seconds: 8, minNs: MS, maxNs: 5 * MS } }),
    );
    expect(published.filter((p) => startsTimeline(p.outcome) && p.t > 1)).toEqual([]);
    expect(figures(published, 20).absP99).toBeLessThanOrEqual(15 * US);
  });
});

describe("delay that lasts: a standing queue is not a step", () => {
  // Every Sync of [150 s, 150 s + seconds) waits `ms` more (an access point's queue under a
  // download). From 150 s the rate's baseline is full: the filter is on its steady track.
  const AT = 150;
  function withQueue(path: Path, ms: number, seconds: number, seed: number) {
    const episode = { atS: AT, seconds };
    const o = { seconds: AT + seconds + 40, path, seed, ppm: 20 };
    const published = runFilter(makeStream({ ...o, burst: { ...episode, minNs: ms * MS, maxNs: ms * MS } })).published;
    const twin = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 0 } })).published;
    return { published, twin, ...excursion(published, twin, episode) };
  }

  for (const path of [WIRE, WIFI]) {
    for (const seconds of [15, 60]) {
      test(`${path.name}, 5, 40 and 100 ms for ${seconds} s: the offset stays on its track, and is back on the queue-free one 2 s after it drains`, () => {
        for (const ms of [5, 40, 100]) {
          for (const seed of [1, 2]) {
            const q = withQueue(path, ms, seconds, seed);
            console.log(
              `${path.name} queue ${ms} ms for ${seconds} s, seed ${seed}: largest excursion ${us(q.largestNs)} µs; from 2 s after, ${us(q.afterDrainNs)} µs from a run without it`,
            );
            expect(q.published.filter((p) => p.t > 1 && startsTimeline(p.outcome))).toEqual([]);
            expect(q.largestNs).toBeLessThanOrEqual(50 * US);
            // On Wi-Fi the run without the queue had samples this one never got: their estimates differ by its own noise.
            expect(q.afterDrainNs).toBeLessThanOrEqual(path === WIRE ? 10 * US : 25 * US);
          }
        }
      });
    }

    test(`${path.name}: a queue of 40 ms for 90 s is held for the hold, then followed down slewed; its end is a step up, taken at once`, () => {
      const q = withQueue(path, 40, 90, 3);
      const followed = q.published.find((p) => p.t > AT && p.outcome === "FOLLOWED_DOWN");
      const back = q.published.find((p) => p.t > AT + 90 && p.outcome === "STEPPED_UP");
      console.log(
        `${path.name} queue 40 ms for 90 s: followed after ${(followed!.t - AT).toFixed(2)} s; back up ${(back!.t - AT - 90).toFixed(2)} s after it drained`,
      );
      // The level stands for the hold …
      for (const p of q.published.filter((x) => x.t >= AT && x.t < AT + 60))
        expect(Math.abs(p.epsNs - q.published[0]!.epsNs)).toBeLessThan(path === WIRE ? 50 * US : 10 * MS);
      expect(Math.max(...q.published.filter((x) => x.t >= AT && x.t < AT + 60).map((x) => x.epsNs))).toBeLessThanOrEqual(
        quantile(
          q.twin.filter((x) => x.t >= AT - 10 && x.t < AT).map((x) => x.epsNs),
          0.5,
        ) +
          50 * US,
      );
      // … then moves at most followDownPpm, and arrives within 65 s of the queue's start.
      expect(largestSlewPpm(q.published, AT + 60, followed!.t)).toBeLessThanOrEqual(DEFAULT_TRACKING_RULES.followDownPpm + 1);
      expect(followed!.t - AT).toBeLessThanOrEqual(65);
      expect(back!.t - (AT + 90)).toBeLessThanOrEqual(1);
    });
  }

  test("after a queue the path's spread is measured from the samples after it, not from the queue's", () => {
    const stream = makeStream({ seconds: 200, path: WIRE, seed: 43, ppm: 5, burst: { atS: AT, seconds: 20, minNs: 40 * MS, maxNs: 40 * MS } });
    let state: TrackingState = TRACKING_IDLE;
    const jitterAfter: number[] = [];
    for (const sample of stream.samples) {
      state = trackOffset(state, sample).state;
      const t = Number(sample.localTimeNs - LOCAL0) / S;
      if (t > AT + 20 && t < AT + 30) jitterAfter.push(state.timeline!.jitterNs);
    }
    // The wire's own spread is a few µs (at least the 1 µs floor); the queue's samples were 40 ms deep.
    expect(Math.max(...jitterAfter)).toBeLessThan(20 * US);
  });

  for (const path of [WIRE, WIFI]) {
    test(`${path.name}: Wi-Fi power-save delay (0–100 ms, uniform, for 20 s) moves nothing`, () => {
      for (const seed of [1, 2, 3]) {
        const episode = { atS: AT, seconds: 20 };
        const o = { seconds: AT + 60, path, seed, ppm: -20 };
        const published = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 100 * MS } })).published;
        const twin = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 0 } })).published;
        const e = excursion(published, twin, episode);
        console.log(`${path.name} power save, seed ${seed}: largest excursion ${us(e.largestNs)} µs`);
        expect(published.filter((p) => p.t > 1 && startsTimeline(p.outcome))).toEqual([]);
        expect(e.largestNs).toBeLessThanOrEqual(50 * US);
      }
    });
  }

  test("a wrong rate that lets the samples fall away is measured again when the level has followed them down", () => {
    for (const path of [WIRE, WIFI]) {
      const stream = makeStream({ seconds: 200, path, seed: 44, ppm: 0 });
      // The first 2 s: delay falling from 1 ms to nothing (a sender's start-up), a slope of +500 ppm.
      stream.samples = stream.samples.map((q) => {
        const t = Number(q.localTimeNs - LOCAL0) / S;
        return t < 2 ? { ...q, offsetNs: q.offsetNs - BigInt(Math.round((2 - t) * 500_000)) } : q;
      });
      const { published, state } = runFilter(stream);
      const followed = published.filter((p) => p.outcome === "FOLLOWED_DOWN");
      console.log(
        `${path.name}, a wrong first rate: followed down at ${followed.map((p) => p.t.toFixed(1)).join(", ")} s; rate at the end ${trackingRatePpm(state)!.toFixed(3)} ppm`,
      );
      // Once, not again and again with the same wrong rate.
      expect(followed.length).toBe(1);
      expect(Math.abs(trackingRatePpm(state)!)).toBeLessThan(path === WIRE ? 0.1 : 2);
      expect(figures(published, followed[0]!.t + 30).median).toBeLessThanOrEqual(path === WIRE ? 5 * US : 50 * US);
    }
  });

  test("evidence with no step (a new Announce, the same time) changes nothing", () => {
    for (const path of [WIRE, WIFI]) {
      const stream = makeStream({ seconds: 120, path, seed: 40, ppm: 10 });
      const plain = runFilter(stream).published;
      const evidence = runFilter(stream, DEFAULT_TRACKING_RULES, (t) => (t >= 60 ? 1 : 0)).published;
      expect(evidence.filter((p) => p.t > 1 && startsTimeline(p.outcome))).toEqual([]);
      expect(evidence.map((p) => p.offsetNs)).toEqual(plain.map((p) => p.offsetNs));
    }
  });

  test("evidence after a step down (the Announce comes 20 s later) has the step followed at once from there", () => {
    const stream = makeStream({ seconds: 120, path: WIFI, seed: 41, ppm: 10, stepAtS: 40, stepNs: -20 * MS });
    const { published } = runFilter(stream, DEFAULT_TRACKING_RULES, (t) => (t >= 60 ? 1 : 0));
    const stepped = published.find((p) => p.t > 40 && startsTimeline(p.outcome));
    expect(stepped?.outcome).toBe("STEPPED_DOWN");
    expect(stepped!.t - 60).toBeLessThanOrEqual(1);
    expect(figures(published, stepped!.t + 5).median).toBeLessThanOrEqual(50 * US);
  });
});

describe("a rate that is steady, or that wanders", () => {
  for (const ppm of [0, -20, 50]) {
    test(`Wi-Fi-like path, ${ppm} ppm, once the rate's baseline is full (from 120 s): median ≤ 15 µs above the path minimum, spread ≤ 50 µs`, () => {
      for (const seed of [1, 2, 3]) {
        const f = figures(runFilter(makeStream({ seconds: 300, path: WIFI, seed: seed * 1000 + ppm, ppm })).published, 120);
        console.log(`Wi-Fi ${ppm} ppm, seed ${seed}, from 120 s: ${describeFigures(f)}`);
        expect(Math.abs(f.median)).toBeLessThanOrEqual(15 * US);
        expect(f.spread).toBeLessThanOrEqual(50 * US);
      }
    });
  }

  test("a rate that wanders ±1 ppm over 5 minutes is followed: within 10 µs on a wire, 150 µs on Wi-Fi", () => {
    for (const path of [WIRE, WIFI]) {
      const f = figures(runFilter(makeStream({ seconds: 600, path, seed: 42, ppm: 20, ppmSine: { amplitudePpm: 1, periodS: 300 } })).published, 60);
      console.log(`${path.name}, 20 ppm ± 1 ppm over 5 min: ${describeFigures(f)}`);
      expect(f.absP99).toBeLessThanOrEqual(path === WIRE ? 10 * US : 150 * US);
    }
  });
});

describe("gaps: a sender that sleeps and resumes", () => {
  // Error over the first 10 s after the gap, for the two policies; the rate changes by
  // `wanderPpm` in the middle of the gap (temperature while it slept).
  function afterGap(path: Path, gapS: number, wanderPpm: number, gapPolicy: "continue" | "restart", seed: number) {
    const stream = makeStream({ seconds: 40 + gapS + 30, path, seed, ppm: 30, gap: { atS: 40, seconds: gapS } });
    const mid = (40 + gapS / 2) * S;
    const truth = stream.truth;
    const wandered: Stream = {
      ...stream,
      samples: stream.samples.map((s) => {
        const t = Number(s.localTimeNs - LOCAL0);
        return t > mid ? { ...s, offsetNs: BigInt.asUintN(64, s.offsetNs + BigInt(Math.round(wanderPpm * 1e-6 * (t - mid)))) } : s;
      }),
      truth: (l) => {
        const t = Number(l - LOCAL0);
        return t > mid ? BigInt.asUintN(64, truth(l) + BigInt(Math.round(wanderPpm * 1e-6 * (t - mid)))) : truth(l);
      },
    };
    const { published } = runFilter(wandered, { ...DEFAULT_TRACKING_RULES, gapPolicy });
    const resumeAt = 40 + gapS;
    const after = published.filter((p) => p.t >= resumeAt && p.t < resumeAt + 10);
    const outcome = after[0]!.outcome;
    return { meanAbs: after.reduce((a, p) => a + Math.abs(p.epsNs), 0) / after.length, outcome };
  }

  for (const path of [WIRE, WIFI]) {
    for (const gapS of [15, 60, 600]) {
      test(`${path.name}, ${gapS} s gap: continuing is at least as accurate as restarting`, () => {
        let cont = 0;
        let restart = 0;
        const outcomes = new Set<string>();
        for (const seed of [1, 2, 3]) {
          for (const wander of [0, 1]) {
            const c = afterGap(path, gapS, wander, "continue", seed);
            const r = afterGap(path, gapS, wander, "restart", seed);
            cont += c.meanAbs / 6;
            restart += r.meanAbs / 6;
            outcomes.add(c.outcome);
            expect(r.outcome).toBe("RESTARTED_AFTER_GAP");
          }
        }
        console.log(
          `${path.name}, ${gapS} s gap: mean |error above the path minimum| over 10 s after it: continue ${us(cont)} µs (${[...outcomes].join(", ")}), restart ${us(restart)} µs`,
        );
        // On a wire both are a few µs; on Wi-Fi carrying the fit (or the rate) on is much better.
        expect(cont).toBeLessThanOrEqual(path === WIRE ? restart + 2 * US : restart);
        expect(outcomes.size).toBe(1);
        // A wire measures the level again at once; a Wi-Fi path keeps the fit over short gaps.
        // (5 ppm of wander over the gap against the path's delay spread: µs on a wire, ms on Wi-Fi.)
        expect([...outcomes][0]).toBe(path === WIRE || gapS >= 600 ? "REMEASURED_AFTER_GAP" : "RESUMED");
      });
    }
  }
});

describe("the samples it is given", () => {
  test("the outcomes that begin a timeline", () => {
    const begin = ["STARTED", "STEPPED_UP", "STEPPED_DOWN", "FOLLOWED_DOWN", "RESTARTED_AFTER_GAP", "LOCAL_CLOCK_STEPPED", "PAIRED_AT_LAST"] as const;
    const others = [
      "TRACKED",
      "HELD",
      "DELAYED",
      "FOLLOWING_DOWN",
      "RISE_PENDING",
      "RISE_EXPIRED",
      "ROSE",
      "ROSE_AT_START",
      "RESUMED",
      "REMEASURED_AFTER_GAP",
      "UNPAIRED_IGNORED",
    ] as const;
    for (const o of begin) expect([o, startsTimeline(o)]).toEqual([o, true]);
    for (const o of others) expect([o, startsTimeline(o)]).toEqual([o, false]);
  });

  test("the first sample is published as it is; TRACKING_IDLE is the start", () => {
    const step = trackOffset(TRACKING_IDLE, { localTimeNs: 5n * BigInt(S), offsetNs: 123_456_789n });
    expect(step.outcome).toBe("STARTED");
    expect(step.estimate).toEqual({ localTimeNs: 5n * BigInt(S), offsetNs: 123_456_789n });
  });

  test("unpaired samples are ignored once paired ones come; a sender of unpaired ones only is tracked", () => {
    const mixed = runFilter(makeStream({ seconds: 60, path: WIRE, seed: 30, ppm: 10, unpaired: 0.1 }));
    const ignored = mixed.published.filter((p) => p.outcome === "UNPAIRED_IGNORED");
    expect(ignored.length).toBeGreaterThan(20);
    expect(figures(mixed.published, STEADY_FROM_S).absP99).toBeLessThanOrEqual(15 * US);
    // An unpaired sample's own offset (here: 300 µs high, as a Sync correction it lacks could make it) moves nothing.
    const last = mixed.published[mixed.published.length - 1]!;
    const step = trackOffset(mixed.state, { localTimeNs: last.localTimeNs + 125_000_000n, offsetNs: last.offsetNs + 300_000n, paired: false });
    expect(step.outcome).toBe("UNPAIRED_IGNORED");
    expect(step.state).toBe(mixed.state);

    const alone = runFilter(makeStream({ seconds: 60, path: WIRE, seed: 31, ppm: 10, unpaired: 1 }));
    expect(alone.published.some((p) => p.outcome === "UNPAIRED_IGNORED")).toBe(false);
    expect(figures(alone.published, STEADY_FROM_S).absP99).toBeLessThanOrEqual(15 * US);
  });

  test("a timeline begun on unpaired samples begins again at the first paired one, without them", () => {
    // Recorded on an emulated arm64 system (test/e2e/arm64-system.test.ts, Debian's ptp4l over a
    // veth, the daemon just restarted): [local time (ns after the first), offset (ns, against the
    // first paired sample's), paired]. Three Follow_Ups came without their Syncs, stamped 0.9, 3.6
    // and 30.6 ms late; then paired samples within about 10 µs. Left in the window, the first
    // tilted the fit to 476 ppm, and the published offset was 2 ms off a minute later.
    // biome-ignore format: recorded data, five samples a line
    const RECORDED: [number, number, boolean][] = [
      [0, -868904, false], [139144696, -3574928, false], [302274640, -30594600, false], [399597784, 0, true], [524731760, 10312, true],
      [650870168, -992, true], [776810232, 2816, true], [903004576, 1912, true], [1028588968, 496, true], [1154722456, 656, true],
      [1280402776, -3200, true], [1406102904, 1248, true], [1531752440, 1360, true], [1659444304, 1128, true], [1784451288, 432, true],
      [1912777200, -1768, true], [2041702880, 408, true], [2169156584, -240, true], [2295673248, -1272, true], [2425028352, -744, true],
      [2553541600, -328, true], [2679391080, -1984, true], [2805444400, -1912, true], [2931746464, -1912, true], [3060042512, 984, true],
      [3190048488, 10192, true], [3315934064, 7752, true], [3442011048, 448, true], [3567325376, 10920, true], [3692930280, 3472, true],
      [3818311472, 10568, true], [3944409512, 1008, true], [4071011224, 256, true], [4196738088, 1392, true], [4322522592, -872, true],
      [4448747424, 88, true], [4577035488, 4280, true], [4704940632, 7680, true], [4831099224, 8912, true], [4957234792, -1072, true],
      [5083577640, 6976, true], [5209212904, 256, true], [5335241928, -240, true], [5461235312, 536, true], [5587219920, 10296, true],
      [5714178760, -1520, true], [5840530800, -73976, true], [5966308456, -2496, true], [6093621112, -4368, true], [6219360080, 1336, true],
    ];
    const base = 1_700_000_000_000_000_000n;
    const samples: TrackingSample[] = RECORDED.map(([x, y, paired]) => ({ localTimeNs: LOCAL0 + BigInt(x), offsetNs: base + BigInt(y), paired }));
    // ... and 55 s more of the same wire (the same clocks: 0 ppm), paired.
    const more = makeStream({ seconds: 55, path: WIRE, seed: 40, ppm: 0, offset0: base + 40n * BigInt(US) });
    const lastX = BigInt(RECORDED[RECORDED.length - 1]![0]);
    for (const s of more.samples) samples.push({ ...s, localTimeNs: s.localTimeNs + lastX + 125n * BigInt(MS) });
    let state: TrackingState = TRACKING_IDLE;
    const outcomes: TrackingOutcome[] = [];
    const errors: number[] = [];
    for (const sample of samples) {
      const step = trackOffset(state, sample, DEFAULT_TRACKING_RULES);
      state = step.state;
      outcomes.push(step.outcome);
      if (sample.paired && step.estimate !== null) errors.push(Number(BigInt.asIntN(64, step.estimate.offsetNs - base)));
    }
    expect(outcomes.slice(0, 4)).toEqual(["STARTED", "DELAYED", "DELAYED", "PAIRED_AT_LAST"]);
    expect(outcomes).not.toContain("STEPPED_DOWN");
    // From the first paired sample on: within the recorded samples' own spread (they are within
    // ±11 µs of the first, one delayed 74 µs), never the 2 ms of the hull tilted by the unpaired ones.
    expect(Math.max(...errors.map(Math.abs))).toBeLessThanOrEqual(20 * US);
    expect(Math.abs(trackingRatePpm(state)!)).toBeLessThan(1);
  });

  test("local time that goes back by more than a second (CLOCK_REALTIME stepped) starts a new timeline", () => {
    const { state, published } = runFilter(makeStream({ seconds: 30, path: WIRE, seed: 32, ppm: 0 }));
    const last = published[published.length - 1]!;
    const step = trackOffset(state, { localTimeNs: last.localTimeNs - 3_600n * BigInt(S), offsetNs: last.offsetNs + 3_600n * BigInt(S) });
    expect(step.outcome).toBe("LOCAL_CLOCK_STEPPED");
    expect(startsTimeline(step.outcome)).toBe(true);
    expect(step.estimate).toEqual({ localTimeNs: last.localTimeNs - 3_600n * BigInt(S), offsetNs: last.offsetNs + 3_600n * BigInt(S) });
  });

  test("a master behind the local clock, its offset wrapping through zero: exact u64 arithmetic", () => {
    // Offset starts 0.5 ms above zero and falls at 50 ppm: through zero after 10 s, to 2^64 − 2.5 ms.
    const { published } = runFilter(makeStream({ seconds: 60, path: WIRE, seed: 33, ppm: -50, offset0: 500_000n + 40_000n }));
    const f = figures(published, STEADY_FROM_S);
    expect(f.absP99).toBeLessThanOrEqual(15 * US);
    const lastOffset = published[published.length - 1]!.offsetNs;
    expect(lastOffset).toBeGreaterThan(2n ** 64n - 3_000_000n);
    expect(lastOffset).toBeLessThan(2n ** 64n);
  });

  test("exact to the ns over two hours with no jitter (the reference moves forward many times)", () => {
    const still: Path = { name: "constant", baseNs: 40 * US, jitter: () => 0, spikeChance: 0, spikeMinNs: 0, spikeMaxNs: 0 };
    const stream = makeStream({ seconds: 7200, path: still, seed: 34, ppm: 0 });
    const { published } = runFilter(stream);
    for (const p of published) expect(p.epsNs).toBe(0);
  });

  test("memory is bounded; the input state is never changed; the same input gives the same output", () => {
    const stream = makeStream({ seconds: 3600, path: WIFI, seed: 35, ppm: 20 });
    let state: TrackingState = TRACKING_IDLE;
    let maxWindow = 0;
    let maxRecent = 0;
    let maxHistory = 0;
    for (const [i, sample] of stream.samples.entries()) {
      if (i % 997 === 0) {
        const frozen = deepFreeze(state);
        const a = trackOffset(frozen, sample);
        const b = trackOffset(frozen, sample);
        expect(a).toEqual(b);
      }
      state = trackOffset(state, sample).state;
      maxWindow = Math.max(maxWindow, state.timeline!.window.length);
      maxRecent = Math.max(maxRecent, state.timeline!.recent.length);
      maxHistory = Math.max(maxHistory, state.timeline!.history.length);
    }
    expect(maxWindow).toBeLessThanOrEqual(DEFAULT_TRACKING_RULES.maxWindowSamples);
    expect(maxWindow).toBeGreaterThan(230); // 30 s at 8 Hz
    // The rate's history: one point a second, for rateWindowNs (240 s).
    expect(maxHistory).toBeLessThanOrEqual(Number(DEFAULT_TRACKING_RULES.rateWindowNs / DEFAULT_TRACKING_RULES.historyBucketNs) + 1);
    expect(maxHistory).toBeGreaterThan(170);
    expect(maxRecent).toBeLessThanOrEqual(DEFAULT_TRACKING_RULES.recentSamples);
  });
});
