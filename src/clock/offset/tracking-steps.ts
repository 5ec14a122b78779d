// The steps of the tracking filter (tracking.ts), each one rule, in the order trackOffset takes
// them for a sample:
//   noteEvidence  a change of the record's timeline evidence lets a step down be followed at once
//   classify      the sample against the fit: inlier, held, high (a rise?), low (delay, or a step down?)
//   admit         the sample joins the recent samples, and the window unless it is above the fit
//   confirmRise   enough samples above the fit: a step up, or a fit that was low; else, in time, not
//   followDown    samples below the fit: a step down at once with evidence; else the level holds,
//                 and past holdNs follows the run down, slewed
//   updateFit     the rate (from the long baseline) and the level (from the window)

import { supportLevel, type Point } from "./hull.ts";
import { combine, faded, measureRate } from "./tracking-rate.ts";
import type { SampleClass, TrackingOutcome, TrackingRules, TrackingSample } from "./tracking.ts";
import {
  clamp,
  evidenceAt,
  jitterScale,
  lowBelowNs,
  rateOf,
  rebase,
  restartFrom,
  windowSpan,
  withLeaving,
  withPoint,
  type Numeric,
  type RecentSample,
  type TrackingTimeline,
  type WindowPoint,
} from "./tracking-timeline.ts";

export interface Arrival {
  kind: "inlier" | "held" | "high" | "low";
  /** Residual against the fit, ns. */
  r: number;
}

/** A step that begins a new timeline. */
export interface NewTimeline {
  step: { timeline: TrackingTimeline; outcome: TrackingOutcome };
}

/** A change of the sample's timeline evidence arms the fast step down for evidenceNs. */
export function noteEvidence(t: TrackingTimeline, sample: TrackingSample, p: Point, n: Numeric): TrackingTimeline {
  const epoch = sample.timelineEpoch ?? t.epoch;
  if (epoch === t.epoch) return t;
  return { ...t, epoch, evidenceUntilX: p.x + n.evidenceNs };
}

/**
 * The sample against the fit. "restart": in the first warmupNs, a sample more than stepNs above
 * the fit means the earlier ones were simply late.
 */
export function classify(t: TrackingTimeline, p: Point, n: Numeric): Arrival | "restart" {
  const r = p.y - (t.level + t.rate * p.x);
  const span = windowSpan(t.window);
  const warmingUp = span < n.warmupNs;
  if (warmingUp && r > n.stepNs) return "restart";
  // Until the window spans settleNs a rise of up to stepNs is part of the fit: the fit is still
  // finding its level and rate, and better samples arriving above it are what it needs.
  const settled = span >= n.settleNs;
  if (!warmingUp && (r > n.stepNs || (settled && r > n.riseSupportNs))) return { kind: "high", r };
  if (r < -lowBelowNs(t.jitterNs, n)) return { kind: "low", r };
  return { kind: t.highSinceX !== null && r > 0 ? "held" : "inlier", r };
}

/**
 * The sample joins the recent samples, and the window unless it is above the fit. Delayed
 * samples join the window too (flagged): they never hold the level up, and they are what the
 * level follows if a run of them outlasts holdNs.
 */
export function admit(t: TrackingTimeline, p: Point, arrival: Arrival, rules: TrackingRules, n: Numeric): TrackingTimeline {
  const { kind, r } = arrival;
  const keep = Math.min(t.recent.length, rules.recentSamples - 1);
  const recent = t.recent.slice(t.recent.length - keep);
  recent.push({ x: p.x, y: p.y, r, kind });
  const following = followingDown(t, n);
  const anchored = kind === "inlier" && !following ? withAnchor(t, rules, n) : t;
  const joined = kind === "inlier" || kind === "low" ? joinWindow(anchored, { x: p.x, y: p.y, delayed: kind === "low" }, rules, n) : anchored;
  return {
    ...joined,
    recent,
    newestX: Math.max(t.newestX, p.x),
    highSinceX: kind === "high" && t.highSinceX === null ? p.x : t.highSinceX,
    // A run ends with a sample that is not low, unless the level is already following it down
    // (the run's samples come within the low limit of the slewed level before it arrives).
    lowSinceX: kind === "low" || (kind === "inlier" && following) ? (t.lowSinceX ?? p.x) : null,
  };
}

/** `t` with `q` in its window; the good points that left the window go to the rate's history. */
function joinWindow(t: TrackingTimeline, q: WindowPoint, rules: TrackingRules, n: Numeric): TrackingTimeline {
  const { window, dropped } = withPoint(t.window, q, rules, n);
  if (window === t.window) return t;
  if (dropped.length === 0) return { ...t, window };
  const { history, bucket } = withLeaving(t.history, t.bucket, dropped, t.rate, n);
  const lost = t.supportX !== null && dropped.some((d) => d.x === t.supportX);
  return { ...t, window, history, bucket, supportX: lost ? null : t.supportX };
}

