// The seam between following one clock (../client-follow.ts, interfaces 8-10) and the offset
// filter that turns the followed clock's samples into the published offset.
//
// Samples come in *sequences* (spec section 6): the first sample, a sample from a new
// grandmaster, or the sample after a requested restart starts one, and the sequence's start is
// the mastership start time the region publishes. A restart ("B" after the clock had lapsed)
// drops the next sample and starts a sequence with the one after. Every filter keeps that
// contract; what differs is how the offset within a sequence is estimated.
//
// A filter is generic over its own state (SequenceFilter<S>). A client keeps a SequenceTrack:
// the filter bound to its state, so that no one but the filter ever sees the state's type.

import type { FilterNote } from "./master-seam.ts";
import type { OffsetFilterName } from "./names.ts";

export type { FilterNote } from "./master-seam.ts";

/**
 * Where a requested restart stands: "drop-next" until the next sample (which is dropped), then
 * "start-next" until the one after (which starts the new sequence), then "none".
 */
export type RestartPhase = "none" | "drop-next" | "start-next";

/** A sample of the followed clock, with its grandmaster from its latest Announce. */
export interface SequenceSample {
  readonly localTimeNs: bigint;
  /** master time − local time, u64. */
  readonly offsetNs: bigint;
  /** grandmasterIdentity of the clock's latest Announce when the sample arrived; null if none yet. */
  readonly grandmasterIdentity: bigint | null;
  /** false for a Follow_Up used without its Sync (syfu.ts). */
  readonly paired?: boolean;
  /** Changes when the clock's record shows its timeline may have changed (records.ts `timelineEpoch`). */
  readonly timelineEpoch?: number;
}

/** The current sequence, as every filter keeps it. */
export interface Sequence {
  /** grandmasterIdentity the sequence's samples were measured against; null until known. */
  readonly grandmasterIdentity: bigint | null;
  /** Local time the sequence (mastership) started: its first sample's local time. */
  readonly startNs: bigint;
  /** Local time of the sample the current offset belongs to. */
  readonly localTimeNs: bigint;
}

/** What every sequence filter's state exposes. */
export interface SequenceFilterState {
  /** null before the first sample, and during a restart until the sample that starts one. */
  readonly sequence: Sequence | null;
  readonly restart: RestartPhase;
}

export interface SequenceStep<S> {
  state: S;
  /** This sample began a new sequence (a new mastership start time). */
  startedSequence: boolean;
  /** A line worth logging about this sample; `master` names the clock (its address). */
  note: FilterNote | null;
}

/** An offset filter of interfaces 8-10 over its own state S. */
export interface SequenceFilter<S extends SequenceFilterState> {
  readonly name: OffsetFilterName;
  /** No sample yet. */
  readonly idle: S;
  /** The followed clock's next sample, in order of arrival. */
  sample(state: S, sample: SequenceSample): SequenceStep<S>;
  /** The offset (master − local, u64) of the current sequence; null without one. */
  offsetOf(state: S): bigint | null;
}

/** A client's filter with its state: immutable, every change gives a new one. */
export interface SequenceTrack {
  readonly name: OffsetFilterName;
  readonly sequence: Sequence | null;
  readonly restart: RestartPhase;
  /** The offset (master − local, u64) of the current sequence; null without one. */
  readonly offsetNs: bigint | null;
  sample(sample: SequenceSample): SequenceStep<SequenceTrack>;
  /** The same filter with no sample yet. */
  reset(): SequenceTrack;
  /** A restart: the next sample is dropped and the one after starts a new sequence. */
  restarted(): SequenceTrack;
  /**
   * The grandmaster of the clock became known (its first Announce) while a sequence that began
   * without one runs: the sequence adopts it. Not a change of grandmaster.
   */
  adoptGrandmaster(grandmasterIdentity: bigint): SequenceTrack;
}

class BoundSequenceTrack<S extends SequenceFilterState> implements SequenceTrack {
  constructor(
    private readonly filter: SequenceFilter<S>,
    private readonly state: S,
  ) {}

  get name(): OffsetFilterName {
    return this.filter.name;
  }
  get sequence(): Sequence | null {
    return this.state.sequence;
  }
  get restart(): RestartPhase {
    return this.state.restart;
  }
  get offsetNs(): bigint | null {
    return this.filter.offsetOf(this.state);
  }

  sample(sample: SequenceSample): SequenceStep<SequenceTrack> {
    const step = this.filter.sample(this.state, sample);
    return { state: new BoundSequenceTrack(this.filter, step.state), startedSequence: step.startedSequence, note: step.note };
  }

  reset(): SequenceTrack {
    return new BoundSequenceTrack(this.filter, this.filter.idle);
  }

  restarted(): SequenceTrack {
    return new BoundSequenceTrack(this.filter, { ...this.filter.idle, restart: "drop-next" });
  }

  adoptGrandmaster(grandmasterIdentity: bigint): SequenceTrack {
    const s = this.state.sequence;
    if (s === null || s.grandmasterIdentity !== null) return this;
    return new BoundSequenceTrack(this.filter, { ...this.state, sequence: { ...s, grandmasterIdentity } });
  }
}

/** A track of `filter` with no sample yet: what a new client starts from. */
export function idleTrack<S extends SequenceFilterState>(filter: SequenceFilter<S>): SequenceTrack {
  return new BoundSequenceTrack(filter, filter.idle);
}
