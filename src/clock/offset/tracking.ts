// The "tracking" offset filter: the master's clock modelled as offset + rate against the local
// clock, fitted to the upper envelope of the offset samples, and published at each sample's
// local time. Pure: no sockets, clocks or logs; the state is never changed, a new one is
// returned; memory is bounded.
//
// Every sample is the true offset minus that Sync's one-way delay, and delay is never negative,
// so the best possible estimate is the line under which every sample lies: the samples' upper
// convex hull (Moon, Skelly and Towsley, INFOCOM 1999). The rate is the slope of that hull over
// a long baseline (rateWindowNs), the level the support line of that slope over the last
// windowNs. Delay never lifts a sample, so a rise is believed once confirmed; a fall may be a
// queue that every Sync waits in, so it is held, and followed slowly, unless something other
// than one-way timing says the timeline changed. docs/offset-tracking.md says why, with figures.
//
// trackOffset is a ladder of named steps (tracking-steps.ts); the timeline's shape and motion
// are tracking-timeline.ts, its geometry hull.ts.

import { NS_PER_MS, NS_PER_SECOND, NS_PER_US } from "../../time/ns.ts";
import { admit, classify, confirmRise, followDown, noteEvidence, updateFit, type Arrival } from "./tracking-steps.ts";
import {
  acrossGap,
  estimateAt,
  evidenceOf,
  numeric,
  startEvidence,
  startFrom,
  toPoint,
  type Numeric,
  type TrackingTimeline,
} from "./tracking-timeline.ts";

export type { TrackingTimeline } from "./tracking-timeline.ts";

export interface TrackingSample {
  readonly localTimeNs: bigint;
  /** master − local, u64 */
  readonly offsetNs: bigint;
  /** false for a Follow_Up used without its Sync (syfu.ts); absent means paired. */
  readonly paired?: boolean;
  /** The record's timeline evidence (records.ts `timelineEpoch`); a change lets a step down be followed at once. */
  readonly timelineEpoch?: number;
}

export type GapPolicy = "continue" | "restart";

export interface TrackingRules {
  /** ns. The level window: samples this much older than the newest one in it leave it. */
  windowNs: bigint;
  /** samples. The window's size limit (memory bound; at 8 Hz a 30 s window holds 240). */
  maxWindowSamples: number;
  /** ns. The rate's longest baseline: the best sample of each historyBucketNs is kept this long … */
  rateWindowNs: bigint;
  /** ns. … and its shortest (tracking-rate.ts); the level is the support line over half the baseline taken, within this … */
  shortestBaselineNs: bigint;
  /** ns. … and this (beyond the window, from the history's best sample of each second). */
  longestLevelNs: bigint;
  historyBucketNs: bigint;
  /** ppm. The fitted rate is kept within ± this. */
  maxRatePpm: number;
  /** ns. A rise of more than this is a step up; a sample this far below the fit is low (delayed, or after a step down) … */
  stepNs: bigint;
  /** factor. … and so is one this many times the path's delay spread below it, when that is less. */
  lowSpreadFactor: number;
  /** ns. While the window spans less than this, a sample stepNs above the fit starts it again. */
  warmupNs: bigint;
  /** ns. Until the window spans this, a sample up to stepNs above the fit is part of it (no rise is pending). */
  settleNs: bigint;
  /** samples. This many samples confirm a step: up, more than riseSupportNs above the fit; down, stepNs below it with evidence … */
  stepSamples: number;
  /** ns. … (a sample after a step up is above the old fit by the step less its own delay) … */
  riseSupportNs: bigint;
  /** ns. … when they come within this time of the first of them. */
  stepWithinNs: bigint;
  /** ns. A run of low samples keeps the level (along the rate) this long, so that a queue of up to 60 s never moves it: a queue, or a step down? */
  holdNs: bigint;
  /** ppm (ns of offset per ns of local time). Past holdNs the level follows the run down at most this fast. */
  followDownPpm: number;
  /** ns. After timeline evidence (a new Announce, a restarted sender), a step down is followed at once for this long … */
  evidenceNs: bigint;
  /** probability. … once a run of low samples is longer than this path's own delay would make it with this chance. */
  stepDownFalseAlarm: number;
  /** samples. Recent samples kept for the step rules. */
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
  /** ns. What the rate was believed to be when a timeline began fades over about this long … */
  rateMemoryNs: bigint;
  /** ns. … and the rate's measures are averaged over about this long (the baseline taken can change from one to the next). */
  rateAverageNs: bigint;
  /** ppm. A new timeline's rate starts at 0 ppm, believed to within this (one standard deviation). */
  startRateUncertaintyPpm: number;
  /** ns. The path's delay spread assumed until 4 samples have measured it. */
  startJitterNs: bigint;
  /** factor. A slope's standard error is this × (path's median delay above the fit) / (samples × span). */
  slopeErrorFactor: number;
  /** errors. The rate's baseline is the longest whose slope is within this many standard errors of every shorter one's. */
  scaleAgreement: number;
  /** fractions of the baseline's span: the slope is the hull's chord between these two. */
  chordFrom: number;
  chordTo: number;
  /** ns. The reference moves forward once the oldest point kept is this far past it. */
  rebaseAfterNs: bigint;
}

