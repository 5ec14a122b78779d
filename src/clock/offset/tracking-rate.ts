// The tracking filter's rate (tracking.ts): the slope of the samples' upper hull, over the
// longest baseline that the samples show to be straight.
//
// A longer baseline gives a better slope while the master's rate holds (its error falls as the
// square of the baseline: the hull's error at each end falls as 1/samples, and the ends move
// apart), and a worse one once the rate changes (a crystal warming up: the slope then belongs to
// the middle of the baseline, long ago). So the slope is measured over baselines of
// shortestBaselineNs, twice that, four times… up to rateWindowNs, and the one taken is the longest that agrees with
// every shorter one within their errors: Lepski's rule for choosing a scale. Each slope's
// standard error is slopeErrorFactor × (the path's delay spread) / (samples × span).
//
// The rate is that slope combined, by precision, with the prior the timeline began with (0 ppm
// believed to within startRateUncertaintyPpm, or the rate of the timeline before it), the prior
// fading over rateMemoryNs: the first seconds of a Wi-Fi path, whose slopes are off by hundreds
// of ppm, barely move it, while a wire's are believed at once.

import { chordSlope, type Point } from "./hull.ts";
import type { TrackingRules } from "./tracking.ts";

/** Σ weight·rate and Σ weight: a rate with its precision (weight = 1/variance). */
export interface RateEvidence {
  readonly sum: number;
  readonly weight: number;
}

export const NO_EVIDENCE: RateEvidence = { sum: 0, weight: 0 };

export function combine(a: RateEvidence, b: RateEvidence): RateEvidence {
  return { sum: a.sum + b.sum, weight: a.weight + b.weight };
}

export function faded(e: RateEvidence, ageNs: number, memoryNs: number): RateEvidence {
  const k = Math.exp(-Math.max(0, ageNs) / memoryNs);
  return { sum: e.sum * k, weight: e.weight * k };
}

/** A slope, the standard error of it, and the baseline it was measured over. */
interface Measured {
  slope: number;
  sigma: number;
  scale: number;
}

/** A measured rate: its evidence, and the baseline taken (ns). */
export interface RateMeasure {
  evidence: RateEvidence;
  scale: number;
}

/**
 * The slope of `points` (by x) over the longest baseline the samples show straight, as
 * evidence; null under two points. `samplesPerNs` says how many samples a span holds (history
 * points stand for a bucket's worth), `jitterNs` the path's delay spread. One pass from the
 * newest point back builds the upper hull of every suffix; each scale's is measured as the pass
 * crosses its start.
 */
export function measureRate(
  points: readonly Point[],
  samplesPerNs: number,
  jitterNs: number,
  rules: TrackingRules,
  scales: readonly number[],
): RateMeasure | null {
  const newest = points[points.length - 1]?.x;
  if (newest === undefined) return null;
  const measured: Measured[] = [];
  // The upper hull of the points seen so far, newest first.
  const hull: Point[] = [];
  let k = 0;
  for (let i = points.length - 1; i >= -1 && k < scales.length; i--) {
    const p = i >= 0 ? points[i]! : null;
    while (k < scales.length && (p === null || p.x < newest - scales[k]!)) {
      const m = measureScale(
        hull,
        newest,
        scales[k]!,
        measured.length === 0 && k === 0 && points[0]!.x >= newest - scales[k]!,
        samplesPerNs,
        jitterNs,
        rules,
      );
      if (m !== null) measured.push(m);
      k++;
    }
    if (p === null) break;
    while (hull.length >= 2) {
      const o = hull[hull.length - 2]!;
      const a = hull[hull.length - 1]!;
      // Going back in x: a on or below the segment o→p is not a vertex of the upper hull.
      if ((a.x - o.x) * (p.y - o.y) - (a.y - o.y) * (p.x - o.x) <= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  const chosen = longestAgreeing(measured, rules.scaleAgreement);
  if (chosen === null) return null;
  const weight = 1 / (chosen.sigma * chosen.sigma);
  return { evidence: { sum: chosen.slope * weight, weight }, scale: chosen.scale };
}

/** One scale's slope from the hull of its points (newest first), or null when it says nothing new. */
function measureScale(
  hull: readonly Point[],
  newest: number,
  scale: number,
  /** The shortest scale, over all the samples there are: measured whatever its span. */
  shortest: boolean,
  samplesPerNs: number,
  jitterNs: number,
  rules: TrackingRules,
): Measured | null {
  if (hull.length < 2) return null;
  const span = newest - hull[hull.length - 1]!.x;
  // A scale counts only when its samples reach back far enough to make it that long (after a gap
  // or a queue the short ones may hold only the few samples since), but for the shortest while
  // the samples are all there are (a timeline's first seconds).
  if (!shortest && span < scale * 0.75) return null;
  const slope = chordSlope([...hull].reverse(), rules.chordFrom, rules.chordTo);
  if (slope === null) return null;
  const sigma = (rules.slopeErrorFactor * jitterNs) / (Math.max(samplesPerNs * span, 2) * span);
  return { slope, sigma, scale };
}

/** Lepski's rule: the longest baseline whose slope is within `kappa` errors of every shorter one's. */
export function longestAgreeing(measured: readonly Measured[], kappa: number): Measured | null {
  let chosen: Measured | null = null;
  for (let k = 0; k < measured.length; k++) {
    const m = measured[k]!;
    for (let j = 0; j < k; j++) {
      const shorter = measured[j]!;
      if (Math.abs(m.slope - shorter.slope) > kappa * (m.sigma + shorter.sigma)) return chosen;
    }
    chosen = m;
  }
  return chosen;
}
