// The "tracking" offset filter: the master's clock modelled as offset + rate against the local
// clock, fitted to the upper envelope of the offset samples, and published at each sample's
// local time. Pure: no sockets, clocks or logs; the state is never changed, a new one is
// returned; memory is bounded (rules.maxWindowSamples + rules.recentSamples points).
//
// Why this method. Every offset sample is the true offset minus that Sync's one-way delay:
//   offset_i = a + b·t_i − d_i,   d_i ≥ d_min ≥ 0,
// so delay only ever pushes a sample down, and the best possible estimate is the line under
// which every sample lies and which is as low as that allows: the true offset less the path
// minimum. The samples' upper convex hull is that envelope; fitting a line to it is the linear
// programme of Moon, Skelly and Towsley ("Estimation and removal of clock skew from network
// delay measurements", INFOCOM 1999), used for skew estimation from one-way delays since
// (e.g. Zhang, Liu and Xia, INFOCOM 2002). It uses only the samples that met the least delay,
// so exponential or Pareto jitter and spikes of any size do not move it; its error falls as
// 1/n (n samples in the window), not as 1/√n as a regression's does; and it has no loop gain
// to tune. The other candidates:
//   - a PI servo on minimum-filtered samples (ptp4l) follows a rate change with a lag set by
//     its gains, and its output carries whatever the minimum filter lets through;
//   - NTP's clock filter picks the least-delayed of 8 samples by round-trip delay, which
//     one-way PTP (no Delay_Req) does not have, and its frequency loop takes minutes;
//   - chrony's regression over selected samples is least squares: unbiased only if the noise
//     is symmetric, which one-way delay is not (it finds the mean delay, not the minimum).
//
// The fit. The window holds the samples of the last windowNs (30 s, the top of the 10–30 s
// range: over 21 seeded runs of a Wi-Fi-like path the worst median error above the path
// minimum was 40 µs with 20 s and 22 µs with 30 s, and a rate changing with temperature, 1 ppm
// a minute being fast, still bends the true curve by under 2 µs in it).
//   - The rate is the slope of the hull's chord between a quarter and three quarters of the
//     window (a long baseline; the hull edge over the mean time, the programme's own optimum,
//     can be short and its slope noisy), computed every half second (every sample while the
//     window is small) and averaged over about rateMemoryNs (30 s), each slope weighed by its
//     precision: the path's delay spread over (samples ×
//     span), squared (slopeErrorFactor). A new timeline starts from 0 ppm with the weight of
//     startRateUncertaintyPpm (100 ppm), so the first seconds of a Wi-Fi path, whose slopes are
//     off by hundreds of ppm, barely move it while a wire's are believed at once. The rate is
//     kept within ±maxRatePpm. Samples more than stepNs below the fit are left out of the hull that
//     gives the slope: at an end of the window a delayed sample is a vertex all the same.
//   - The level is the support line of that slope: the lowest line of that slope with every
//     window point on or under it, i.e. the best sample moved along the rate to now.
//   - The published offset is that line at the sample's local time (at the newest local time
//     seen, for a sample that arrives after a newer one: the published time never goes back).
//
// Coordinates. Inside, a sample is (x, y): ns since a reference sample's local time, and its
// offset minus the reference's (signed), as doubles. x stays below 2^37 ns (the reference
// moves to the window's oldest point once that is rebaseAfterNs past it; a gap restarts it or
// is crossed as below) and y is below 2^53 ns (104 days) for any offset within a step of that
// size, so both are exact integers in a double; |b| ≤ maxRatePpm·10^-6 keeps b·x under 2^27 ns
// with a rounding error under 10^-7 ns. The published offset is the reference's u64 offset
// plus the fitted value rounded to a whole ns, in bigint: exact modulo 2^64. (Only a step of
// the master's time by more than 104 days rounds its first samples to 2 µs, until they leave
// the window.)
//
// Each sample against the fit before it (residual r = offset − fit):
//   - within −stepNs … +riseSupportNs (−1 ms … +0.25 ms): part of the fit.
//   - more than stepNs below: delay (a spike, a burst) or a step of the master's time down.
//     It joins the window as delayed (it never holds the level up while better samples are
//     there, and the level follows what the path delivers if nothing better is left). A step
//     down is taken when the latest samples have all been that far below, for at least
//     stepDownMinNs (3 s), in a run long enough that this path's own delay would make it less
//     likely than stepDownFalseAlarm (from the share of such samples before the run: on a
//     Wi-Fi path with a few ms of jitter most samples are over 1 ms late, and 3 s is not
//     enough there), and spread below their own top no more than the path's were below the
//     fit (stepDownSpreadFactor, stepDownSpreadFloorNs): a step moves every sample by the same
//     amount and leaves the delay as it was; a burst of delay spreads them. A burst of
//     constant extra delay that outlasts the run cannot be told from a step by one-way timing:
//     it is taken as one, and its end is then a step up. The new timeline starts from the
//     run's last stepDownMinNs (earlier samples of the run may be delays from before the step).
//   - more than riseSupportNs above: delay cannot cause it. The fit is kept (samples above it
//     are held back) until stepUpSamples (3, it included) such samples within stepUpWithinNs
//     (2 s) confirm a rise; after a step up a sample is above the old fit by the step less its
//     own delay, so on Wi-Fi a 1.5 ms step puts few samples 1 ms above but most 0.25 ms above.
//     Confirmed, the window begins again with every sample since the first (the hull must never
//     bridge two levels: its slope would take the rise for a rate): a new timeline (STEPPED_UP)
//     if the rise they show is over stepNs, else ROSE (the fit was low). Not confirmed, the
//     first joins the window if within stepNs (a good sample) and is dropped if not.
//   - while the window spans less than warmupNs (its first 2 s), a sample more than stepNs
//     above starts the timeline again from it at once: the earlier samples were simply late;
//     and until it spans settleNs (10 s) a sample up to stepNs above is part of the fit (no
//     rise is pending: a fit still finding its rate needs exactly those samples).
// A new timeline also starts when local time goes back by more than reorderNs (CLOCK_REALTIME
// stepped). The caller starts from TRACKING_IDLE on a new grandmaster or a play-begin restart;
// the mastership start time is the caller's and no restart here changes it.
//
// Gaps. After no sample for gapNs (10 s), with gapPolicy "continue" (the default) the rate
// carries on; the level too, the window moved along the fit to the new sample (RESUMED), while
// the rate's possible drift over the gap (gapRateWanderPpm × gap) is below the path's delay
// spread; beyond that the level is measured again from the new sample (REMEASURED_AFTER_GAP).
// "restart" starts from nothing. Measured in test/clock/offset-tracking.test.ts: on a wire
// both are within a µs of each other; on a Wi-Fi-like path continuing is 1.5–3 times more
// accurate over the 10 s after gaps of 15 s to 10 min.
//
// Unpaired samples (a Follow_Up used without its Sync, syfu.ts) are late by the sender's
// Sync→Follow_Up gap and lack the Sync's correctionField, which may be of either sign: they
// are ignored once the timeline has had a paired sample, and used when every sample is
// unpaired (a sender whose Syncs never arrive: all alike, so the fit is consistent). A timeline
// begun on unpaired samples begins again at the first paired one (PAIRED_AT_LAST), without them
// and from 0 ppm: they are late by more than the Sync's own delay (on a slow machine just after
// start-up, a Follow_Up's stamp can be milliseconds late), and left in the window they tilted
// the hull by hundreds of ppm (seen on an emulated arm64 system: a first unpaired sample 0.9 ms
// below the paired ones that followed gave a 476 ppm rate, and errors of 2 ms for a minute).

