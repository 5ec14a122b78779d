// Sync/Follow_Up pairing (IEEE 1588-2008 9.5.10, 11.3: a two-step master sends Sync and then a
// Follow_Up carrying the Sync's preciseOriginTimestamp, with the same sequenceId) as a small
// state machine, one per clock record.
//
// Sync arrives on the event port (319) and Follow_Up on the general port (320): two sockets, so
// the shell may hand us the Follow_Up first. Each half waits for the other:
//   - halves match on sequenceId, clockIdentity and sourcePortNumber, and only if they were
//     received at most maxPairAgeNs (1 s) apart;
//   - a waiting half expires when a newer half of the same kind arrives, or when a half of the
//     other kind arrives that does not match it (its partner was lost: sequenceIds only move on).
//
// A Follow_Up always waits for its Sync, even from a record that has never sent one. The Sync
// is read by a worker thread (kernel receive timestamps, src/net/event-reader.ts) and can reach
// the core after its Follow_Up, often so for the very first pair: a Follow_Up used at once would
// be published without its Sync's receipt time and without the Sync's correctionField (with
// Apple's correction split between the two, the first published offset was 1.5 ms off).
// A Follow_Up whose Sync does not come is used alone when it expires as above, if its record's
// Syncs are not reaching us (lostSync): its own receipt time and its own correctionField stand
// in for the Sync's, so the sample is late by the sender's Sync→Follow_Up gap and lacks the
// Sync's correction (`paired: false`); it is delivered one sync interval late but keeps its own
// receipt time. Only then, because a Follow_Up's receipt time can be far later than its arrival:
// without --interface the general port's stamp is the kernel's time of the LAST datagram of the
// batch Bun read (kernel-stamps.ts). When the event loop was held up (a slow machine, at the start
// of following), a master's Follow_Ups and Announces come in batches, ahead of their Syncs from
// the reader thread. Used alone, such a Follow_Up was a sample late by up to the hold-up; as the
// first sample of a timeline it was published as is (126 ms off for one interval on an emulated
// arm64; 199-450 ms after a SIGSTOP of four sync intervals). So a Follow_Up is used alone only
//   - when no Sync of the record was received within syncQuietNs (2 s) before it, counted for a
//     record that never sent one from the first of the Follow_Ups in a row whose Sync did not
//     come (the run): a sender whose Syncs never reach us (port 319 not reachable) gets its
//     samples from 2 s on, each one interval late; a batch's Follow_Ups, all stamped at once or
//     nearly, never span 2 s, and by then the held-up Syncs have come;
//   - and when it was stamped before the half that showed its Sync lost (a batch of Follow_Ups
//     shares one stamp to the ns).
// A Sync that pairs ends the run. Nothing waits on a timer: there is none in a pure core.
// One-step Syncs (twoStepFlag clear) carry no Follow_Up; the seed's behaviour is to use
// Follow_Ups only, so they are ignored here.

import type { FollowUpMessage, SyncMessage } from "../ptp/types.ts";
import { FLAG_TWO_STEP } from "../ptp/types.ts";
import { NS_PER_SECOND, correctionToNs, timestampToNs, toU64 } from "../time/ns.ts";

export interface OffsetSample {
  /** Local time of the Sync's receipt (of the Follow_Up's, for a Follow_Up used alone). */
  localTimeNs: bigint;
  /** preciseOriginTimestamp + corrections − localTimeNs, u64. */
  offsetNs: bigint;
  /** preciseOriginTimestamp in ns (master time when the Sync left). */
  preciseOriginNs: bigint;
  /** false when the Follow_Up was used without its Sync. */
  paired: boolean;
}

interface HalfKey {
  sequenceId: number;
  clockIdentity: bigint;
  sourcePortNumber: number;
}

export interface PendingSync extends HalfKey {
  receivedAtNs: bigint;
  correctionField: bigint;
}

export interface PendingFollowUp extends HalfKey {
  receivedAtNs: bigint;
  correctionField: bigint;
  preciseOriginNs: bigint;
}

export interface SyfuState {
  readonly sync: PendingSync | null;
  readonly followUp: PendingFollowUp | null;
  /** Receipt of the first of the Follow_Ups in a row whose Sync did not come (since the last pairing); null: none. */
  readonly aloneSinceNs: bigint | null;
  /** Receipt of the latest two-step Sync of the record; null if none yet. */
  readonly lastSyncAtNs: bigint | null;
}

export const SYFU_IDLE: SyfuState = { sync: null, followUp: null, aloneSinceNs: null, lastSyncAtNs: null };

export interface SyfuRules {
  /** Halves received further apart than this never pair. */
  maxPairAgeNs: bigint;
  /** A Follow_Up whose Sync did not come is a sample only if no Sync of the record came within this before it (none ever: since the run began). */
  syncQuietNs: bigint;
}

export const DEFAULT_SYFU_RULES: SyfuRules = { maxPairAgeNs: NS_PER_SECOND, syncQuietNs: 2n * NS_PER_SECOND };

export type SyfuOutcome = "PAIRED" | "WAITING_FOR_FOLLOW_UP" | "WAITING_FOR_SYNC" | "IGNORED_ONE_STEP_SYNC";

export interface SyfuStep {
  state: SyfuState;
  /** Samples completed by this message, oldest first (0, 1 or 2). */
  samples: OffsetSample[];
  outcome: SyfuOutcome;
}

