// "Follow one clock" of interface versions 8, 9 and 10 (spec section 6), for one client: the
// state that replaces master selection (select.ts) for Shairport Sync 4.1 and later.
// clients.ts keeps one FollowState per client and carries these out for the shared table.
//
// Shairport Sync names the clock to follow ("/nqptp T ip"); there is no selection among peers.
// Whether the followed clock's record is published depends on play:
//   - active: play is going on (version 9+: between B and E; version 8, which has no B/E/P:
//     whenever a clock is followed);
//   - valid until: a time up to which an inactive clock is still published. "T ip" makes it at
//     least 5 s from now (the clock is published even if play never begins), "E" 2.25 s.
// The shm holds the followed clock's record while it is active or valid, zeros otherwise.
// Validity lapses by the passage of time alone, so the tracker asks the shell for a tick at the
// earliest deadline of all clients (scheduleTick); nothing is scheduled when none is pending.
//
// "B" after the clock had lapsed (inactive, validity expired or never set) restarts the offset
// filter: the next sample is dropped and the one after starts a new sequence (offset/sequence-seam.ts).
//
// Pure functions over an immutable FollowState; the tracker carries them out for the table.

import type { PublishedMaster } from "./effects.ts";
import type { FilterNote, SequenceTrack } from "./offset/sequence-seam.ts";
import { DEFAULT_SMOOTHING_RULES, type SmoothingRules } from "./offset/classic-sequence.ts";
import type { OffsetSample } from "./syfu.ts";
import { NS_PER_MS, NS_PER_SECOND } from "../time/ns.ts";
import { DEFAULT_ORIGIN_STALL_RULES, ORIGIN_STALL_IDLE, wakeOnOriginStall, type OriginStallRules, type OriginStallState } from "./wake.ts";

export interface FollowRules {
  /** "T ip": the clock is valid for at least this long. */
  validAfterFollowNs: bigint;
  /** "E": an active clock stays valid for this long. */
  validAfterPlayEndNs: bigint;
  /** The classic filter's rules (offset/classic-sequence.ts). */
  smoothing: SmoothingRules;
  originStall: OriginStallRules;
}

export const DEFAULT_FOLLOW_RULES: FollowRules = {
  validAfterFollowNs: 5n * NS_PER_SECOND,
  validAfterPlayEndNs: 2_250n * NS_PER_MS,
  smoothing: DEFAULT_SMOOTHING_RULES,
  originStall: DEFAULT_ORIGIN_STALL_RULES,
};

export interface FollowState {
  /** The followed clock's address (normalised IP text); null when not following. */
  readonly ip: string | null;
  readonly active: boolean;
  /** An inactive clock is published before this local time; null when never set or cleared. */
  readonly validUntilNs: bigint | null;
  /** The offset filter with its state (offset/sequence-seam.ts): the current sequence and its offset. */
  readonly filter: SequenceTrack;
  /** Waking a followed clock whose time stands still (wake.ts), per sequence. */
  readonly originStall: OriginStallState;
}

/** A client that follows nothing (yet, or after "T" alone), with `filter`'s offset filter, reset. */
export function notFollowing(filter: SequenceTrack): FollowState {
  return { ip: null, active: false, validUntilNs: null, filter: filter.reset(), originStall: ORIGIN_STALL_IDLE };
}

/** Inside the validity window (whatever `active` says). */
export function withinValidity(state: FollowState, nowNs: bigint): boolean {
  return state.validUntilNs !== null && nowNs < state.validUntilNs;
}

/** The followed clock's record belongs in the shm (when it has one). */
export function isPublishable(state: FollowState, nowNs: bigint): boolean {
  return state.ip !== null && (state.active || withinValidity(state, nowNs));
}

/**
 * "T ip": follow `ip` from scratch (the tracker forgets the clock's record; the filter starts
 * over with the first sample). Valid for at least validAfterFollowNs. With play control (version
 * 9+) `active` is left as it is; without (version 8) following is being active.
 */
export function startFollowing(
  state: FollowState,
  ip: string,
  nowNs: bigint,
  playControlled: boolean,
  rules: FollowRules = DEFAULT_FOLLOW_RULES,
): FollowState {
  const validUntil = nowNs + rules.validAfterFollowNs;
  return {
    ip,
    active: playControlled ? state.active : true,
    validUntilNs: state.validUntilNs !== null && state.validUntilNs > validUntil ? state.validUntilNs : validUntil,
    filter: state.filter.reset(),
    originStall: ORIGIN_STALL_IDLE,
  };
}

/** "T" alone: stop timing. Inactive, validity cleared, nothing to publish. */
export function stopFollowing(state: FollowState): FollowState {
  return notFollowing(state.filter);
}

export type PlayBeginOutcome = "ALREADY_ACTIVE" | "BEGAN" | "BEGAN_RESTARTED";

