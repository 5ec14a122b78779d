// Waking a silent clock (spec section 7). Some Apple clocks announce but do not send Sync and
// Follow_Up until a better clock shows up and leaves again. After a few Announces with no
// Follow_Up in between, we send that clock an Announce claiming to be better than it, and 150 ms
// later one claiming to be worse: it answers by taking mastership back, i.e. by sending.
//
// Only timing peers are ever woken. Whoever is on the LAN can send us Announces from any
// address; if any sender could make us answer, a hostile host could have us send packets to
// arbitrary addresses (a reflector). Timing peers come from Shairport Sync on the control port.
//
// Sending is an effect with a delay: the second Announce is `delayMs: 150`, never a sleep here.
//
// Interface versions 8–10 (one followed clock, which is then the only timing peer) also wake:
//   - once when a clock first announces (a record's first Announce), and
//   - once per mastership (smoothing sequence) when the clock's preciseOriginTimestamp has not
//     advanced for 60 s, if that is noticed within the first 62 s of the mastership.
// These two fire at most once each by construction, so the re-wake interval of the silent
// rule does not apply to them, and they do not delay it either.

import { FLAG_TWO_STEP } from "../ptp/types.ts";
import { NS_PER_SECOND } from "../time/ns.ts";
import type { AnnounceToSend } from "./effects.ts";
import type { AnnounceData } from "./announce.ts";

export interface WakeRules {
  /** Announces without a Follow_Up that make a clock silent. */
  announcesBeforeWake: number;
  /** A clock that stays silent is woken again at most this often. */
  rewakeIntervalNs: bigint;
  /** Delay of the "worse" Announce after the "better" one. */
  secondAnnounceDelayMs: number;
}

export const DEFAULT_WAKE_RULES: WakeRules = {
  announcesBeforeWake: 3,
  rewakeIntervalNs: 10n * NS_PER_SECOND,
  secondAnnounceDelayMs: 150,
};

export interface WakeState {
  /** Announces since the last Follow_Up (or since the record began). */
  readonly announcesSinceFollowUp: number;
  /** Local time of the last wake by the silent rule, null if never. */
  readonly lastWakeNs: bigint | null;
  /** An Announce has arrived from this record. */
  readonly announced: boolean;
}

export const WAKE_IDLE: WakeState = { announcesSinceFollowUp: 0, lastWakeNs: null, announced: false };

/** A Follow_Up arrived: the clock is not silent. */
export function wakeOnFollowUp(state: WakeState): WakeState {
  return state.announcesSinceFollowUp === 0 ? state : { ...state, announcesSinceFollowUp: 0 };
}

/** An Announce arrived; `wake` says whether to send the two waking Announces now. */
export function wakeOnAnnounce(
  state: WakeState,
  isTimingPeer: boolean,
  nowNs: bigint,
  rules: WakeRules = DEFAULT_WAKE_RULES,
): { state: WakeState; wake: boolean } {
  const announces = state.announcesSinceFollowUp + 1;
  // A local clock stepped backwards (CLOCK_REALTIME in version 5) must not silence waking.
  const sinceWake = state.lastWakeNs === null ? null : nowNs - state.lastWakeNs;
  const due = isTimingPeer && announces >= rules.announcesBeforeWake && (sinceWake === null || sinceWake < 0n || sinceWake >= rules.rewakeIntervalNs);
  return {
    state: { announcesSinceFollowUp: announces, lastWakeNs: due ? nowNs : state.lastWakeNs, announced: true },
    wake: due,
  };
}

/**
 * Versions 8–10: an Announce arrived and this is the record's first (`state` is the wake state
 * before the Announce). Only a timing peer, i.e. the followed clock, is woken.
 */
export function wakeOnFirstAnnounce(state: WakeState, isTimingPeer: boolean): boolean {
  return isTimingPeer && !state.announced;
}

