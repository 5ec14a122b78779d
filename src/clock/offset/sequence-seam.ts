// The seam between following one clock (../client-follow.ts, interfaces 8-10) and the offset filter that
// turns the followed clock's samples into the published offset.
//
// Samples come in *sequences* (spec section 6): the first sample, a sample from a new
// grandmaster, or the sample after a requested restart starts one, and the sequence's start is
// the mastership start time the region publishes. A restart ("B" after the clock had lapsed)
// drops the next sample and starts a sequence with the one after. Every filter keeps that
// contract; what differs is how the offset within a sequence is estimated.
//
// One filter per --offset-filter name, built once in the tracker's config; its state is a value
// in the client's FollowState.

import type { FilterNote } from "./master-seam.ts";
import type { OffsetFilterName } from "./names.ts";
import {
  DEFAULT_SMOOTHING_RULES,
  SMOOTHING_IDLE,
  smoothOffset,
  startsSequence,
  type RestartPhase,
  type SmoothingRules,
  type SmoothingSample,
  type SmoothingState,
} from "./classic-sequence.ts";
import { formatClockId } from "../../ptp/clock-identity.ts";
import { subU64, toI64 } from "../../time/ns.ts";

export type { FilterNote } from "./master-seam.ts";
export type { RestartPhase } from "./classic-sequence.ts";

/** A sample of the followed clock, with its grandmaster from its latest Announce. */
export interface SequenceSample extends SmoothingSample {
  /** false for a Follow_Up used without its Sync (syfu.ts). */
  readonly paired?: boolean;
}

/** What every sequence filter's state exposes. */
export interface SequenceFilterState {
  /** null before the first sample, and during a restart until the sample that starts one. */
  readonly sequence: {
    /** grandmasterIdentity the sequence's samples were measured against; null until known. */
    readonly grandmasterIdentity: bigint | null;
    /** Local time the sequence (mastership) started: its first sample's local time. */
    readonly startNs: bigint;
    /** Local time of the sample the current offset belongs to. */
    readonly localTimeNs: bigint;
  } | null;
  readonly restart: RestartPhase;
}

export interface SequenceStep {
  state: SequenceFilterState;
  /** This sample began a new sequence (a new mastership start time). */
  startedSequence: boolean;
  /** A line worth logging about this sample; `master` names the clock (its address). */
  note: FilterNote | null;
}

export interface SequenceFilter {
  readonly name: OffsetFilterName;
  /** No sample yet. */
  readonly idle: SequenceFilterState;
  /** The followed clock's next sample, in order of arrival. */
  sample(state: SequenceFilterState, sample: SequenceSample): SequenceStep;
  /** The offset (master − local, u64) of the current sequence; null without one. */
  offsetOf(state: SequenceFilterState): bigint | null;
}

/** Asks for a restart: the next sample is dropped and the one after starts a new sequence. */
export function requestRestart(filter: SequenceFilter): SequenceFilterState {
  return { ...filter.idle, restart: "drop-next" };
}

/**
 * The grandmaster of the clock became known (its first Announce) while a sequence that began
 * without one runs: the sequence adopts it. Not a change of grandmaster.
 */
export function adoptGrandmaster<S extends SequenceFilterState>(state: S, grandmasterIdentity: bigint): S {
  const s = state.sequence;
  if (s === null || s.grandmasterIdentity !== null) return state;
  return { ...state, sequence: { ...s, grandmasterIdentity } };
}

/** The original's smoothing (spec section 6), bit for bit: classic-sequence.ts. */
export function classicSequenceFilter(rules: SmoothingRules = DEFAULT_SMOOTHING_RULES): SequenceFilter {
  return {
    name: "classic",
    idle: SMOOTHING_IDLE,
    sample(state, sample) {
      const previous = state as SmoothingState;
      const step = smoothOffset(previous, sample, rules);
      let note: FilterNote | null = null;
      switch (step.outcome) {
        case "GRANDMASTER_CHANGED":
          note = {
            key: "grandmaster",
            level: "info",
            message: (ip) => `grandmaster of ${ip} changed to ${formatClockId(sample.grandmasterIdentity!)}: new smoothing sequence`,
          };
          break;
        case "DROPPED_FOR_RESTART":
          note = { key: "restart", level: "debug", message: (ip) => `smoothing restart: dropped a sample of ${ip}` };
          break;
        case "FALL_CLAMPED": {
          const below = -toI64(subU64(sample.offsetNs, previous.sequence!.smoothedNs));
          note = {
            key: "fall-clamped",
            level: "debug",
            message: (ip) => `${ip}: sample ${below} ns below the smoothed offset, counted as ${rules.maxFallNs} ns`,
          };
          break;
        }
        default:
          break;
      }
      return { state: step.state, startedSequence: startsSequence(step.outcome), note };
    },
    offsetOf: (state) => (state as SmoothingState).sequence?.smoothedNs ?? null,
  };
}
