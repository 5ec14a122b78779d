// The tracking filter's timeline (tracking.ts): its shape, and how one is made, moved and
// measured. A timeline is the master's clock as one line, offset + rate against ours, fitted to
// the samples since it began; a step of the master's time, a local clock step or a gap begins
// another one.
//
// Coordinates. Inside, a sample is (x, y): ns since a reference sample's local time, and its
// offset minus the reference's (signed), as doubles. x stays below 2^38 ns (the reference moves
// to the oldest point kept once that is rebaseAfterNs past it; a gap restarts it or is crossed)
// and y below 2^53 ns for any offset within a step of 104 days, so both are exact integers in a
// double; |rate| ≤ maxRatePpm keeps rate·x under 2^27 ns with a rounding error under 10^-7 ns.
// The published offset is the reference's u64 offset plus the fitted value rounded to a whole
// ns, in bigint: exact modulo 2^64.

import { subU64, toI64, toU64 } from "../../time/ns.ts";
import { supportLevel, type Point } from "./hull.ts";
import { selectMedian } from "./order-statistics.ts";
import { NO_EVIDENCE, combine, faded, measureRate, type RateEvidence } from "./tracking-rate.ts";
import type { SampleClass, TrackingRules, TrackingSample } from "./tracking.ts";

/** A point of the level window; `delayed`: low (lowBelowNs below the fit) when it came. */
export interface WindowPoint extends Point {
  readonly delayed: boolean;
}

export interface RecentSample extends Point {
  /** Residual against the fit when it arrived, ns. */
  readonly r: number;
  readonly kind: SampleClass;
}

export interface Episode {
  readonly startX: number;
  readonly endX: number;
}

/** The best (highest) sample of one bucket of the rate history, and where the bucket begins. */
export interface HistoryPoint extends Point {
  readonly bucketX: number;
}

export interface TrackingTimeline {
  readonly refLocalNs: bigint;
  /** u64 */
  readonly refOffsetNs: bigint;
  /** The level window: the samples of the last windowNs, by x. */
  readonly window: readonly WindowPoint[];
  /**
   * The rate's long baseline, before the window: the best of the good samples that left it, one
   * per historyBucketNs, for rateWindowNs, by x; `bucket` is the one being filled.
   */
  readonly history: readonly HistoryPoint[];
  readonly bucket: HistoryPoint | null;
  /** The last recentSamples samples, in order of arrival, with their class. */
  readonly recent: readonly RecentSample[];
  /** The fit: offset − refOffset ≈ level + rate·x (ns; rate in ns/ns). */
  readonly level: number;
  readonly rate: number;
  /** x of the good point the level rests on; null when it must be found again (goodSupport). */
  readonly supportX: number | null;
  /** What the rate was believed to be when the timeline began (fading from priorX on), and the latest measure of it (tracking-rate.ts). */
  readonly prior: RateEvidence;
  readonly priorX: number;
  readonly measured: RateEvidence;
  /** x at which the rate was last measured. */
  readonly rateUpdatedX: number;
  /** ns. The level is the support line over the good samples of the last this much (the window's, then the history's): longer while the rate's baseline is long. */
  readonly levelSpanNs: number;
  /**
   * The last episode of delay: long runs of low samples (a queue, power-save) and the few good
   * ones between them (stepWithinNs or less apart), from the first's start to the last's end.
   * Its samples say nothing of the clocks: they are flagged delayed, the path's spread is
   * measured from after it, and the rate not until stepWithinNs after it.
   */
  readonly episode: Episode | null;
  /** The path's delay spread (jitterScale), ns, and the x after which it is measured again. */
  readonly jitterNs: number;
  readonly jitterDueX: number;
  /** x of the newest sample of any class. */
  readonly newestX: number;
  /** x of the first unconfirmed sample above the fit, null when none is pending. */
  readonly highSinceX: number | null;
  /** x of the first of the trailing low samples (lowBelowNs below the fit); null when the newest is not one. */
  readonly lowSinceX: number | null;
  /** The timeline evidence last seen (TrackingSample.timelineEpoch), and until when a step down is followed at once. */
  readonly epoch: number;
  readonly evidenceUntilX: number | null;
  readonly pairedSeen: boolean;
}