import { NS_PER_MS, NS_PER_SECOND, NS_PER_US, subU64, toI64, toU64 } from "../../time/ns.ts";

export interface TrackingSample {
  readonly localTimeNs: bigint;
  /** master − local, u64 */
  readonly offsetNs: bigint;
  /** false for a Follow_Up used without its Sync (syfu.ts); absent means paired. */
  readonly paired?: boolean;
}

export type GapPolicy = "continue" | "restart";

export interface TrackingRules {
  /** ns. The window: samples this much older than the newest one in it leave it. */
  windowNs: bigint;
  /** samples. The window's size limit (memory bound; at 8 Hz a 30 s window holds 240). */
  maxWindowSamples: number;
  /** ppm. The fitted rate is kept within ± this. */
  maxRatePpm: number;
  /** ns. A sample this far below the fit is delayed (or after a step down); a rise of more is a step up. */
  stepNs: bigint;
  /** ns. While the window spans less than this, a sample stepNs above the fit starts it again. */
  warmupNs: bigint;
  /** ns. Until the window spans this, a sample up to stepNs above the fit is part of it (no rise is pending). */
  settleNs: bigint;
  /** samples. This many samples more than riseSupportNs above the fit confirm a rise … */
  stepUpSamples: number;
  /** ns. … (a sample after a step up is above the old fit by the step less its own delay) … */
  riseSupportNs: bigint;
  /** ns. … when they come within this time of the first of them. */
  stepUpWithinNs: bigint;
  /** ns. A run of samples all stepNs below the fit is a step down only if it lasts this long … */
  stepDownMinNs: bigint;
  /** probability. … and this path's delay alone would make such a run less likely than this … */
  stepDownFalseAlarm: number;
  /** factor. … and its samples spread below their top at most this times the path's median depth … */
  stepDownSpreadFactor: number;
  /** ns. … plus this. */
  stepDownSpreadFloorNs: bigint;
  /** samples. Recent samples kept for the step rules (the longest step-down run is half of it). */
  recentSamples: number;
  /** ns. A sample this much older than the newest means the local clock went back: restart. */
  reorderNs: bigint;
  /** ns. No sample for this long is a gap: … */
  gapNs: bigint;
  /** … after which the timeline continues from its rate estimate or restarts from nothing. */
  gapPolicy: GapPolicy;
  /**
   * ppm. "continue": how far the rate may have wandered during a gap. While that times the gap
   * is less than the path's delay spread, the fit carries on across the gap; beyond, the
   * level is measured again from the new samples (the rate carries on either way).
   */
  gapRateWanderPpm: number;
  /** ns. The rate is an average of the window's slopes over about this long (older ones fade out). */
  rateMemoryNs: bigint;
  /** ppm. A new timeline's rate starts at 0 ppm, believed to within this (one standard deviation). */
  startRateUncertaintyPpm: number;
  /** ns. The path's delay spread assumed until 4 samples have measured it. */
  startJitterNs: bigint;
  /** factor. A window slope's standard error is this × (path's median delay above the fit) / (samples × span). */
  slopeErrorFactor: number;
  /** ns. The reference moves forward once the window's oldest point is this far past it. */
  rebaseAfterNs: bigint;
}