/** "B" (version 9+): the clock is active; if it had lapsed, the filter restarts. */
export function playBegin(state: FollowState, nowNs: bigint): { state: FollowState; outcome: PlayBeginOutcome } {
  if (state.active) return { state, outcome: "ALREADY_ACTIVE" };
  if (withinValidity(state, nowNs)) return { state: { ...state, active: true }, outcome: "BEGAN" };
  return {
    state: { ...state, active: true, filter: state.filter.restarted(), originStall: ORIGIN_STALL_IDLE },
    outcome: "BEGAN_RESTARTED",
  };
}

export type PlayEndOutcome = "NOT_ACTIVE" | "ENDED";

/**
 * "E" (version 9+): an active clock becomes inactive, valid for validAfterPlayEndNs more. A
 * longer validity already granted (by "T ip" just before) is kept: "at least 5 s" holds.
 */
export function playEnd(
  state: FollowState,
  nowNs: bigint,
  rules: FollowRules = DEFAULT_FOLLOW_RULES,
): { state: FollowState; outcome: PlayEndOutcome } {
  if (!state.active) return { state, outcome: "NOT_ACTIVE" };
  const validUntil = nowNs + rules.validAfterPlayEndNs;
  const validUntilNs = state.validUntilNs !== null && state.validUntilNs > validUntil ? state.validUntilNs : validUntil;
  return { state: { ...state, active: false, validUntilNs }, outcome: "ENDED" };
}

/** The followed clock announced this grandmaster: a sequence that began without one adopts it. */
export function followAnnounce(state: FollowState, grandmasterIdentity: bigint): FollowState {
  const filter = state.filter.adoptGrandmaster(grandmasterIdentity);
  return filter === state.filter ? state : { ...state, filter };
}

export interface FollowSampleStep {
  state: FollowState;
  /** What the filter had to say about this sample, if anything. */
  note: FilterNote | null;
  /** The clock's time has stood still (wake.ts): wake it. */
  wake: boolean;
}

/** A sample of the followed clock; `grandmasterIdentity` from its latest Announce, if any. */
export function followSample(
  state: FollowState,
  sample: OffsetSample,
  grandmasterIdentity: bigint | null,
  rules: FollowRules = DEFAULT_FOLLOW_RULES,
  timelineEpoch = 0,
): FollowSampleStep {
  const step = state.filter.sample({
    localTimeNs: sample.localTimeNs,
    offsetNs: sample.offsetNs,
    grandmasterIdentity,
    paired: sample.paired,
    timelineEpoch,
  });
  let originStall = step.startedSequence ? ORIGIN_STALL_IDLE : state.originStall;
  let wake = false;
  const sequence = step.state.sequence;
  if (sequence !== null) {
    const w = wakeOnOriginStall(originStall, sample, sequence.startNs, rules.originStall);
    originStall = w.state;
    wake = w.wake;
  }
  return { state: { ...state, filter: step.state, originStall }, note: step.note, wake };
}

/**
 * What the client's region should hold now: the followed clock's filtered record while it is
 * publishable and has a sequence whose grandmaster is known; otherwise null (zeros).
 */
export function followedMaster(state: FollowState, nowNs: bigint): PublishedMaster | null {
  if (!isPublishable(state, nowNs)) return null;
  const sequence = state.filter.sequence;
  const offsetNs = state.filter.offsetNs;
  if (sequence === null || sequence.grandmasterIdentity === null || offsetNs === null) return null;
  return {
    clockId: sequence.grandmasterIdentity,
    ip: state.ip!,
    localTimeNs: sequence.localTimeNs,
    offsetNs,
    masterStartTimeNs: sequence.startNs,
  };
}

/** The time at which publishing stops by itself: an inactive followed clock's validity end. */
export function validityDeadline(state: FollowState, nowNs: bigint): bigint | null {
  if (state.ip === null || state.active || !withinValidity(state, nowNs)) return null;
  return state.validUntilNs;
}

/**
 * After an event: whether to ask the shell for a tick (delayMs, rounded up so that the tick
 * never comes before the deadline) or not (null). `deadline` is the earliest validity deadline
 * of all clients (null: none pending); `tickDueNs` the deadline the shell's one timer is set for.
 * That timer stays set until it fires (`timerFired`: this event is its "tick"); a request is
 * made when a deadline is pending that differs from the one the timer is set for, or when it
 * fired with time still left (a timer may fire early). A timer set for a deadline no longer
 * pending is left to fire: its tick changes nothing.
 */
export function scheduleTick(
  tickDueNs: bigint | null,
  deadline: bigint | null,
  nowNs: bigint,
  timerFired: boolean,
): { tickDueNs: bigint | null; delayMs: number | null } {
  const outstanding = timerFired ? null : tickDueNs;
  if (deadline === null || deadline === outstanding) return { tickDueNs: outstanding, delayMs: null };
  const delayMs = Number((deadline - nowNs + NS_PER_MS - 1n) / NS_PER_MS);
  return { tickDueNs: deadline, delayMs };
}