/** Rules as doubles (ns), converted once per rules object. */
export interface Numeric {
  windowNs: number;
  maxRate: number;
  stepNs: number;
  lowSpreadFactor: number;
  warmupNs: number;
  settleNs: number;
  stepWithinNs: number;
  riseSupportNs: number;
  holdNs: number;
  followDownRate: number;
  evidenceNs: number;
  reorderNs: number;
  gapNs: number;
  gapRateWander: number;
  rateMemoryNs: number;
  rateAverageNs: number;
  rateWindowNs: number;
  /** The baselines the rate is measured over: windowNs, twice that, … up to rateWindowNs. */
  rateScales: readonly number[];
  shortestBaselineNs: number;
  longestLevelNs: number;
  historyBucketNs: number;
  startPriorWeight: number;
  startJitterNs: number;
  rebaseAfterNs: number;
  recentSamples: number;
  /** The rules these are the numbers of. */
  rules: TrackingRules;
}

const NUMERIC = new WeakMap<TrackingRules, Numeric>();

/** The rules as doubles, made once per rules object (rules are never changed: a new object is made). */
export function numeric(rules: TrackingRules): Numeric {
  let n = NUMERIC.get(rules);
  if (n === undefined) {
    n = {
      windowNs: Number(rules.windowNs),
      maxRate: rules.maxRatePpm * 1e-6,
      stepNs: Number(rules.stepNs),
      lowSpreadFactor: rules.lowSpreadFactor,
      warmupNs: Number(rules.warmupNs),
      settleNs: Number(rules.settleNs),
      stepWithinNs: Number(rules.stepWithinNs),
      riseSupportNs: Number(rules.riseSupportNs),
      holdNs: Number(rules.holdNs),
      followDownRate: rules.followDownPpm * 1e-6,
      evidenceNs: Number(rules.evidenceNs),
      reorderNs: Number(rules.reorderNs),
      gapNs: Number(rules.gapNs),
      gapRateWander: rules.gapRateWanderPpm * 1e-6,
      rateMemoryNs: Number(rules.rateMemoryNs),
      rateAverageNs: Number(rules.rateAverageNs),
      rateWindowNs: Number(rules.rateWindowNs),
      rateScales: scalesOf(Number(rules.shortestBaselineNs), Number(rules.rateWindowNs)),
      shortestBaselineNs: Number(rules.shortestBaselineNs),
      longestLevelNs: Number(rules.longestLevelNs),
      historyBucketNs: Number(rules.historyBucketNs),
      startPriorWeight: 1 / (rules.startRateUncertaintyPpm * 1e-6) ** 2,
      startJitterNs: Number(rules.startJitterNs),
      rebaseAfterNs: Number(rules.rebaseAfterNs),
      recentSamples: rules.recentSamples,
      rules,
    };
    NUMERIC.set(rules, n);
  }
  return n;
}

function scalesOf(shortestNs: number, rateWindowNs: number): number[] {
  const scales = [shortestNs];
  while (scales[scales.length - 1]! * 2 <= rateWindowNs) scales.push(scales[scales.length - 1]! * 2);
  return scales;
}

// ---- coordinates ----

export function toPoint(t: { refLocalNs: bigint; refOffsetNs: bigint }, sample: TrackingSample): Point {
  return {
    x: Number(sample.localTimeNs - t.refLocalNs),
    y: Number(toI64(subU64(sample.offsetNs, t.refOffsetNs))),
  };
}

/** The fitted line at x, as what the region publishes. */
export function estimateAt(t: TrackingTimeline, x: number): { localTimeNs: bigint; offsetNs: bigint } {
  return {
    localTimeNs: t.refLocalNs + BigInt(x),
    offsetNs: toU64(t.refOffsetNs + BigInt(Math.round(t.level + t.rate * x))),
  };
}

/**
 * How far below the fit a sample is low (delayed, or after a step down): more than the path's
 * own delay would put it, lowSpreadFactor × its spread, and never more than stepNs. On a wire
 * that is tens of µs; on a Wi-Fi path, whose spread is ms, stepNs.
 */