/**
 * A run of low samples has just ended with a good sample, a run longer than this path's own
 * delay makes (lowRunNeeded: a queue, not jitter): the level held through it stands as a point
 * at the run's end, the fit extrapolated along the rate. The good samples from before the run
 * may be leaving the window by now, and the first ones after it are too few to hold the level
 * up on their own.
 */
function withAnchor(t: TrackingTimeline, rules: TrackingRules, n: Numeric): TrackingTimeline {
  const last = t.recent[t.recent.length - 1];
  if (t.lowSinceX === null || last === undefined) return t;
  const run = trailingLows(t.recent).length;
  if (run < lowRunNeeded(t.recent, run, rules)) return t;
  const x = Math.round(last.x);
  // The episode this run belongs to: a new one, or the last one carried on when this run began
  // within stepWithinNs of its end (power-save delay lets the odd Sync through between runs).
  const e = t.episode;
  const episode = e !== null && t.lowSinceX - e.endX <= n.stepWithinNs ? { startX: e.startX, endX: x } : { startX: t.lowSinceX, endX: x };
  const window = t.window.map((q) => (!q.delayed && q.x >= episode.startX && q.x <= episode.endX ? { ...q, delayed: true } : q));
  const anchored = joinWindow({ ...t, window }, { x, y: Math.round(t.level + t.rate * x), delayed: false }, rules, n);
  return { ...anchored, supportX: null, episode };
}

/**
 * Samples above the fit (delay cannot cause them): once stepSamples have come within
 * stepWithinNs of the first, the level rose by at least the highest of them. More than stepNs
 * is a step of the master's time; less, the fit was low (its best samples are only now
 * arriving). Either way the window begins again with the samples since the first, so that the
 * hull never bridges two levels (its slope would take the rise for a rate). Not confirmed in
 * time, the first pending sample joins the window if within stepNs (a good sample: the fit was
 * that low) and is dropped if not; the held ones before the next pending one join the window.
 */
export function confirmRise(
  t: TrackingTimeline,
  arrival: Arrival,
  rules: TrackingRules,
  n: Numeric,
): NewTimeline | { timeline: TrackingTimeline; outcome?: TrackingOutcome } {
  const since = t.highSinceX;
  if (since === null) return { timeline: t };
  const recent = t.recent;
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
  if (highs >= rules.stepSamples) {
    return { step: { timeline: restartFrom(t, recent.slice(firstIndex), n), outcome: rise > n.stepNs ? "STEPPED_UP" : "ROSE" } };
  }
  if (t.newestX - since <= n.stepWithinNs) return { timeline: t };
  const expired = expireRise(t, since, firstIndex, rules, n);
  return { timeline: expired, outcome: arrival.kind === "inlier" || arrival.kind === "held" ? "RISE_EXPIRED" : undefined };
}

/** A rise not confirmed in time (confirmRise): its first sample joins the window or is dropped. */
function expireRise(t: TrackingTimeline, since: number, firstIndex: number, rules: TrackingRules, n: Numeric): TrackingTimeline {
  const recent = t.recent;
  let next: number | null = null;
  for (let i = firstIndex + 1; i < recent.length; i++) {
    if (recent[i]!.kind === "high") {
      next = recent[i]!.x;
      break;
    }
  }
  let joined = t;
  const relabelled = recent.map((s): RecentSample => {
    const joins = (s.kind === "held" && (next === null || s.x < next)) || (s.kind === "high" && s.x === since && s.r <= n.stepNs);
    if (joins) {
      joined = joinWindow(joined, { x: s.x, y: s.y, delayed: false }, rules, n);
      return { ...s, kind: "inlier" };
    }
    return s.kind === "high" && s.x === since ? { ...s, kind: "dropped" } : s;
  });
  // Samples above the fit joined it: the level must be found again.
  return { ...joined, recent: relabelled, highSinceX: next, supportX: null };
}

/**
 * Samples below the fit. One-way timing cannot tell a step of the master's time down from a
 * queue every Sync waits in (an access point's buffer under a download), and on a LAN the queue
 * is far the likelier. So:
 *   - with evidence from outside one-way timing (noteEvidence, within evidenceNs), stepSamples
 *     low samples within stepWithinNs are a step down: a new timeline from them, at once;
 *   - otherwise the level holds (along the rate) for holdNs of the run, whatever its spread;
 *   - past that, the level follows the run's own support line down, at most followDownRate ns
 *     per ns, and once there a new timeline starts from the run's samples in the window.
 * What is given up: a real step down of the same master's time is followed after holdNs, slewed.
 */