export const DEFAULT_TRACKING_RULES: TrackingRules = {
  windowNs: 30n * NS_PER_SECOND,
  maxWindowSamples: 256,
  maxRatePpm: 500,
  stepNs: NS_PER_MS,
  warmupNs: 2n * NS_PER_SECOND,
  settleNs: 10n * NS_PER_SECOND,
  stepUpSamples: 3,
  riseSupportNs: 250n * NS_PER_US,
  stepUpWithinNs: 2n * NS_PER_SECOND,
  stepDownMinNs: 3n * NS_PER_SECOND,
  stepDownFalseAlarm: 1e-9,
  stepDownSpreadFactor: 2,
  stepDownSpreadFloorNs: 100n * NS_PER_US,
  recentSamples: 128,
  reorderNs: NS_PER_SECOND,
  gapNs: 10n * NS_PER_SECOND,
  gapPolicy: "continue",
  gapRateWanderPpm: 5,
  rateMemoryNs: 30n * NS_PER_SECOND,
  startRateUncertaintyPpm: 100,
  startJitterNs: NS_PER_MS,
  slopeErrorFactor: 4,
  rebaseAfterNs: 60n * NS_PER_SECOND,
};

/** A sample relative to the timeline's reference: x ns after it, y ns of offset above it. */
export interface TrackedPoint {
  readonly x: number;
  readonly y: number;
}

/** "dropped": a sample above the fit whose step up was not confirmed. */
export type SampleClass = "inlier" | "held" | "high" | "low" | "dropped";

/** A point of the window; `delayed`: more than stepNs below the fit when it came. */
export interface WindowPoint extends TrackedPoint {
  readonly delayed: boolean;
}

export interface RecentSample extends TrackedPoint {
  /** Residual against the fit when it arrived, ns. */
  readonly r: number;
  readonly kind: SampleClass;
}

export interface TrackingTimeline {
  readonly refLocalNs: bigint;
  /** u64 */
  readonly refOffsetNs: bigint;
  /** The samples the fit is made of, by x. */
  readonly window: readonly WindowPoint[];
  /** The last recentSamples samples, in order of arrival, with their class. */
  readonly recent: readonly RecentSample[];
  /** The fit: offset − refOffset ≈ level + rate·x (ns; rate in ns/ns). */
  readonly level: number;
  readonly rate: number;
  /** The rate's evidence: Σ weight·slope and Σ weight of the window slopes seen, fading with age. */
  readonly rateSum: number;
  readonly rateWeight: number;
  /** x at which the rate evidence was last updated, and samples that will count in the next update. */
  readonly rateUpdatedX: number;
  readonly ratePending: number;
  /** The path's delay spread (jitterScale), ns, and the x after which it is measured again. */
  readonly jitterNs: number;
  readonly jitterDueX: number;
  /** x of the newest sample of any class. */
  readonly newestX: number;
  /** x of the first unconfirmed sample above the fit, null when none is pending. */
  readonly highSinceX: number | null;
  /** Trailing samples below the fit by more than stepNs (in recent). */
  readonly lowRun: number;
  readonly pairedSeen: boolean;
}

export interface TrackingState {
  /** null: no sample yet. */
  readonly timeline: TrackingTimeline | null;
}

export const TRACKING_IDLE: TrackingState = { timeline: null };

export type TrackingOutcome =
  /** The first sample: a timeline starts with it. */
  | "STARTED"
  /** Within ±stepNs of the fit: part of the fit. */
  | "TRACKED"
  /** Within stepNs above the fit while a step up is pending: held back. */
  | "HELD"
  /** More than stepNs below the fit: delay (or a step down, not yet confirmed). */
  | "DELAYED"
  /** More than riseSupportNs above the fit: a rise (or a step up), not yet confirmed. */
  | "RISE_PENDING"
  /**
   * A pending rise was not confirmed in time: its first sample joins the fit (within stepNs)
   * or is dropped (this sample is part of the fit).
   */
  | "RISE_EXPIRED"
  /** Confirmed samples above the fit by less than stepNs: the fit was low; its window begins again with them. */
  | "ROSE"
  /** In the first warmupNs, stepNs above the fit: the earlier samples were late; begun again. */
  | "ROSE_AT_START"
  /** A step of the master's time up, confirmed: a new timeline. */
  | "STEPPED_UP"
  /** A step of the master's time down, confirmed: a new timeline. */
  | "STEPPED_DOWN"
  /** After a gap: the fit carried on across it (moved along its rate); this sample is then classified as any other. */
  | "RESUMED"
  /** After a gap: the rate carried on, the level measured again from this sample. */
  | "REMEASURED_AFTER_GAP"
  /** After a gap: a new timeline from nothing. */
  | "RESTARTED_AFTER_GAP"
  /** The local clock went back: a new timeline. */
  | "LOCAL_CLOCK_STEPPED"
  /** A Follow_Up used without its Sync while paired samples are coming: ignored. */
  | "UNPAIRED_IGNORED"
  /** The first paired sample of a timeline begun on unpaired ones: a new timeline from it alone. */
  | "PAIRED_AT_LAST";