export function lowBelowNs(jitterNs: number, n: Numeric): number {
  return Math.min(n.stepNs, n.lowSpreadFactor * jitterNs);
}

export function windowSpan(window: readonly Point[]): number {
  return window.length < 2 ? 0 : window[window.length - 1]!.x - window[0]!.x;
}

export function clamp(v: number, limit: number): number {
  return v > limit ? limit : v < -limit ? -limit : v;
}

// ---- the rate ----

/** A new timeline's rate: 0 ppm, believed to within startRateUncertaintyPpm. */
export function startEvidence(n: Numeric): RateEvidence {
  return { sum: 0, weight: n.startPriorWeight };
}

/** All that `t` knows of the rate at x: its prior, faded, and its latest measure. */
export function evidenceAt(t: TrackingTimeline, x: number, n: Numeric): RateEvidence {
  return combine(faded(t.prior, x - t.priorX, n.rateMemoryNs), t.measured);
}

/** All that `t` knows of the rate now: what a timeline after it begins with. */
export function evidenceOf(t: TrackingTimeline, n: Numeric): RateEvidence {
  return evidenceAt(t, t.newestX, n);
}

export function rateOf(e: RateEvidence, n: Numeric): number {
  return e.weight > 0 ? clamp(e.sum / e.weight, n.maxRate) : 0;
}

// ---- making timelines ----

/** Points by x; of two at the same x the higher (the less delayed) is kept. */
function sortedUnique<P extends Point>(points: readonly P[]): P[] {
  const sorted = [...points].sort((a, b) => a.x - b.x || b.y - a.y);
  const out: P[] = [];
  for (const p of sorted) if (out.length === 0 || out[out.length - 1]!.x !== p.x) out.push(p);
  return out;
}

/** A timeline made of `points` (relative to `ref`, in order of arrival), with the rate evidence given. */
function buildTimeline(
  ref: { refLocalNs: bigint; refOffsetNs: bigint },
  points: readonly Point[],
  evidence: RateEvidence,
  from: { pairedSeen: boolean; epoch: number; jitterNs: number },
  n: Numeric,
  measure = false,
): TrackingTimeline {
  const sorted = sortedUnique(points);
  // Measured from the points themselves when asked (they are then many, and the prior suspect).
  const latest = measure
    ? measureRate(sorted, sorted.length >= 2 ? (sorted.length - 1) / windowSpan(sorted) : 0, from.jitterNs, n.rules, n.rateScales)
    : null;
  const measured = latest === null ? NO_EVIDENCE : latest.evidence;
  const rate = rateOf(combine(evidence, measured), n);
  const level = supportLevel(sorted, rate);
  const lowNs = lowBelowNs(from.jitterNs, n);
  const window = sorted.map((p) => ({ x: p.x, y: p.y, delayed: p.y - (level + rate * p.x) < -lowNs }));
  let newestX = -Infinity;
  for (const p of points) if (p.x > newestX) newestX = p.x;
  const recent: RecentSample[] = points.slice(-n.recentSamples).map((p) => {
    const r = p.y - (level + rate * p.x);
    return { x: p.x, y: p.y, r, kind: r < -lowNs ? "low" : "inlier" };
  });
  let lowSinceX: number | null = null;
  for (const s of recent) lowSinceX = s.kind === "low" ? (lowSinceX ?? s.x) : null;
  return {
    refLocalNs: ref.refLocalNs,
    refOffsetNs: ref.refOffsetNs,
    window,
    history: [],
    bucket: null,
    recent,
    level,
    rate,
    supportX: null,
    prior: evidence,
    priorX: newestX,
    measured,
    rateUpdatedX: newestX,
    levelSpanNs: n.shortestBaselineNs,
    episode: null,
    jitterNs: from.jitterNs,
    jitterDueX: newestX,
    newestX,
    highSinceX: null,
    lowSinceX,
    epoch: from.epoch,
    evidenceUntilX: null,
    pairedSeen: from.pairedSeen,
  };
}