export function followDown(
  t: TrackingTimeline,
  arrival: Arrival,
  p: Point,
  rules: TrackingRules,
  n: Numeric,
): NewTimeline | { timeline: TrackingTimeline; outcome?: TrackingOutcome } {
  if (t.lowSinceX === null || (arrival.kind !== "low" && !followingDown(t, n))) return { timeline: t };
  if (arrival.kind === "low" && t.evidenceUntilX !== null && p.x <= t.evidenceUntilX) {
    const lows = trailingLows(t.recent);
    if (lows.length >= lowRunNeeded(t.recent, lows.length, rules)) {
      return { step: { timeline: { ...restartFrom(t, afterTheStep(lows, n), n), evidenceUntilX: null }, outcome: "STEPPED_DOWN" } };
    }
  }
  if (t.newestX - t.lowSinceX < n.holdNs) return { timeline: t };
  // The run's level: its last shortestBaselineNs (its first samples may be delays from before it).
  const delayed = t.window.filter((q) => q.delayed);
  // None left (the run's samples all came within the low limit of the slewed level): it is there.
  const run = recentPart(delayed.length > 0 ? delayed : t.window, n.shortestBaselineNs);
  const target = supportLevel(run, t.rate);
  const previousX = t.recent.length >= 2 ? t.recent[t.recent.length - 2]!.x : p.x;
  const level = Math.max(target, t.level - n.followDownRate * Math.max(0, p.x - previousX));
  if (level > target) return { timeline: { ...t, level }, outcome: "FOLLOWING_DOWN" };
  // There: the new timeline is the run's (its level is the target, where the slew ends). Its
  // rate starts from the old one but is measured again at once from the run: had the old rate
  // been wrong, the samples would have fallen away from the fit just so, and kept it wrong.
  const weakPrior = { sum: t.rate * n.startPriorWeight, weight: n.startPriorWeight };
  return { step: { timeline: restartFrom(t, run, n, weakPrior, true), outcome: "FOLLOWED_DOWN" } };
}

/** The level is following a run of low samples down (the run has outlasted holdNs). */
function followingDown(t: TrackingTimeline, n: Numeric): boolean {
  return t.lowSinceX !== null && t.newestX - t.lowSinceX >= n.holdNs;
}

/**
 * How many low samples in a row make a step down, given evidence: as many as this path's own
 * delay would make less likely than stepDownFalseAlarm, from the share of low samples before
 * the run (Laplace's rule of succession: no history counts as even odds), and at least
 * stepSamples. On a wire that is a few samples; on a Wi-Fi path, where most samples are more
 * than stepNs late, some 40 (5 s).
 */
function lowRunNeeded(recent: readonly RecentSample[], run: number, rules: TrackingRules): number {
  let lows = 0;
  let counted = 0;
  for (let i = 0; i < recent.length - run; i++) {
    const kind = recent[i]!.kind;
    if (kind === "dropped") continue;
    counted++;
    if (kind === "low") lows++;
  }
  const pLow = (lows + 1) / (counted + 2);
  const needed = Math.ceil(Math.log(rules.stepDownFalseAlarm) / Math.log(pLow));
  return Math.max(rules.stepSamples, Math.min(needed, rules.recentSamples >> 1));
}

/**
 * The samples of a run of lows that come after the step: the run may begin with samples that
 * were only delayed before it, which would hold the new fit up. Those are the early ones more
 * than stepNs above the best of the run's later half (which is after the step).
 */
function afterTheStep(lows: readonly RecentSample[], n: Numeric): RecentSample[] {
  let top = -Infinity;
  for (let i = lows.length >> 1; i < lows.length; i++) top = Math.max(top, lows[i]!.r);
  let from = 0;
  for (let i = 0; i < lows.length >> 1; i++) if (lows[i]!.r > top + n.stepNs) from = i + 1;
  return lows.slice(from);
}

/** The trailing run of low samples in `recent`, oldest first. */
function trailingLows(recent: readonly RecentSample[]): RecentSample[] {
  let i = recent.length;
  while (i > 0 && recent[i - 1]!.kind === "low") i--;
  return recent.slice(i);
}

/** ns. With a full window, the rate is measured at most this often (it changes slowly over its baselines; the hulls cost). */
const RATE_EVERY_NS = 2e9;