export interface TrackingStep {
  state: TrackingState;
  outcome: TrackingOutcome;
  /** What to publish now: the fitted offset (u64) at this sample's local time; null = nothing yet. */
  estimate: { localTimeNs: bigint; offsetNs: bigint } | null;
}

/** true for outcomes that began a new timeline (the caller logs it; the mastership start time is NOT reset by it). */
export function startsTimeline(outcome: TrackingOutcome): boolean {
  return (
    outcome === "STARTED" ||
    outcome === "STEPPED_UP" ||
    outcome === "STEPPED_DOWN" ||
    outcome === "RESTARTED_AFTER_GAP" ||
    outcome === "LOCAL_CLOCK_STEPPED" ||
    outcome === "PAIRED_AT_LAST"
  );
}

/** The fitted rate of the master's clock against ours, ppm (positive: the master runs fast); null before a sample. */
export function trackingRatePpm(state: TrackingState): number | null {
  return state.timeline === null ? null : state.timeline.rate * 1e6;
}

/** Rules as doubles (ns), converted once per call. */
interface Numeric {
  windowNs: number;
  maxRate: number;
  stepNs: number;
  warmupNs: number;
  settleNs: number;
  stepUpWithinNs: number;
  riseSupportNs: number;
  stepDownMinNs: number;
  spreadFloorNs: number;
  reorderNs: number;
  gapNs: number;
  gapRateWander: number;
  rateMemoryNs: number;
  startPriorWeight: number;
  startJitterNs: number;
  rebaseAfterNs: number;
}

const NUMERIC = new WeakMap<TrackingRules, Numeric>();

/** The rules as doubles, made once per rules object (rules are never changed: a new object is made). */
function numeric(rules: TrackingRules): Numeric {
  let n = NUMERIC.get(rules);
  if (n === undefined) {
    n = toNumeric(rules);
    NUMERIC.set(rules, n);
  }
  return n;
}

function toNumeric(rules: TrackingRules): Numeric {
  return {
    windowNs: Number(rules.windowNs),
    maxRate: rules.maxRatePpm * 1e-6,
    stepNs: Number(rules.stepNs),
    warmupNs: Number(rules.warmupNs),
    settleNs: Number(rules.settleNs),
    stepUpWithinNs: Number(rules.stepUpWithinNs),
    riseSupportNs: Number(rules.riseSupportNs),
    stepDownMinNs: Number(rules.stepDownMinNs),
    spreadFloorNs: Number(rules.stepDownSpreadFloorNs),
    reorderNs: Number(rules.reorderNs),
    gapNs: Number(rules.gapNs),
    gapRateWander: rules.gapRateWanderPpm * 1e-6,
    rateMemoryNs: Number(rules.rateMemoryNs),
    startPriorWeight: 1 / (rules.startRateUncertaintyPpm * 1e-6) ** 2,
    startJitterNs: Number(rules.startJitterNs),
    rebaseAfterNs: Number(rules.rebaseAfterNs),
  };
}

// ---- the fit ----

