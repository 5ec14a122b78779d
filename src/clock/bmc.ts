// The data-set comparison of the best master clock algorithm, IEEE 1588-2008 9.3.4,
// figures 27 and 28, as a flat ladder: one attribute per step, in the standard's order, each step
// either deciding or passing to the next. Lower values are better throughout.
//
// What we dropped from figure 28, and why. The standard compares, besides the two senders, the
// identity of the *receiving* port (this clock's own portIdentity):
//   - When stepsRemoved differ by exactly 1, it compares the receiver's identity with the sender
//     of the message with more steps. Equal means that message came back through this very
//     clock ("error-1"); otherwise the outcome is BETTER or BETTER_BY_TOPOLOGY depending on
//     which identity is lower. We never send Sync or Announce as a master and never forward
//     anything, so a message can never have passed through us: error-1 cannot occur. Either
//     outcome names the same winner; the difference only feeds the port state decision
//     (9.3.3: PASSIVE versus SLAVE), which a never-master listener does not have. We always
//     answer *_BETTER_TOPO.
//   - When the senders are identical, it compares the port numbers of the receiving ports
//     (the same Announce heard on two ports of a boundary clock). We have a single logical
//     port, so that step would always be equal; we compare the sender's portNumber instead (it
//     is the second half of the sender's portIdentity), and past that the data sets are SAME.

import type { ClockQuality } from "../ptp/types.ts";

export const Comparison = {
  A_BETTER: "A_BETTER",
  B_BETTER: "B_BETTER",
  A_BETTER_TOPO: "A_BETTER_TOPO",
  B_BETTER_TOPO: "B_BETTER_TOPO",
  SAME: "SAME",
} as const;
export type ComparisonOutcome = (typeof Comparison)[keyof typeof Comparison];

/** What figure 27 compares: the Announce's grandmaster fields and its sender (header). */
export interface ComparableDataSet {
  grandmasterPriority1: number;
  grandmasterClockQuality: ClockQuality;
  grandmasterPriority2: number;
  grandmasterIdentity: bigint;
  stepsRemoved: number;
  /** sourcePortIdentity.clockIdentity of the Announce's header. */
  senderClockIdentity: bigint;
  /** sourcePortIdentity.portNumber of the Announce's header. */
  senderPortNumber: number;
}

/** Lower wins: A_BETTER if a < b, B_BETTER if a > b, null (next step) if equal. */
function lower(a: number | bigint, b: number | bigint): ComparisonOutcome | null {
  if (a < b) return Comparison.A_BETTER;
  if (a > b) return Comparison.B_BETTER;
  return null;
}

function lowerTopo(a: number | bigint, b: number | bigint): ComparisonOutcome | null {
  if (a < b) return Comparison.A_BETTER_TOPO;
  if (a > b) return Comparison.B_BETTER_TOPO;
  return null;
}

/** IEEE 1588-2008 figure 28: A and B share a grandmaster; compare their paths to it. */
function compareTopology(a: ComparableDataSet, b: ComparableDataSet): ComparisonOutcome {
  const stepsDifference = a.stepsRemoved - b.stepsRemoved;
  if (stepsDifference < -1) return Comparison.A_BETTER;
  if (stepsDifference > 1) return Comparison.B_BETTER;
  // Exactly one step apart: receiver-identity test dropped (see the top of this file).
  if (stepsDifference === -1) return Comparison.A_BETTER_TOPO;
  if (stepsDifference === 1) return Comparison.B_BETTER_TOPO;
  return lowerTopo(a.senderClockIdentity, b.senderClockIdentity) ?? lowerTopo(a.senderPortNumber, b.senderPortNumber) ?? Comparison.SAME;
}

/** IEEE 1588-2008 figure 27 (and 28 through compareTopology). */
export function compareDataSets(a: ComparableDataSet, b: ComparableDataSet): ComparisonOutcome {
  if (a.grandmasterIdentity === b.grandmasterIdentity) return compareTopology(a, b);
  const qa = a.grandmasterClockQuality;
  const qb = b.grandmasterClockQuality;
  return (
    lower(a.grandmasterPriority1, b.grandmasterPriority1) ??
    lower(qa.clockClass, qb.clockClass) ??
    lower(qa.clockAccuracy, qb.clockAccuracy) ??
    lower(qa.offsetScaledLogVariance, qb.offsetScaledLogVariance) ??
    lower(a.grandmasterPriority2, b.grandmasterPriority2) ??
    // The identities differ here, so this step always decides.
    lower(a.grandmasterIdentity, b.grandmasterIdentity) ??
    Comparison.SAME
  );
}

export function aWins(outcome: ComparisonOutcome): boolean {
  return outcome === Comparison.A_BETTER || outcome === Comparison.A_BETTER_TOPO;
}

export interface MasterCandidate {
  /** Identifies the candidate to the caller (the record's IP). */
  id: string;
  dataSet: ComparableDataSet;
}

/**
 * The best of the candidates by compareDataSets, or null when there are none. Two candidates
 * that compare SAME are the same clock heard twice (e.g. over IPv4 and IPv6): keep `preferId`
 * (the current master, so mastership does not flap) if it is one of them, else the lower id, so
 * the answer does not depend on the order of the candidates.
 */
export function selectMaster<C extends MasterCandidate>(candidates: readonly C[], preferId?: string | null): C | null {
  let best: C | null = null;
  for (const candidate of candidates) {
    if (best === null) {
      best = candidate;
      continue;
    }
    const outcome = compareDataSets(candidate.dataSet, best.dataSet);
    if (aWins(outcome)) {
      best = candidate;
    } else if (outcome === Comparison.SAME && best.id !== preferId) {
      if (candidate.id === preferId || candidate.id < best.id) best = candidate;
    }
  }
  return best;
}
