// The seam between master selection (select.ts, interfaces 5 and 6) and the offset filter that
// estimates the selected master's offset. A filter starts from the new master's recent samples
// (its ring, oldest first) and then takes each new sample; its state always exposes what the
// region publishes. One filter per --offset-filter name, built once in the tracker's config.
//
// A filter is generic over its own state (MasterFilter<S>). The selection keeps a MasterTrack:
// the filter bound to its state, so that no one but the filter ever sees the state's type and
// no state can be handed to the wrong filter.

import type { LogLevel } from "../effects.ts";
import type { OffsetSample } from "../syfu.ts";
import type { OffsetFilterName } from "./names.ts";

/** What every master estimate exposes for publishing (ns of the local clock; offset u64). */
export interface MasterEstimate {
  readonly localTimeNs: bigint;
  readonly offsetNs: bigint;
  readonly masterStartTimeNs: bigint;
}

/** A debug line about one sample, keyed for the tracker's log limiter; `master` names the clock. */
export interface FilterNote {
  readonly key: string;
  readonly level: LogLevel;
  readonly message: (master: string) => string;
}

/** A sample of the master, with the timeline evidence of its record (records.ts `timelineEpoch`). */
export interface MasterSample extends OffsetSample {
  /** Changes when the clock's record shows its timeline may have changed (an Announce, a restart). */
  readonly timelineEpoch?: number;
}

/** An offset filter of interfaces 5 and 6 over its own state S. */
export interface MasterFilter<S extends MasterEstimate> {
  readonly name: OffsetFilterName;
  /** A clock has just become master: its first estimate from its samples, oldest first. */
  begin(samples: readonly MasterSample[]): S | null;
  /** The master's next sample. */
  next(state: S, sample: MasterSample): { state: S; note: FilterNote | null };
}

/** A master's filter with its state: immutable, every sample gives a new one. */
export interface MasterTrack {
  readonly name: OffsetFilterName;
  readonly estimate: MasterEstimate;
  next(sample: MasterSample): { track: MasterTrack; note: FilterNote | null };
}

/** What the tracker's config holds for 5 and 6: starts a track for a new master. */
export interface MasterTracker {
  readonly name: OffsetFilterName;
  begin(samples: readonly MasterSample[]): MasterTrack | null;
}

class BoundMasterTrack<S extends MasterEstimate> implements MasterTrack {
  constructor(
    private readonly filter: MasterFilter<S>,
    private readonly state: S,
  ) {}

  get name(): OffsetFilterName {
    return this.filter.name;
  }

  get estimate(): MasterEstimate {
    return this.state;
  }

  next(sample: MasterSample): { track: MasterTrack; note: FilterNote | null } {
    const step = this.filter.next(this.state, sample);
    return { track: new BoundMasterTrack(this.filter, step.state), note: step.note };
  }
}

/** The tracker's handle on `filter`: every track it begins keeps the filter's own state type. */
export function masterTracker<S extends MasterEstimate>(filter: MasterFilter<S>): MasterTracker {
  return {
    name: filter.name,
    begin(samples) {
      const state = filter.begin(samples);
      return state === null ? null : new BoundMasterTrack(filter, state);
    },
  };
}