function matches(a: HalfKey, b: HalfKey, aAtNs: bigint, bAtNs: bigint, rules: SyfuRules): boolean {
  if (a.sequenceId !== b.sequenceId) return false;
  if (a.clockIdentity !== b.clockIdentity || a.sourcePortNumber !== b.sourcePortNumber) return false;
  const apart = aAtNs >= bAtNs ? aAtNs - bAtNs : bAtNs - aAtNs;
  return apart <= rules.maxPairAgeNs;
}

function pairedSample(sync: PendingSync, followUp: PendingFollowUp): OffsetSample {
  return {
    localTimeNs: sync.receivedAtNs,
    offsetNs: toU64(followUp.preciseOriginNs + correctionToNs(sync.correctionField) + correctionToNs(followUp.correctionField) - sync.receivedAtNs),
    preciseOriginNs: followUp.preciseOriginNs,
    paired: true,
  };
}

function aloneSample(followUp: PendingFollowUp): OffsetSample {
  return {
    localTimeNs: followUp.receivedAtNs,
    offsetNs: toU64(followUp.preciseOriginNs + correctionToNs(followUp.correctionField) - followUp.receivedAtNs),
    preciseOriginNs: followUp.preciseOriginNs,
    paired: false,
  };
}

/**
 * A waiting Follow_Up `lost` its Sync (the half received at `expiredAtNs` is not its partner): when
 * the run began, and its sample if the record's Syncs are not reaching us (the header's rules).
 */
function lostSync(
  lost: PendingFollowUp | null,
  expiredAtNs: bigint,
  state: SyfuState,
  rules: SyfuRules,
): { aloneSinceNs: bigint | null; samples: OffsetSample[] } {
  if (lost === null) return { aloneSinceNs: state.aloneSinceNs, samples: [] };
  const aloneSinceNs = state.aloneSinceNs ?? lost.receivedAtNs;
  const quietSinceNs = state.lastSyncAtNs ?? aloneSinceNs;
  const usable = lost.receivedAtNs - quietSinceNs >= rules.syncQuietNs && lost.receivedAtNs < expiredAtNs;
  return { aloneSinceNs, samples: usable ? [aloneSample(lost)] : [] };
}

/** After a pairing: nothing waits, no run; the latest Sync's receipt is kept. */
function pairedState(lastSyncAtNs: bigint | null): SyfuState {
  return { sync: null, followUp: null, aloneSinceNs: null, lastSyncAtNs };
}

export function syfuOnSync(state: SyfuState, message: SyncMessage, receivedAtNs: bigint, rules: SyfuRules = DEFAULT_SYFU_RULES): SyfuStep {
  const h = message.header;
  if ((h.flagField & FLAG_TWO_STEP) === 0) {
    return { state, samples: [], outcome: "IGNORED_ONE_STEP_SYNC" };
  }
  const sync: PendingSync = {
    sequenceId: h.sequenceId,
    clockIdentity: h.clockIdentity,
    sourcePortNumber: h.sourcePortNumber,
    receivedAtNs,
    correctionField: h.correctionField,
  };
  // The reader thread hands Syncs on in the order they came: the latest is this one.
  const lastSyncAtNs = receivedAtNs;
  const waiting = state.followUp;
  if (waiting !== null && matches(sync, waiting, receivedAtNs, waiting.receivedAtNs, rules)) {
    return { state: pairedState(lastSyncAtNs), samples: [pairedSample(sync, waiting)], outcome: "PAIRED" };
  }
  // A waiting Follow_Up that is not this Sync's lost its own Sync (and this Sync is seen: the
  // lost one is judged against the Syncs before it, not this one).
  const lost = lostSync(waiting, receivedAtNs, state, rules);
  return {
    state: { sync, followUp: null, aloneSinceNs: lost.aloneSinceNs, lastSyncAtNs },
    samples: lost.samples,
    outcome: "WAITING_FOR_FOLLOW_UP",
  };
}

export function syfuOnFollowUp(state: SyfuState, message: FollowUpMessage, receivedAtNs: bigint, rules: SyfuRules = DEFAULT_SYFU_RULES): SyfuStep {
  const h = message.header;
  const t = message.preciseOriginTimestamp;
  const followUp: PendingFollowUp = {
    sequenceId: h.sequenceId,
    clockIdentity: h.clockIdentity,
    sourcePortNumber: h.sourcePortNumber,
    receivedAtNs,
    correctionField: h.correctionField,
    preciseOriginNs: timestampToNs(t.seconds, t.nanoseconds),
  };
  // An older Follow_Up still waiting: its Sync was lost.
  const lost = lostSync(state.followUp, receivedAtNs, state, rules);
  const sync = state.sync;
  if (sync !== null && matches(sync, followUp, sync.receivedAtNs, receivedAtNs, rules)) {
    return { state: pairedState(state.lastSyncAtNs), samples: [...lost.samples, pairedSample(sync, followUp)], outcome: "PAIRED" };
  }
  // A waiting Sync that is not this Follow_Up's lost its Follow_Up: drop it. This Follow_Up
  // waits for its own Sync, however long ago (or never) this record last sent one.
  return {
    state: { sync: null, followUp, aloneSinceNs: lost.aloneSinceNs, lastSyncAtNs: state.lastSyncAtNs },
    samples: lost.samples,
    outcome: "WAITING_FOR_SYNC",
  };
}
