// Synthetic offset-sample streams with a known truth, for the offset filters' tests and the
// offline benchmark (bench/offset-scenarios.ts): a master clock at a given rate against ours,
// Syncs sent at 8 Hz, each delayed by a seeded random path delay; steps of the master's time,
// bursts of extra delay, standing queues, gaps. Every stream is deterministic (prng.ts).
//
// Figures: "error" is published − true offset at the published local time; "above the path
// minimum" (eps) is how far the published offset is below the best any filter could do, the
// true offset less the path's minimum one-way delay (delay only ever makes a sample late).

import {
  DEFAULT_TRACKING_RULES,
  TRACKING_IDLE,
  trackOffset,
  type TrackingOutcome,
  type TrackingRules,
  type TrackingSample,
  type TrackingState,
} from "../../src/clock/offset/tracking.ts";
import { createPrng, type Prng } from "./prng.ts";

export const US = 1_000;
export const MS = 1_000_000;
export const S = 1_000_000_000;

// ---- paths: base delay + jitter (+ rare spikes) ----

export interface Path {
  name: string;
  baseNs: number;
  jitter: (random: Prng) => number;
  spikeChance: number;
  spikeMinNs: number;
  spikeMaxNs: number;
}

export const exponential = (meanNs: number) => (random: Prng) => -Math.log(1 - random.float()) * meanNs;
export const pareto = (alpha: number, scaleNs: number) => (random: Prng) => scaleNs * ((1 - random.float()) ** (-1 / alpha) - 1);

/** A veth or Ethernet path seen through a loaded host: 40 µs + exponential (mean 3 µs), rare hiccups. */
export const WIRE: Path = { name: "wire", baseNs: 40 * US, jitter: exponential(3 * US), spikeChance: 0.005, spikeMinNs: 50 * US, spikeMaxNs: 2 * MS };
/** The standard Wi-Fi-like path: 1 ms + exponential (mean 2 ms) + 2 % spikes of 10–20 ms. */
export const WIFI: Path = { name: "Wi-Fi", baseNs: MS, jitter: exponential(2 * MS), spikeChance: 0.02, spikeMinNs: 10 * MS, spikeMaxNs: 20 * MS };
/** A long tail: 1 ms + Pareto (shape 1.5, scale 1 ms: median 0.6 ms, unbounded mean tail) + 1 % spikes of 20–100 ms. */
export const PARETO: Path = { name: "Pareto", baseNs: MS, jitter: pareto(1.5, MS), spikeChance: 0.01, spikeMinNs: 20 * MS, spikeMaxNs: 100 * MS };

// ---- streams ----

export interface StreamOptions {
  seconds: number;
  path: Path;
  seed: number;
  /** The master's rate against ours, ppm (positive: the master runs fast). */
  ppm: number;
  /** The rate changes by this much per minute (temperature). */
  ppmPerMinute?: number;
  /** The rate also wanders: ± amplitudePpm, a sine of periodS. */
  ppmSine?: { amplitudePpm: number; periodS: number };
  /** A step of the master's time by stepNs at stepAtS. */
  stepAtS?: number;
  stepNs?: number;
  /** Extra delay, uniform in [minNs, maxNs], for every Sync sent in [atS, atS + seconds) (a burst; minNs = maxNs: a standing queue). */
  burst?: { atS: number; seconds: number; minNs: number; maxNs: number };
  /** No Sync sent in [atS, atS + seconds). */
  gap?: { atS: number; seconds: number };
  /** Chance that a sample is delivered after the next one. */
  reorder?: number;
  /** Chance that a sample is unpaired (a Follow_Up used without its Sync). */
  unpaired?: number;
  /** The true offset at the start, u64 (default: a master far ahead of us). */
  offset0?: bigint;
}

export const LOCAL0 = 86_400n * 1_000_000_000n; // a day of uptime
const DEFAULT_OFFSET0 = 1_700_000_000_000_000_000n;

export interface Stream {
  samples: TrackingSample[];
  /** The true offset (u64) at a local time. */
  truth(localTimeNs: bigint): bigint;
  pathMinNs: number;
}

/** The true offset − offset0 at t ns after LOCAL0 (a double: at most hours of drift, exact to < 1 ns). */
function driftOf(o: StreamOptions): (t: number) => number {
  return (t) => {
    const minutes = t / (60 * S);
    let ppmNs = o.ppm * t + (o.ppmPerMinute ?? 0) * 60 * S * minutes * minutes * 0.5;
    const sine = o.ppmSine;
    if (sine) {
      // ∫ A·sin(2πt/P) dt = A·P/(2π)·(1 − cos(2πt/P))
      const w = (2 * Math.PI) / (sine.periodS * S);
      ppmNs += (sine.amplitudePpm / w) * (1 - Math.cos(w * t));
    }
    const step = o.stepAtS !== undefined && t >= o.stepAtS * S ? o.stepNs! : 0;
    return ppmNs * 1e-6 + step;
  };
}