export const DEFAULT_TRACKING_RULES: TrackingRules = {
  windowNs: 30n * NS_PER_SECOND,
  maxWindowSamples: 256,
  rateWindowNs: 240n * NS_PER_SECOND,
  shortestBaselineNs: 30n * NS_PER_SECOND,
  longestLevelNs: 60n * NS_PER_SECOND,
  historyBucketNs: NS_PER_SECOND,
  maxRatePpm: 500,
  stepNs: NS_PER_MS,
  lowSpreadFactor: 16,
  warmupNs: 2n * NS_PER_SECOND,
  settleNs: 10n * NS_PER_SECOND,
  stepSamples: 3,
  riseSupportNs: 250n * NS_PER_US,
  stepWithinNs: 2n * NS_PER_SECOND,
  holdNs: 61n * NS_PER_SECOND,
  followDownPpm: 20_000,
  evidenceNs: 10n * NS_PER_SECOND,
  stepDownFalseAlarm: 1e-9,
  recentSamples: 128,
  reorderNs: NS_PER_SECOND,
  gapNs: 10n * NS_PER_SECOND,
  gapPolicy: "continue",
  gapRateWanderPpm: 5,
  rateMemoryNs: 30n * NS_PER_SECOND,
  rateAverageNs: 10n * NS_PER_SECOND,
  startRateUncertaintyPpm: 100,
  startJitterNs: NS_PER_MS,
  slopeErrorFactor: 4,
  scaleAgreement: 8,
  chordFrom: 0.25,
  chordTo: 0.75,
  rebaseAfterNs: 60n * NS_PER_SECOND,
};

/** "dropped": a sample above the fit whose step up was not confirmed. */
export type SampleClass = "inlier" | "held" | "high" | "low" | "dropped";

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
  /** More than stepNs below the fit: delay (a queue, a spike), or a step down; the level holds. */
  | "DELAYED"
  /** Below the fit for longer than holdNs: the level follows the run down, slewed. */
  | "FOLLOWING_DOWN"
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
  /** A step of the master's time down, with evidence from outside one-way timing: a new timeline at once. */
  | "STEPPED_DOWN"
  /** Below the fit for holdNs and slewed down to the run's level: a new timeline there. */
  | "FOLLOWED_DOWN"
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
    outcome === "FOLLOWED_DOWN" ||
    outcome === "RESTARTED_AFTER_GAP" ||
    outcome === "LOCAL_CLOCK_STEPPED" ||
    outcome === "PAIRED_AT_LAST"
  );
}

/** The fitted rate of the master's clock against ours, ppm (positive: the master runs fast); null before a sample. */
export function trackingRatePpm(state: TrackingState): number | null {
  return state.timeline === null ? null : state.timeline.rate * 1e6;
}

