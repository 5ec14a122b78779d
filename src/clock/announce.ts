// What a clock record keeps of its latest Announce: the data set the BMC compares, plus the
// header fields that waking it (wake.ts) and the status snapshot need. Its own module, so that
// records.ts and wake.ts both depend on it and not on each other.

import type { AnnounceMessage, ClockQuality } from "../ptp/types.ts";
import type { ComparableDataSet } from "./bmc.ts";

/** The latest Announce's data set, plus the header fields waking and the snapshot need. */
export interface AnnounceData extends ComparableDataSet {
  readonly grandmasterClockQuality: ClockQuality;
  readonly currentUtcOffset: number;
  readonly timeSource: number;
  readonly transportSpecific: number;
  readonly domainNumber: number;
  readonly logMessageInterval: number;
  readonly flagField: number;
  readonly sequenceId: number;
}

export function announceDataOf(message: AnnounceMessage): AnnounceData {
  const h = message.header;
  return {
    grandmasterPriority1: message.grandmasterPriority1,
    grandmasterClockQuality: message.grandmasterClockQuality,
    grandmasterPriority2: message.grandmasterPriority2,
    grandmasterIdentity: message.grandmasterIdentity,
    stepsRemoved: message.stepsRemoved,
    senderClockIdentity: h.clockIdentity,
    senderPortNumber: h.sourcePortNumber,
    currentUtcOffset: message.currentUtcOffset,
    timeSource: message.timeSource,
    transportSpecific: h.transportSpecific,
    domainNumber: h.domainNumber,
    logMessageInterval: h.logMessageInterval,
    flagField: h.flagField,
    sequenceId: h.sequenceId,
  };
}
