// The master offset estimate of interface versions 5 and 6 (spec section 5): the publishing
// policy only. Which clock is master is decided elsewhere (bmc.ts through tracker.ts); this
// module turns that clock's offset samples into the published estimate.
//
// Network delay only ever makes a sample's offset (master time − local receipt time) smaller
// than the truth. So:
//   - on becoming master, look back over the recent samples and take the largest offset, except
//     that one more than maxAheadNs (1.15 s) above the newest is an outlier and is skipped;
//   - afterwards, trust rises and small falls (at most 1000 ppm of the local time since the
//     previous sample: drift between the two clocks), and treat a larger fall as delay: move
//     the estimate down by only 10 µs. After 60 s without a trusted sample, trust the next one.
//
// Offsets are u64 modulo 2^64; every comparison is of a signed difference (toI64 of the u64
// difference), so an offset that wraps through zero compares correctly. Never a float.

import { NS_PER_SECOND, NS_PER_US, subU64, toI64, toU64 } from "../../time/ns.ts";
import type { OffsetSample } from "../syfu.ts";
import type { MasterFilter } from "./master-seam.ts";

export interface OffsetV5Rules {
  /** Look back over samples this much older than the newest, at most. */
  lookbackWindowNs: bigint;
  /** A sample whose offset is more than this above the newest one's is an outlier. */
  maxAheadNs: bigint;
  /** A fall of at most this many parts per million of the elapsed local time is drift. */
  maxFallPpm: bigint;
  /** A larger fall moves the estimate down by this much (never below the sample). */
  delayedStepNs: bigint;
  /** After this long without an accepted sample, the next one is taken as is. */
  staleAfterNs: bigint;
}

export const DEFAULT_OFFSET_V5_RULES: OffsetV5Rules = {
  lookbackWindowNs: 10n * NS_PER_SECOND,
  maxAheadNs: 1_150_000_000n,
  maxFallPpm: 1000n,
  delayedStepNs: 10n * NS_PER_US,
  staleAfterNs: 60n * NS_PER_SECOND,
};

export interface V5Estimate {
  /** Local time of the sample this estimate was made at. */
  readonly localTimeNs: bigint;
  /** Estimated master time − local time, u64. */
  readonly offsetNs: bigint;
  readonly masterStartTimeNs: bigint;
  /** Local time of the last sample that was taken as is. */
  readonly lastAcceptedNs: bigint;
}

export type V5Outcome =
  /** The offset rose (or stayed): taken as is. */
  | "ROSE"
  /** The offset fell within the drift tolerance: taken as is. */
  | "SMALL_FALL"
  /** No sample taken for staleAfterNs: this one is taken as is. */
  | "STALE_TAKEN"
  /** A larger fall, taken as network delay: the estimate moves down by delayedStepNs only. */
  | "DELAYED";

/** Signed a − b of two u64 values (or of two local times). */
function signedDiff(a: bigint, b: bigint): bigint {
  return toI64(subU64(a, b));
}

/**
 * A clock has just become master: its estimate from its samples (oldest first). Takes the
 * largest offset, among the samples at most lookbackWindowNs older than the newest, that is not
 * more than maxAheadNs above the newest sample's; the estimate is dated at the newest sample,
 * and mastership starts at the oldest sample of that window. Null when there are no samples.
 */
export function lookBack(samples: readonly OffsetSample[], rules: OffsetV5Rules = DEFAULT_OFFSET_V5_RULES): V5Estimate | null {
  const newest = samples[samples.length - 1];
  if (newest === undefined) return null;
  let best = newest;
  let bestAhead = 0n;
  let oldestInWindow = newest;
  let oldestAge = 0n;
  for (let i = samples.length - 2; i >= 0; i--) {
    const sample = samples[i]!;
    const age = signedDiff(newest.localTimeNs, sample.localTimeNs);
    if (age < 0n || age > rules.lookbackWindowNs) continue;
    if (age > oldestAge) {
      oldestInWindow = sample;
      oldestAge = age;
    }
    const ahead = signedDiff(sample.offsetNs, newest.offsetNs);
    if (ahead > rules.maxAheadNs) continue;
    // Strictly larger: among equal offsets the newest is kept.
    if (ahead > bestAhead) {
      best = sample;
      bestAhead = ahead;
    }
  }
  return {
    localTimeNs: newest.localTimeNs,
    offsetNs: best.offsetNs,
    masterStartTimeNs: oldestInWindow.localTimeNs,
    lastAcceptedNs: newest.localTimeNs,
  };
}

/** The master's next sample, in order of arrival. */
export function acceptSample(
  estimate: V5Estimate,
  sample: OffsetSample,
  rules: OffsetV5Rules = DEFAULT_OFFSET_V5_RULES,
): { estimate: V5Estimate; outcome: V5Outcome } {
  const taken = (outcome: V5Outcome) => ({
    estimate: {
      localTimeNs: sample.localTimeNs,
      offsetNs: sample.offsetNs,
      masterStartTimeNs: estimate.masterStartTimeNs,
      lastAcceptedNs: sample.localTimeNs,
    },
    outcome,
  });
  const change = signedDiff(sample.offsetNs, estimate.offsetNs);
  if (change >= 0n) return taken("ROSE");
  const fall = -change;
  // Local time since the previous sample; time that ran backwards allows no fall at all.
  const elapsed = signedDiff(sample.localTimeNs, estimate.localTimeNs);
  // fall ≤ elapsed × ppm / 10^6, kept in integers without truncation.
  if (elapsed > 0n && fall * 1_000_000n <= elapsed * rules.maxFallPpm) return taken("SMALL_FALL");
  if (signedDiff(sample.localTimeNs, estimate.lastAcceptedNs) >= rules.staleAfterNs) return taken("STALE_TAKEN");
  const step = fall < rules.delayedStepNs ? fall : rules.delayedStepNs;
  return {
    estimate: {
      localTimeNs: sample.localTimeNs,
      offsetNs: toU64(estimate.offsetNs - step),
      masterStartTimeNs: estimate.masterStartTimeNs,
      lastAcceptedNs: estimate.lastAcceptedNs,
    },
    outcome: "DELAYED",
  };
}

/** The seed's rules (spec section 5) behind the master seam: look back over the ring, then accept a rise or hold a fall. */
export function classicMasterFilter(rules: OffsetV5Rules = DEFAULT_OFFSET_V5_RULES): MasterFilter<V5Estimate> {
  return {
    name: "classic",
    begin: (samples) => lookBack(samples, rules),
    next(previous, sample) {
      const step = acceptSample(previous, sample, rules);
      if (step.outcome !== "DELAYED") return { state: step.estimate, note: null };
      const below = -signedDiff(sample.offsetNs, previous.offsetNs);
      return {
        state: step.estimate,
        note: {
          key: "delayed",
          level: "debug",
          message: (master) => `master ${master}: sample ${below} ns below the estimate, taken as network delay`,
        },
      };
    },
  };
}