/** A step that publishes the fit of `timeline` at x. */
function published(timeline: TrackingTimeline, outcome: TrackingOutcome, x: number): TrackingStep {
  return { state: { timeline }, outcome, estimate: estimateAt(timeline, x) };
}

const OUTCOME_OF_ARRIVAL: Record<Arrival["kind"], TrackingOutcome> = {
  inlier: "TRACKED",
  held: "HELD",
  high: "RISE_PENDING",
  low: "DELAYED",
};

export function trackOffset(state: TrackingState, sample: TrackingSample, rules: TrackingRules = DEFAULT_TRACKING_RULES): TrackingStep {
  const n = numeric(rules);
  const old = state.timeline;
  if (old === null) return published(startFrom(sample, startEvidence(n), false, n), "STARTED", 0);
  const p = toPoint(old, sample);
  const before = beforeClassifying(state, old, sample, p, rules, n);
  if ("step" in before) return before.step;
  const t0 = noteEvidence(before.timeline, sample, p, n);
  const arrival = classify(t0, p, n);
  if (arrival === "restart") return published(startFrom(sample, evidenceOf(t0, n), t0.pairedSeen, n), "ROSE_AT_START", 0);
  const t1 = admit(t0, p, arrival, rules, n);
  const rise = confirmRise(t1, arrival, rules, n);
  if ("step" in rise) return published(rise.step.timeline, rise.step.outcome, rise.step.timeline.newestX);
  const down = followDown(rise.timeline, arrival, p, rules, n);
  if ("step" in down) return published(down.step.timeline, down.step.outcome, down.step.timeline.newestX);
  const t = updateFit(down.timeline, p, arrival, rules, n);
  const outcome = before.resumed ? "RESUMED" : (down.outcome ?? rise.outcome ?? OUTCOME_OF_ARRIVAL[arrival.kind]);
  return published(t, outcome, t.newestX);
}

/**
 * What comes before a sample is classified: a local clock that went back, an unpaired sample
 * among paired ones, a gap (crossed along the fit, measured again, or restarted).
 */
function beforeClassifying(
  state: TrackingState,
  old: TrackingTimeline,
  sample: TrackingSample,
  p: { x: number },
  rules: TrackingRules,
  n: Numeric,
): { step: TrackingStep } | { timeline: TrackingTimeline; resumed: boolean } {
  const paired = sample.paired !== false;
  if (p.x < old.newestX - n.reorderNs) return { step: published(startFrom(sample, startEvidence(n), false, n), "LOCAL_CLOCK_STEPPED", 0) };
  if (!paired && old.pairedSeen) {
    return { step: { state, outcome: "UNPAIRED_IGNORED", estimate: estimateAt(old, Math.max(p.x, old.newestX)) } };
  }
  if (paired && !old.pairedSeen) {
    // A timeline begun on unpaired samples begins again at the first paired one, without them and
    // from 0 ppm: they are late by more than the Sync's own delay (on a slow machine just after
    // start-up a Follow_Up's stamp can be ms late), and left in the window they tilt the hull.
    // Published at the newest local time seen, as any sample (its Follow_Up came after its Sync).
    return { step: published(startFrom(sample, startEvidence(n), true, n), "PAIRED_AT_LAST", Math.max(0, old.newestX - p.x)) };
  }
  const silence = p.x - old.newestX;
  if (silence < n.gapNs) return { timeline: old, resumed: false };
  if (rules.gapPolicy === "restart") return { step: published(startFrom(sample, startEvidence(n), false, n), "RESTARTED_AFTER_GAP", 0) };
  if (silence * n.gapRateWander >= old.jitterNs) {
    return { step: published(startFrom(sample, evidenceOf(old, n), old.pairedSeen || paired, n), "REMEASURED_AFTER_GAP", 0) };
  }
  return { timeline: acrossGap(old, p.x), resumed: true };
}