export function makeStream(o: StreamOptions): Stream {
  const random = createPrng(o.seed);
  const offset0 = o.offset0 ?? DEFAULT_OFFSET0;
  const drift = driftOf(o);
  const samples: TrackingSample[] = [];
  for (let k = 0; k < o.seconds * 8; k++) {
    const sentNs = k * 125 * MS + random.float() * MS; // the sender's timer is not exact either
    let delayNs = o.path.baseNs + o.path.jitter(random);
    if (random.float() < o.path.spikeChance) delayNs += o.path.spikeMinNs + random.float() * (o.path.spikeMaxNs - o.path.spikeMinNs);
    const b = o.burst;
    // Drawn for every Sync, so that a twin stream without the burst (minNs = maxNs = 0) has the same delays elsewhere.
    const burstDraw = b ? random.float() : 0;
    if (b && sentNs >= b.atS * S && sentNs < (b.atS + b.seconds) * S) delayNs += b.minNs + burstDraw * (b.maxNs - b.minNs);
    const unpaired = o.unpaired !== undefined && random.float() < o.unpaired;
    if (o.gap && sentNs >= o.gap.atS * S && sentNs < (o.gap.atS + o.gap.seconds) * S) continue;
    const receivedNs = Math.round(sentNs + delayNs);
    samples.push({
      localTimeNs: LOCAL0 + BigInt(receivedNs),
      // master time at departure − local time at arrival
      offsetNs: BigInt.asUintN(64, offset0 + BigInt(Math.round(drift(sentNs))) - BigInt(receivedNs - Math.round(sentNs))),
      paired: !unpaired,
    });
  }
  if (o.reorder) {
    for (let i = 1; i < samples.length; i++) {
      if (random.float() < o.reorder) [samples[i - 1], samples[i]] = [samples[i]!, samples[i - 1]!];
    }
  }
  return {
    samples,
    truth: (localTimeNs) => BigInt.asUintN(64, offset0 + BigInt(Math.round(drift(Number(localTimeNs - LOCAL0))))),
    pathMinNs: o.path.baseNs,
  };
}

// ---- running a filter, and what it published ----

export interface Published {
  /** s since the stream's start. */
  t: number;
  localTimeNs: bigint;
  offsetNs: bigint;
  outcome: TrackingOutcome;
  /** published − true, ns. */
  errorNs: number;
  /** true − path minimum − published, ns: how far below the best possible. */
  epsNs: number;
}

/** The tracking filter over `stream`; `epochAt` gives each sample's timeline evidence (default: none). */
export function runFilter(
  stream: Stream,
  rules: TrackingRules = DEFAULT_TRACKING_RULES,
  epochAt: (t: number) => number = () => 0,
): { published: Published[]; state: TrackingState } {
  let state: TrackingState = TRACKING_IDLE;
  const published: Published[] = [];
  for (const sample of stream.samples) {
    const step = trackOffset(state, { ...sample, timelineEpoch: epochAt(Number(sample.localTimeNs - LOCAL0) / S) }, rules);
    state = step.state;
    const e = step.estimate;
    if (e === null) continue;
    const errorNs = Number(BigInt.asIntN(64, e.offsetNs - stream.truth(e.localTimeNs)));
    published.push({
      t: Number(e.localTimeNs - LOCAL0) / S,
      localTimeNs: e.localTimeNs,
      offsetNs: e.offsetNs,
      outcome: step.outcome,
      errorNs,
      epsNs: -errorNs - stream.pathMinNs,
    });
  }
  return { published, state };
}

export function quantile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export interface Figures {
  median: number;
  p1: number;
  p99: number;
  spread: number;
  /** |eps| p99 */
  absP99: number;
}

export function figures(published: Published[], fromS: number, toS = Infinity): Figures {
  const eps = published.filter((p) => p.t >= fromS && p.t < toS).map((p) => p.epsNs);
  const p1 = quantile(eps, 0.01);
  const p99 = quantile(eps, 0.99);
  return { median: quantile(eps, 0.5), p1, p99, spread: p99 - p1, absP99: quantile(eps.map(Math.abs), 0.99) };
}

/** First time from which the estimate stays within 100 µs of `final` (eps) for 2 s. */
export function convergenceS(published: Published[], finalEps: number): number {
  for (let i = 0; i < published.length; i++) {
    const t0 = published[i]!.t;
    let ok = true;
    for (let j = i; j < published.length && published[j]!.t < t0 + 2; j++) {
      if (Math.abs(published[j]!.epsNs - finalEps) > 100 * US) {
        ok = false;
        break;
      }
    }
    if (ok) return t0 - published[0]!.t;
  }
  return Infinity;
}

/**
 * What an episode of extra delay (a queue, a burst) did: the largest |eps − eps before it| from
 * its start to `afterS` past its end, and the largest |eps − eps of a twin run without it| from
 * `settleS` after its end on (the twin is the same stream with the episode left out).
 */
export function excursion(
  published: Published[],
  twin: Published[],
  episode: { atS: number; seconds: number },
  settleS = 2,
  afterS = 20,
): { largestNs: number; afterDrainNs: number } {
  const end = episode.atS + episode.seconds;
  const before = quantile(
    published.filter((p) => p.t >= episode.atS - 10 && p.t < episode.atS).map((p) => p.epsNs),
    0.5,
  );
  let largestNs = 0;
  for (const p of published) if (p.t >= episode.atS && p.t < end + afterS) largestNs = Math.max(largestNs, Math.abs(p.epsNs - before));
  let afterDrainNs = 0;
  let j = 0;
  for (const p of published) {
    if (p.t < end + settleS || p.t >= end + afterS) continue;
    while (j + 1 < twin.length && twin[j + 1]!.t <= p.t) j++;
    afterDrainNs = Math.max(afterDrainNs, Math.abs(p.epsNs - twin[j]!.epsNs));
  }
  return { largestNs, afterDrainNs };
}

export const us = (ns: number) => (ns / 1000).toFixed(1);
export const describeFigures = (f: Figures) =>
  `above the path minimum: median ${us(f.median)} µs, p1 ${us(f.p1)}, p99 ${us(f.p99)} (spread ${us(f.spread)}), |·| p99 ${us(f.absP99)} µs`;