export interface OriginStallRules {
  /** preciseOriginTimestamp not advancing for this long is a stall. */
  stallNs: bigint;
  /** Only a stall noticed at most this long after the mastership started wakes the clock. */
  windowNs: bigint;
}

export const DEFAULT_ORIGIN_STALL_RULES: OriginStallRules = {
  stallNs: 60n * NS_PER_SECOND,
  windowNs: 62n * NS_PER_SECOND,
};

/** Per mastership (smoothing sequence) of the followed clock; reset when a sequence starts. */
export interface OriginStallState {
  /** The highest preciseOriginTimestamp seen (ns), null before the first sample. */
  readonly lastOriginNs: bigint | null;
  /** Local time of the sample at which it last advanced. */
  readonly lastAdvanceNs: bigint | null;
  /** The stall wake has been sent in this mastership. */
  readonly woken: boolean;
}

export const ORIGIN_STALL_IDLE: OriginStallState = { lastOriginNs: null, lastAdvanceNs: null, woken: false };

/**
 * A sample of the followed clock. `wake` when its preciseOriginTimestamp has not advanced for
 * stallNs and the mastership that began at mastershipStartNs is at most windowNs old; once.
 */
export function wakeOnOriginStall(
  state: OriginStallState,
  sample: { localTimeNs: bigint; preciseOriginNs: bigint },
  mastershipStartNs: bigint,
  rules: OriginStallRules = DEFAULT_ORIGIN_STALL_RULES,
): { state: OriginStallState; wake: boolean } {
  if (state.lastOriginNs === null || state.lastAdvanceNs === null || sample.preciseOriginNs > state.lastOriginNs) {
    return {
      state: { lastOriginNs: sample.preciseOriginNs, lastAdvanceNs: sample.localTimeNs, woken: state.woken },
      wake: false,
    };
  }
  const stalledFor = sample.localTimeNs - state.lastAdvanceNs;
  const age = sample.localTimeNs - mastershipStartNs;
  const wake = !state.woken && stalledFor >= rules.stallNs && age >= 0n && age <= rules.windowNs;
  return { state: wake ? { ...state, woken: true } : state, wake };
}

function clampPriority(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

/**
 * The two waking Announces: [better (priority1 − 1, clamped to 0), worse (priority1 + 1, clamped
 * to 255)], with sequenceIds `sequenceId` and `sequenceId + 1` (mod 2^16). We are the
 * grandmaster of our own Announce (stepsRemoved 0, our clockIdentity, port 1); the rest
 * (transportSpecific, domainNumber, logMessageInterval, currentUtcOffset, clock quality,
 * priority2, timeSource) is copied from the target's Announce so that only priority1 decides between us. Its flagField is
 * copied too (timescale bits, and unicastFlag as it sends to us the way we send to it), without
 * twoStepFlag, which has no meaning in an Announce (IEEE 1588-2008 13.3.2.6, Table 20).
 */
export function wakeAnnounces(target: AnnounceData, ourClockIdentity: bigint, sequenceId: number): [AnnounceToSend, AnnounceToSend] {
  const make = (priority1: number, seq: number): AnnounceToSend => ({
    transportSpecific: target.transportSpecific,
    clockIdentity: ourClockIdentity,
    sourcePortNumber: 1,
    sequenceId: seq & 0xffff,
    domainNumber: target.domainNumber,
    logMessageInterval: target.logMessageInterval,
    flagField: target.flagField & ~FLAG_TWO_STEP & 0xffff,
    originTimestamp: { seconds: 0n, nanoseconds: 0 },
    currentUtcOffset: target.currentUtcOffset,
    grandmasterPriority1: clampPriority(priority1),
    grandmasterClockQuality: { ...target.grandmasterClockQuality },
    grandmasterPriority2: target.grandmasterPriority2,
    grandmasterIdentity: ourClockIdentity,
    stepsRemoved: 0,
    timeSource: target.timeSource,
  });
  return [make(target.grandmasterPriority1 - 1, sequenceId), make(target.grandmasterPriority1 + 1, sequenceId + 1)];
}
