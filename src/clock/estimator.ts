// The seam between the shared tracker (records, qualification, BMC, pairing) and the publishing
// policy of interface versions 5 and 6: offset-v5.ts (look back, then accept or hold).
//
// The "follow one clock + smoothing" policy of versions 8–10 (spec section 6) does not use this
// seam: its sequences are started by inputs this shape has no room for (a change of the clock's
// grandmasterIdentity, a restart requested by "B"), and it never looks back over a ring. It is
// smoothing.ts (smoothOffset) driven by follow.ts, chosen by interface version in tracker.ts.

import type { OffsetSample } from "./syfu.ts";
import {
  DEFAULT_OFFSET_V5_RULES,
  acceptSample,
  lookBack,
  type OffsetV5Rules,
  type V5Estimate,
  type V5Outcome,
} from "./offset-v5.ts";

/** What every estimate exposes for publishing. */
export interface MasterEstimate {
  readonly localTimeNs: bigint;
  readonly offsetNs: bigint;
  readonly masterStartTimeNs: bigint;
}

export interface OffsetEstimator<E extends MasterEstimate, Outcome extends string> {
  /** A clock has just become master: its first estimate from its samples (oldest first). */
  begin(samples: readonly OffsetSample[]): E | null;
  /** The master's next sample. */
  next(estimate: E, sample: OffsetSample): { estimate: E; outcome: Outcome };
}

export function offsetV5Estimator(
  rules: OffsetV5Rules = DEFAULT_OFFSET_V5_RULES,
): OffsetEstimator<V5Estimate, V5Outcome> {
  return {
    begin: (samples) => lookBack(samples, rules),
    next: (estimate, sample) => acceptSample(estimate, sample, rules),
  };
}