/** A timeline from one sample, which becomes the reference. */
export function startFrom(sample: TrackingSample, evidence: RateEvidence, pairedSeen: boolean, n: Numeric): TrackingTimeline {
  const ref = { refLocalNs: sample.localTimeNs, refOffsetNs: toU64(sample.offsetNs) };
  const from = { pairedSeen: pairedSeen || sample.paired !== false, epoch: sample.timelineEpoch ?? 0, jitterNs: n.startJitterNs };
  return buildTimeline(ref, [{ x: 0, y: 0 }], evidence, from, n);
}

/**
 * A new timeline from some points of `t` (relative to t's reference): the first becomes the
 * reference. Its rate starts from what `t` knows of it, or from `evidence`, and with `measure`
 * is measured from the points too.
 */
export function restartFrom(
  t: TrackingTimeline,
  points: readonly Point[],
  n: Numeric,
  evidence: RateEvidence = evidenceOf(t, n),
  measure = false,
): TrackingTimeline {
  const origin = points[0]!;
  const ref = { refLocalNs: t.refLocalNs + BigInt(origin.x), refOffsetNs: toU64(t.refOffsetNs + BigInt(origin.y)) };
  const shifted = points.map((p) => ({ x: p.x - origin.x, y: p.y - origin.y }));
  return buildTimeline(ref, shifted, evidence, t, n, measure);
}

// ---- moving a timeline ----

/** Every coordinate of `t` moved by (dx, dy); the fitted line stays where it was. */
function shifted(t: TrackingTimeline, dx: number, dy: number): TrackingTimeline {
  return {
    ...t,
    window: t.window.map((p) => ({ x: p.x + dx, y: p.y + dy, delayed: p.delayed })),
    history: t.history.map((p) => ({ x: p.x + dx, y: p.y + dy, bucketX: p.bucketX + dx })),
    bucket: t.bucket === null ? null : { x: t.bucket.x + dx, y: t.bucket.y + dy, bucketX: t.bucket.bucketX + dx },
    supportX: t.supportX === null ? null : t.supportX + dx,
    recent: t.recent.map((p) => ({ x: p.x + dx, y: p.y + dy, r: p.r, kind: p.kind })),
    level: t.level - t.rate * dx + dy,
    priorX: t.priorX + dx,
    rateUpdatedX: t.rateUpdatedX + dx,
    jitterDueX: t.jitterDueX + dx,
    newestX: t.newestX + dx,
    highSinceX: t.highSinceX === null ? null : t.highSinceX + dx,
    lowSinceX: t.lowSinceX === null ? null : t.lowSinceX + dx,
    episode: t.episode === null ? null : { startX: t.episode.startX + dx, endX: t.episode.endX + dx },
    evidenceUntilX: t.evidenceUntilX === null ? null : t.evidenceUntilX + dx,
  };
}

/** Moves the reference to the oldest point kept once it is far behind (keeps x small). */
export function rebase(t: TrackingTimeline, n: Numeric): TrackingTimeline {
  const origin = t.history[0] ?? t.window[0];
  if (origin === undefined || origin.x < n.rebaseAfterNs) return t;
  const moved = shifted(t, -origin.x, -origin.y);
  return { ...moved, refLocalNs: t.refLocalNs + BigInt(origin.x), refOffsetNs: toU64(t.refOffsetNs + BigInt(origin.y)) };
}

/**
 * The timeline moved along its fit to just before `x` (a sample after a gap): every point and
 * time keeps its place relative to the others and to the fitted line, so the fit is the same
 * and its points age out of the window from now on. A rise pending before the gap is dropped,
 * and so is a run of low samples.
 */
export function acrossGap(t: TrackingTimeline, x: number): TrackingTimeline {
  const w = t.window;
  const spacing = w.length >= 2 ? windowSpan(w) / (w.length - 1) : 0;
  // Whole ns, so that every coordinate stays an integer (rebase turns them into bigints).
  const dx = Math.round(x - t.newestX - spacing);
  const dy = Math.round(t.rate * dx);
  const moved = shifted(t, dx, dy);
  return {
    ...moved,
    recent: moved.recent.map((q) => (q.kind === "high" || q.kind === "held" ? { ...q, kind: "dropped" as const } : q)),
    highSinceX: null,
    lowSinceX: null,
  };
}

