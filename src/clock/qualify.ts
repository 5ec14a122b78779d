// Announce qualification, IEEE 1588-2008 9.3.2.5, with the foreign-master constants of 9.3.2.4.
//
// A clock's Announce data may enter the data-set comparison only once it is "qualified":
//   - at least FOREIGN_MASTER_THRESHOLD (2) distinct Announce messages from that clock arrived
//     within FOREIGN_MASTER_TIME_WINDOW (4 announce intervals; we use 4 s, the window of the
//     1 s announce interval AirPlay senders use, spec section 4);
//   - 9.3.2.5 (d): an Announce whose stepsRemoved is 255 or more is not qualified.
// "Distinct" is taken literally: a repeat of the previous Announce's sequenceId (a duplicated
// datagram) is not a second Announce.
//
// The decision is made when an Announce arrives, as 9.3.2.5 describes it; there is no timer, so
// qualification does not lapse by silence alone. A clock whose Announces arrive further apart
// than the window loses it at the next Announce.

import { NS_PER_SECOND } from "../time/ns.ts";

/** IEEE 1588-2008 9.3.2.4: FOREIGN_MASTER_THRESHOLD. */
export const FOREIGN_MASTER_THRESHOLD = 2;
/** IEEE 1588-2008 9.3.2.4: FOREIGN_MASTER_TIME_WINDOW = 4 announce intervals (of 1 s). */
export const FOREIGN_MASTER_TIME_WINDOW_NS = 4n * NS_PER_SECOND;
/** IEEE 1588-2008 9.3.2.5 (d): stepsRemoved at or above this is not qualified. */
export const STEPS_REMOVED_LIMIT = 255;

export interface QualificationRules {
  threshold: number;
  windowNs: bigint;
}

export const DEFAULT_QUALIFICATION_RULES: QualificationRules = {
  threshold: FOREIGN_MASTER_THRESHOLD,
  windowNs: FOREIGN_MASTER_TIME_WINDOW_NS,
};

export interface AnnounceArrival {
  atNs: bigint;
  sequenceId: number;
}

export interface Qualification {
  /** The most recent distinct, counted arrivals, oldest first; at most `threshold` of them. */
  readonly arrivals: readonly AnnounceArrival[];
  readonly qualified: boolean;
}

export const UNQUALIFIED: Qualification = { arrivals: [], qualified: false };

/** Qualification after an Announce with this sequenceId and stepsRemoved arrived at atNs. */
export function qualifyAnnounce(
  previous: Qualification,
  announce: { sequenceId: number; stepsRemoved: number },
  atNs: bigint,
  rules: QualificationRules = DEFAULT_QUALIFICATION_RULES,
): Qualification {
  // 9.3.2.5 (d): not qualified, and not counted towards the threshold either.
  if (announce.stepsRemoved >= STEPS_REMOVED_LIMIT) {
    return { arrivals: previous.arrivals, qualified: false };
  }
  const last = previous.arrivals[previous.arrivals.length - 1];
  let arrivals = previous.arrivals;
  if (last === undefined || last.sequenceId !== announce.sequenceId) {
    const keep = Math.max(rules.threshold, 1);
    const next = previous.arrivals.slice(Math.max(0, previous.arrivals.length - (keep - 1)));
    next.push({ atNs, sequenceId: announce.sequenceId });
    arrivals = next;
  }
  // With the last `threshold` arrivals kept, "threshold of them in the window" is "the oldest
  // kept one is in the window". An arrival exactly windowNs ago still counts.
  const oldest = arrivals[0];
  const qualified = arrivals.length >= rules.threshold && oldest !== undefined && atNs - oldest.atNs <= rules.windowNs;
  return { arrivals, qualified };
}