/**
 * The fit after a sample that joined the window. Only a sample within stepNs of the fit
 * measures the rate (tracking-rate.ts): while samples are delayed far below it (a queue, a
 * burst), they say nothing about the clocks. Its baseline: the window's samples that were not
 * delayed, and the history's best sample per bucket before them. The level: the support line
 * of the rate over the window's samples that were not delayed (the good ones age by the newest
 * good one's time, so through a queue the ones before it stay); a low sample leaves it where it
 * was (followDown moves it).
 */
export function updateFit(t: TrackingTimeline, p: Point, arrival: Arrival, rules: TrackingRules, n: Numeric): TrackingTimeline {
  // A low sample never moves the fit: the level holds (followDown moves it), the rate too; and
  // while the level follows a run down, only followDown moves it.
  if (arrival.kind !== "inlier" || t.lowSinceX !== null) return arrival.kind === "held" || arrival.kind === "high" ? t : rebase(t, n);
  let { rate, jitterNs, jitterDueX, measured, rateUpdatedX, levelSpanNs, supportX } = t;
  const afterEpisode = t.episode === null || p.x > t.episode.endX + n.stepWithinNs;
  if (afterEpisode && (t.window.length < 32 || p.x - rateUpdatedX >= RATE_EVERY_NS)) {
    const good = t.window.filter((q) => !q.delayed);
    // The path's spread, measured again every sample while the window is small, then once a second.
    if (t.window.length < 32 || p.x >= jitterDueX) {
      jitterNs = jitterScale(t.window, rate, t.episode, jitterNs, n);
      jitterDueX = p.x + 1e9;
    }
    const samplesPerNs = good.length >= 2 ? (good.length - 1) / windowSpan(good) : 0;
    const baseline: Point[] = t.bucket === null ? [...t.history, ...good] : [...t.history, t.bucket, ...good];
    const latest = measureRate(baseline, samplesPerNs, jitterNs, rules, n.rateScales);
    if (latest !== null) {
      const e = latest.evidence;
      // Averaged with the measures before it, by precision, those fading over rateAverageNs: the
      // scale Lepski's rule takes can change from one measure to the next. A measure counts for
      // the time since the one before (every sample while the window is small), so that the
      // first seconds' many measures of few samples do not outweigh what the rate is believed to be.
      const share = Math.min(1, Math.max(0, p.x - rateUpdatedX) / RATE_EVERY_NS);
      const weight = e.weight * share;
      const latestEvidence = { sum: clamp(e.sum / e.weight, n.maxRate) * weight, weight };
      measured = combine(faded(measured, p.x - rateUpdatedX, n.rateAverageNs), latestEvidence);
      rateUpdatedX = Math.max(rateUpdatedX, p.x);
      rate = rateOf(evidenceAt({ ...t, measured }, p.x, n), n);
      levelSpanNs = Math.min(n.longestLevelNs, Math.max(n.shortestBaselineNs, latest.scale / 2));
      supportX = null;
    }
  }
  let level = t.level;
  if (supportX !== null && supportX >= p.x - levelSpanNs) {
    // The same rate and the same support point: only this sample can raise the level.
    if (p.y - rate * p.x > level) {
      level = p.y - rate * p.x;
      supportX = p.x;
    }
  } else {
    const support = goodSupport(t, levelSpanNs, rate);
    if (support !== null) ({ level, x: supportX } = support);
  }
  return rebase({ ...t, rate, jitterNs, jitterDueX, measured, rateUpdatedX, levelSpanNs, level, supportX }, n);
}

/**
 * The support level of slope `rate` over the good points within `span` of the newest good one, and
 * where it rests: the window's, then (for a span longer than the window) the history's best one of
 * each second before it.
 */
function goodSupport(t: TrackingTimeline, span: number, rate: number): { level: number; x: number } | null {
  let best: { level: number; x: number } | null = null;
  let newest: number | null = null;
  const consider = (q: Point): boolean => {
    newest ??= q.x;
    if (q.x < newest - span) return false;
    const l = q.y - rate * q.x;
    if (best === null || l > best.level) best = { level: l, x: q.x };
    return true;
  };
  const w = t.window;
  for (let i = w.length - 1; i >= 0; i--) if (!w[i]!.delayed && !consider(w[i]!)) return best;
  if (t.bucket !== null && !consider(t.bucket)) return best;
  for (let i = t.history.length - 1; i >= 0; i--) if (!consider(t.history[i]!)) return best;
  return best;
}

/** The points of `points` (by x) within `span` of the newest. */
function recentPart<P extends Point>(points: readonly P[], span: number): readonly P[] {
  const newest = points[points.length - 1]!.x;
  let from = points.length - 1;
  while (from > 0 && points[from - 1]!.x >= newest - span) from--;
  return from === 0 ? points : points.slice(from);
}

export type { SampleClass };