// ---- the window and the history ----

/** The window with `p` inserted in order of x, and the old or surplus points it dropped (oldest first). */
export function withPoint(
  window: readonly WindowPoint[],
  p: WindowPoint,
  rules: TrackingRules,
  n: Numeric,
): { window: readonly WindowPoint[]; dropped: readonly WindowPoint[] } {
  let i = window.length;
  while (i > 0 && window[i - 1]!.x > p.x) i--;
  const replaces = i > 0 && window[i - 1]!.x === p.x;
  if (replaces && window[i - 1]!.y >= p.y) return { window, dropped: NONE };
  if (i === window.length && !replaces) {
    // The usual case: the newest sample, at the end; one copy of what stays.
    const length = window.length + 1;
    let drop = 0;
    while (drop < length - 1 && (window[drop]!.x < p.x - n.windowNs || length - drop > rules.maxWindowSamples)) drop++;
    const out = window.slice(drop);
    out.push(p);
    return { window: out, dropped: drop > 0 ? window.slice(0, drop) : NONE };
  }
  const out = replaces ? [...window.slice(0, i - 1), p, ...window.slice(i)] : [...window.slice(0, i), p, ...window.slice(i)];
  const newest = out[out.length - 1]!.x;
  let drop = 0;
  while (drop < out.length - 1 && (out[drop]!.x < newest - n.windowNs || out.length - drop > rules.maxWindowSamples)) drop++;
  return { window: drop > 0 ? out.slice(drop) : out, dropped: drop > 0 ? out.slice(0, drop) : NONE };
}

const NONE: readonly WindowPoint[] = [];

/**
 * The history with the good points that left the window counted: the best point of each bucket
 * of historyBucketNs against the fit's slope `rate` (the one being filled is `bucket`; a bucket
 * begins at the first point that did not fit the one before), buckets older than rateWindowNs
 * before the newest dropped.
 */
export function withLeaving(
  history: readonly HistoryPoint[],
  bucket: HistoryPoint | null,
  leaving: readonly WindowPoint[],
  rate: number,
  n: Numeric,
): { history: readonly HistoryPoint[]; bucket: HistoryPoint | null } {
  let out: HistoryPoint[] | null = null;
  let b = bucket;
  for (const p of leaving) {
    if (p.delayed || (b !== null && p.x < b.bucketX)) continue;
    if (b !== null && p.x < b.bucketX + n.historyBucketNs) {
      if (p.y - rate * p.x > b.y - rate * b.x) b = { x: p.x, y: p.y, bucketX: b.bucketX };
      continue;
    }
    if (b !== null) {
      out ??= history.slice();
      out.push(b);
    }
    b = { x: p.x, y: p.y, bucketX: p.x };
  }
  if (out === null) return { history, bucket: b };
  let drop = 0;
  while (drop < out.length - 1 && out[drop]!.x < b!.x - n.rateWindowNs) drop++;
  return { history: drop > 0 ? out.slice(drop) : out, bucket: b };
}

/**
 * The path's delay spread: the median depth of the window's last 32 points below the line of
 * slope `rate` on or above all of them, leaving out those of a queue that has just ended (they
 * are that queue's delay, not the path's): `previous` while there are not yet 4 after it, and
 * startJitterNs until there are 4 at all.
 */
export function jitterScale(window: readonly WindowPoint[], rate: number, episode: Episode | null, previous: number, n: Numeric): number {
  let from = Math.max(0, window.length - DEPTHS.length);
  while (episode !== null && from < window.length && window[from]!.x <= episode.endX) from++;
  const count = window.length - from;
  if (count < 4) return window.length < 4 ? n.startJitterNs : previous;
  let level = -Infinity;
  for (let i = from; i < window.length; i++) level = Math.max(level, window[i]!.y - rate * window[i]!.x);
  for (let i = 0; i < count; i++) {
    const p = window[from + i]!;
    DEPTHS[i] = level + rate * p.x - p.y;
  }
  return Math.max(selectMedian(DEPTHS, count), 1000);
}

/** Scratch space of jitterScale (never part of a state). */
const DEPTHS = new Float64Array(32);