/** Upper convex hull of points sorted by x (Andrew's monotone chain), left to right. */
function upperHull(points: readonly TrackedPoint[]): TrackedPoint[] {
  const hull: TrackedPoint[] = [];
  for (const p of points) {
    while (hull.length >= 2) {
      const o = hull[hull.length - 2]!;
      const a = hull[hull.length - 1]!;
      // a on or below the segment o→p: not a vertex of the upper hull.
      if ((a.x - o.x) * (p.y - o.y) - (a.y - o.y) * (p.x - o.x) >= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

function clamp(v: number, limit: number): number {
  return v > limit ? limit : v < -limit ? -limit : v;
}

/** The upper hull's value at x (x within the hull's span). */
function hullAt(hull: readonly TrackedPoint[], x: number): number {
  let k = 0;
  while (k < hull.length - 2 && hull[k + 1]!.x < x) k++;
  const a = hull[k]!;
  const b = hull[k + 1]!;
  return a.y + ((b.y - a.y) * (x - a.x)) / (b.x - a.x);
}

/**
 * The window's slope: of the upper hull's chord between a quarter and three quarters of its
 * span (a long baseline: a single hull edge can be short). null under two points.
 */
function hullSlope(hull: readonly TrackedPoint[]): number | null {
  if (hull.length < 2) return null;
  const first = hull[0]!.x;
  const span = hull[hull.length - 1]!.x - first;
  const x1 = first + span / 4;
  const x3 = first + (span * 3) / 4;
  return (hullAt(hull, x3) - hullAt(hull, x1)) / (x3 - x1);
}

/**
 * The support line of slope `rate`: the lowest line of that slope with every point on or under
 * it (the points may be the hull's vertices only: the same line).
 */
function supportLevel(points: readonly TrackedPoint[], rate: number): number {
  let level = -Infinity;
  for (const p of points) {
    const l = p.y - rate * p.x;
    if (l > level) level = l;
  }
  return level;
}

function windowSpan(window: readonly WindowPoint[]): number {
  return window.length < 2 ? 0 : window[window.length - 1]!.x - window[0]!.x;
}

// ---- timelines ----

function toPoint(t: { refLocalNs: bigint; refOffsetNs: bigint }, sample: TrackingSample): TrackedPoint {
  return {
    x: Number(sample.localTimeNs - t.refLocalNs),
    y: Number(toI64(subU64(sample.offsetNs, t.refOffsetNs))),
  };
}

function estimateAt(t: TrackingTimeline, x: number): { localTimeNs: bigint; offsetNs: bigint } {
  return {
    localTimeNs: t.refLocalNs + BigInt(x),
    offsetNs: toU64(t.refOffsetNs + BigInt(Math.round(t.level + t.rate * x))),
  };
}

interface RateEvidence {
  readonly sum: number;
  readonly weight: number;
}

function startEvidence(n: Numeric): RateEvidence {
  return { sum: 0, weight: n.startPriorWeight };
}

function evidenceOf(t: TrackingTimeline): RateEvidence {
  return { sum: t.rateSum, weight: t.rateWeight };
}

function rateOf(e: RateEvidence, n: Numeric): number {
  return e.weight > 0 ? clamp(e.sum / e.weight, n.maxRate) : 0;
}

/** Points by x; of two at the same x the higher (the less delayed) is kept. */
function sortedUnique<P extends TrackedPoint>(points: readonly P[]): P[] {
  const sorted = [...points].sort((a, b) => a.x - b.x || b.y - a.y);
  const out: P[] = [];
  for (const p of sorted) if (out.length === 0 || out[out.length - 1]!.x !== p.x) out.push(p);
  return out;
}

/** A timeline made of `points` (relative to `ref`, in order of arrival), with the rate evidence given. */
function buildTimeline(
  ref: { refLocalNs: bigint; refOffsetNs: bigint },
  points: readonly TrackedPoint[],
  evidence: RateEvidence,
  pairedSeen: boolean,
  n: Numeric,
): TrackingTimeline {
  const sorted = sortedUnique(points);
  const rate = rateOf(evidence, n);
  const level = supportLevel(sorted, rate);
  const window = sorted.map((p) => ({ x: p.x, y: p.y, delayed: p.y - (level + rate * p.x) < -n.stepNs }));
  let newestX = -Infinity;
  for (const p of points) if (p.x > newestX) newestX = p.x;
  const recent: RecentSample[] = points.map((p) => {
    const r = p.y - (level + rate * p.x);
    return { x: p.x, y: p.y, r, kind: r < -n.stepNs ? "low" : "inlier" };
  });
  let lowRun = 0;
  while (lowRun < recent.length && recent[recent.length - 1 - lowRun]!.kind === "low") lowRun++;
  return {
    refLocalNs: ref.refLocalNs,
    refOffsetNs: ref.refOffsetNs,
    window,
    recent,
    level,
    rate,
    rateSum: evidence.sum,
    rateWeight: evidence.weight,
    rateUpdatedX: newestX,
    ratePending: 0,
    jitterNs: n.startJitterNs,
    jitterDueX: newestX,
    newestX,
    highSinceX: null,
    lowRun,
    pairedSeen,
  };
}

/** A timeline from one sample, which becomes the reference. */
function startFrom(sample: TrackingSample, evidence: RateEvidence, pairedSeen: boolean, n: Numeric): TrackingTimeline {
  const ref = { refLocalNs: sample.localTimeNs, refOffsetNs: toU64(sample.offsetNs) };
  return buildTimeline(ref, [{ x: 0, y: 0 }], evidence, pairedSeen || sample.paired !== false, n);
}

/** A new timeline from recent samples of `t` (relative to t's reference): the first becomes the reference. */
function restartFrom(t: TrackingTimeline, points: readonly TrackedPoint[], n: Numeric): TrackingTimeline {
  const origin = points[0]!;
  const ref = { refLocalNs: t.refLocalNs + BigInt(origin.x), refOffsetNs: toU64(t.refOffsetNs + BigInt(origin.y)) };
  const shifted = points.map((p) => ({ x: p.x - origin.x, y: p.y - origin.y }));
  return buildTimeline(ref, shifted, evidenceOf(t), t.pairedSeen, n);
}

/** Moves the reference to the window's oldest point once it is far behind (keeps x small). */
function rebase(t: TrackingTimeline, n: Numeric): TrackingTimeline {
  const origin = t.window[0];
  if (origin === undefined || origin.x < n.rebaseAfterNs) return t;
  const dx = origin.x;
  const dy = origin.y;
  return {
    ...t,
    refLocalNs: t.refLocalNs + BigInt(dx),
    refOffsetNs: toU64(t.refOffsetNs + BigInt(dy)),
    window: t.window.map((p) => ({ x: p.x - dx, y: p.y - dy, delayed: p.delayed })),
    recent: t.recent.map((p) => ({ x: p.x - dx, y: p.y - dy, r: p.r, kind: p.kind })),
    level: t.level + t.rate * dx - dy,
    rateUpdatedX: t.rateUpdatedX - dx,
    jitterDueX: t.jitterDueX - dx,
    newestX: t.newestX - dx,
    highSinceX: t.highSinceX === null ? null : t.highSinceX - dx,
  };
}

/** The window with `p` inserted in order of x and the old or surplus points dropped. */
function withPoint(window: readonly WindowPoint[], p: WindowPoint, rules: TrackingRules, n: Numeric): readonly WindowPoint[] {
  let i = window.length;
  while (i > 0 && window[i - 1]!.x > p.x) i--;
  const replaces = i > 0 && window[i - 1]!.x === p.x;
  if (replaces && window[i - 1]!.y >= p.y) return window;
  let out: WindowPoint[];
  if (i === window.length && !replaces) {
    // The usual case: the newest sample, at the end.
    out = window.slice();
    out.push(p);
  } else {
    out = replaces ? [...window.slice(0, i - 1), p, ...window.slice(i)] : [...window.slice(0, i), p, ...window.slice(i)];
  }
  const newest = out[out.length - 1]!.x;
  let drop = 0;
  while (drop < out.length - 1 && (out[drop]!.x < newest - n.windowNs || out.length - drop > rules.maxWindowSamples)) drop++;
  if (drop > 0) out.splice(0, drop);
  return out;
}

/**
 * The path's delay spread: the median depth of the window's last 32 points below the line of
 * slope `rate` on or above all of them (startJitterNs until there are 4).
 */
function jitterScale(window: readonly WindowPoint[], level: number, rate: number, n: Numeric): number {
  if (window.length < 4) return n.startJitterNs;
  const count = Math.min(window.length, DEPTHS.length);
  for (let i = 0; i < count; i++) {
    const p = window[window.length - 1 - i]!;
    DEPTHS[i] = level + rate * p.x - p.y;
  }
  return Math.max(selectMedian(DEPTHS, count), 1000);
}

/** Scratch space of jitterScale (never part of a state). */
const DEPTHS = new Float64Array(32);

/** The median (upper, for an even count) of a[0..count), reordering them (Hoare's selection). */
function selectMedian(a: Float64Array, count: number): number {
  const k = count >> 1;
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const x = a[i]!;
        a[i] = a[j]!;
        a[j] = x;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k]!;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[values.length >> 1]!;
}

/**
 * Whether the trailing run of low samples ends in a step down; if so, the index in `recent`
 * of the first sample after it, else -1. The run's latest samples are tested (earlier ones
 * may be delays from before the step): as many as this path's share of low samples requires
 * and at least stepDownMinNs of them, spread below their own top like the path's delay.
 */
function stepDownStart(t: TrackingTimeline, rules: TrackingRules, n: Numeric): number {
  const recent = t.recent;
  const run = Math.min(t.lowRun, recent.length);
  const runStart = recent.length - run;
  if (run < 2 || t.newestX - recent[runStart]!.x < n.stepDownMinNs) return -1;
  let lowsBefore = 0;
  const depths: number[] = [];
  for (let i = 0; i < runStart; i++) {
    const s = recent[i]!;
    if (s.kind === "dropped") continue;
    if (s.kind === "low") lowsBefore++;
    depths.push(s.r < 0 ? -s.r : 0);
  }
  // Laplace's rule of succession: no history counts as even odds.
  const pLow = (lowsBefore + 1) / (depths.length + 2);
  const needed = Math.min(Math.ceil(Math.log(rules.stepDownFalseAlarm) / Math.log(pLow)), rules.recentSamples >> 1);
  let start = recent.length - Math.max(needed, 2);
  while (start >= runStart && t.newestX - recent[start]!.x < n.stepDownMinNs) start--;
  if (start < runStart) return -1;
  let top = -Infinity;
  for (let i = start; i < recent.length; i++) if (recent[i]!.r > top) top = recent[i]!.r;
  const spread: number[] = [];
  for (let i = start; i < recent.length; i++) spread.push(top - recent[i]!.r);
  return median(spread) <= rules.stepDownSpreadFactor * median(depths) + n.spreadFloorNs ? start : -1;
}

/**
 * The timeline moved along its fit to just before `x` (a sample after a gap): every point and
 * time keeps its place relative to the others and to the fitted line, so the fit is the same
 * and its points age out of the window from now on. A rise pending before the gap is dropped.
 */
function acrossGap(t: TrackingTimeline, x: number): TrackingTimeline {
  const w = t.window;
  const spacing = w.length >= 2 ? windowSpan(w) / (w.length - 1) : 0;
  // Whole ns, so that every coordinate stays an integer (rebase turns them into bigints).
  const dx = Math.round(x - t.newestX - spacing);
  const dy = Math.round(t.rate * dx);
  return {
    ...t,
    window: w.map((q) => ({ x: q.x + dx, y: q.y + dy, delayed: q.delayed })),
    recent: t.recent.map((q) => ({
      x: q.x + dx,
      y: q.y + dy,
      r: q.r,
      kind: q.kind === "high" || q.kind === "held" ? ("dropped" as const) : q.kind,
    })),
    level: t.level + t.rate * dx - dy,
    rateUpdatedX: t.rateUpdatedX + dx,
    jitterDueX: t.jitterDueX + dx,
    newestX: t.newestX + dx,
    highSinceX: null,
    lowRun: 0,
  };
}

/** ns. With a full window, the rate's slope is computed at most this often (it changes slowly; the hull costs). */
const RATE_EVERY_NS = 0.5e9;

type ArrivalClass = "inlier" | "held" | "high" | "low";

const OUTCOME_OF_CLASS: Record<ArrivalClass, TrackingOutcome> = {
  inlier: "TRACKED",
  held: "HELD",
  high: "RISE_PENDING",
  low: "DELAYED",
};

export function trackOffset(state: TrackingState, sample: TrackingSample, rules: TrackingRules = DEFAULT_TRACKING_RULES): TrackingStep {
  const n = numeric(rules);
  const step = (timeline: TrackingTimeline, outcome: TrackingOutcome, x: number): TrackingStep => ({
    state: { timeline },
    outcome,
    estimate: estimateAt(timeline, x),
  });
  let old = state.timeline;
  if (old === null) return step(startFrom(sample, startEvidence(n), false, n), "STARTED", 0);

  const p = toPoint(old, sample);
  const paired = sample.paired !== false;
  if (p.x < old.newestX - n.reorderNs) return step(startFrom(sample, startEvidence(n), false, n), "LOCAL_CLOCK_STEPPED", 0);
  if (!paired && old.pairedSeen) return { state, outcome: "UNPAIRED_IGNORED", estimate: estimateAt(old, Math.max(p.x, old.newestX)) };
  if (paired && !old.pairedSeen) {
    // Published at the newest local time seen, as any sample: it may be older than the unpaired
    // ones (its Follow_Up came after its Sync).
    const fresh = startFrom(sample, startEvidence(n), true, n);
    return step(fresh, "PAIRED_AT_LAST", Math.max(0, old.newestX - p.x));
  }
  let resumed = false;
  if (p.x - old.newestX >= n.gapNs) {
    if (rules.gapPolicy === "restart") return step(startFrom(sample, startEvidence(n), false, n), "RESTARTED_AFTER_GAP", 0);
    if ((p.x - old.newestX) * n.gapRateWander >= old.jitterNs) {
      return step(startFrom(sample, evidenceOf(old), old.pairedSeen || paired, n), "REMEASURED_AFTER_GAP", 0);
    }
    old = acrossGap(old, p.x);
    resumed = true;
  }

  const r = p.y - (old.level + old.rate * p.x);
  let kind: ArrivalClass;
  const warmingUp = windowSpan(old.window) < n.warmupNs;
  if (warmingUp && r > n.stepNs) return step(startFrom(sample, evidenceOf(old), old.pairedSeen, n), "ROSE_AT_START", 0);
  // Until the window spans settleNs a rise of up to stepNs is part of the fit: the fit is still
  // finding its level and rate, and better samples arriving above it are what it needs.
  const settled = windowSpan(old.window) >= n.settleNs;
  if (!warmingUp && (r > n.stepNs || (settled && r > n.riseSupportNs))) kind = "high";
  else if (r < -n.stepNs) kind = "low";
  else kind = old.highSinceX !== null && r > 0 ? "held" : "inlier";

  const keep = Math.min(old.recent.length, rules.recentSamples - 1);
  const recent = old.recent.slice(old.recent.length - keep);
  recent.push({ x: p.x, y: p.y, r, kind });
  let t: TrackingTimeline = {
    ...old,
    // Delayed samples join the window too: they never raise the fit, and with them the fit
    // follows what the path really delivers, whatever the fit said before.
    window: kind === "inlier" || kind === "low" ? withPoint(old.window, { x: p.x, y: p.y, delayed: kind === "low" }, rules, n) : old.window,
    recent,
    newestX: Math.max(old.newestX, p.x),
    highSinceX: kind === "high" && old.highSinceX === null ? p.x : old.highSinceX,
    lowRun: kind === "low" ? old.lowRun + 1 : 0,
    pairedSeen: old.pairedSeen || paired,
  };
  let outcome = resumed ? "RESUMED" : OUTCOME_OF_CLASS[kind];

  if (t.highSinceX !== null) {
    const since = t.highSinceX;
    let highs = 0;
    let rise = 0;
    let firstIndex = recent.length;
    for (let i = recent.length - 1; i >= 0 && recent[i]!.x >= since; i--) {
      const e = recent[i]!;
      if (e.kind === "high") {
        highs++;
        if (e.r > rise) rise = e.r;
      }
      firstIndex = i;
    }
    if (highs >= rules.stepUpSamples) {
      // The level rose by at least the highest of them: more than stepNs is a step of the
      // master's time; less, the fit was low (its best samples are only now arriving). Either
      // way the window begins again with the samples since the first, so that the hull never
      // bridges two levels (its slope would take the rise for a rate).
      const fresh = restartFrom(t, recent.slice(firstIndex), n);
      return step(fresh, rise > n.stepNs ? "STEPPED_UP" : "ROSE", fresh.newestX);
    }
    if (t.newestX - since > n.stepUpWithinNs) {
      // Not confirmed in time: the first pending sample joins the window if it is within stepNs
      // of the fit (a good sample: the fit was that low) and is dropped if not (delay cannot
      // explain it); the held ones before the next pending one (if any) join the window.
      let next: number | null = null;
      for (let i = firstIndex + 1; i < recent.length; i++) {
        if (recent[i]!.kind === "high") {
          next = recent[i]!.x;
          break;
        }
      }
      let window = t.window;
      const relabelled = recent.map((s): RecentSample => {
        if (s.kind === "held" && (next === null || s.x < next)) {
          window = withPoint(window, { x: s.x, y: s.y, delayed: false }, rules, n);
          return { ...s, kind: "inlier" };
        }
        if (s.kind === "high" && s.x === since) {
          if (s.r > n.stepNs) return { ...s, kind: "dropped" };
          window = withPoint(window, { x: s.x, y: s.y, delayed: false }, rules, n);
          return { ...s, kind: "inlier" };
        }
        return s;
      });
      t = { ...t, window, recent: relabelled, highSinceX: next };
      if (kind === "inlier" || kind === "held") outcome = "RISE_EXPIRED";
    }
  }

  if (kind === "low" && stepDownStart(t, rules, n) >= 0) {
    // The new timeline starts from the run's last stepDownMinNs only: the run may reach back
    // to delayed samples from before the step, which would hold the new fit up.
    let from = t.recent.length - 1;
    while (from > 0 && t.recent[from - 1]!.kind === "low" && t.newestX - t.recent[from - 1]!.x <= n.stepDownMinNs) from--;
    const fresh = restartFrom(t, t.recent.slice(from), n);
    return step(fresh, "STEPPED_DOWN", fresh.newestX);
  }

  if (t.window !== old.window) {
    // Only a sample within stepNs of the fit updates the rate: while samples are delayed far
    // below it (a burst, or a step down not yet confirmed), the hull's right part follows them
    // down and its slope says nothing about the clocks.
    let { rateSum, rateWeight, rateUpdatedX, rate, jitterNs, jitterDueX, ratePending } = t;
    if (kind === "inlier") ratePending++;
    // The rate: the window's slope, weighed by its precision, averaged with the earlier ones,
    // which fade over rateMemoryNs of sample time (a silence counts as at most 1 s). Each sample
    // within stepNs of the fit adds its window's slope with 1/n of the weight (consecutive
    // windows share all but one sample); the slope is computed for every such sample while the
    // window holds fewer than 32, then at most every RATE_EVERY_NS for those since the last.
    // The slope from the points that were not delayed: a delayed point at an end of the window
    // is a vertex of the hull all the same, and would bend its chord.
    const due = kind === "inlier" && (t.window.length < 32 || p.x - rateUpdatedX >= RATE_EVERY_NS);
    const slope = due ? hullSlope(upperHull(t.window.some((q) => q.delayed) ? t.window.filter((q) => !q.delayed) : t.window)) : null;
    if (slope !== null) {
      const count = t.window.length;
      const span = windowSpan(t.window);
      // Measured again every sample while the window is small, then once a second.
      if (count < 32 || p.x >= jitterDueX) {
        jitterNs = jitterScale(t.window, supportLevel(t.window, rate), rate, n);
        jitterDueX = p.x + 1e9;
      }
      const sigma = (rules.slopeErrorFactor * jitterNs) / (count * span);
      const w = ratePending / (sigma * sigma * count);
      const decay = Math.exp(-Math.min(p.x - rateUpdatedX, 1e9) / n.rateMemoryNs);
      rateSum = rateSum * decay + w * clamp(slope, n.maxRate);
      rateWeight = rateWeight * decay + w;
      rateUpdatedX = Math.max(rateUpdatedX, p.x);
      ratePending = 0;
      rate = rateOf({ sum: rateSum, weight: rateWeight }, n);
    }
    // The level from every point: delayed ones never hold it up unless nothing better is left.
    t = rebase({ ...t, rateSum, rateWeight, rateUpdatedX, ratePending, rate, jitterNs, jitterDueX, level: supportLevel(t.window, rate) }, n);
  }
  return step(t, outcome, t.newestX);
}
