// The tracking filter (tracking.ts: the master as offset + rate, fitted to the upper hull of
// its samples) behind both seams: master-seam.ts for interfaces 5, 6 and sequence-seam.ts for
// 8-10. The sequence rules stay those of every filter: a new grandmaster or a requested restart
// starts a sequence (a new mastership start time) and a fresh estimator; a new timeline of the
// same clock (a step of its time, detected by the estimator) restarts the estimator only.

import { formatClockId } from "../../ptp/clock-identity.ts";
import type { FilterNote, MasterEstimate, MasterFilter } from "./master-seam.ts";
import { DEFAULT_TRACKING_RULES, TRACKING_IDLE, trackOffset, type TrackingRules, type TrackingState, type TrackingStep } from "./tracking.ts";
import type { SequenceFilter, SequenceFilterState } from "./sequence-seam.ts";

/** What is worth a log line among the estimator's outcomes: the restarts of its timeline. */
const TIMELINE_NOTES: Partial<Record<TrackingStep["outcome"], string>> = {
  STEPPED_UP: "its time stepped up by more than 1 ms: a new timeline",
  STEPPED_DOWN: "its time stepped down by more than 1 ms, after a change of its Announce or a restart of its Syncs: a new timeline",
  FOLLOWED_DOWN: "its samples stayed more than 1 ms low for a minute (a step down, or a queue that long): followed, slewed; a new timeline",
  LOCAL_CLOCK_STEPPED: "the local clock went back: a new timeline",
  RESTARTED_AFTER_GAP: "heard again after a silence: offset estimate restarted",
  REMEASURED_AFTER_GAP: "heard again after a silence: offset measured again, rate kept",
  PAIRED_AT_LAST: "its first Sync paired with its Follow_Up: a new timeline without the Follow_Ups that came alone",
};

function timelineNote(step: TrackingStep): FilterNote | null {
  const text = TIMELINE_NOTES[step.outcome];
  if (text === undefined) return null;
  return { key: `timeline-${step.outcome}`, level: "info", message: (clock) => `${clock}: ${text}` };
}

// ---- interfaces 5, 6 ----------------------------------------------------------------------------

interface TrackingMasterEstimate extends MasterEstimate {
  readonly tracking: TrackingState;
}

export function trackingMasterFilter(rules: TrackingRules = DEFAULT_TRACKING_RULES): MasterFilter<TrackingMasterEstimate> {
  return {
    name: "tracking",
    begin(samples) {
      // The new master's recent samples, oldest first: mastership starts at the oldest used.
      let tracking = TRACKING_IDLE;
      let estimate: TrackingStep["estimate"] = null;
      for (const sample of samples) {
        const step = trackOffset(tracking, sample, rules);
        tracking = step.state;
        if (step.estimate !== null) estimate = step.estimate;
      }
      const oldest = samples[0];
      if (estimate === null || oldest === undefined) return null;
      return { ...estimate, masterStartTimeNs: oldest.localTimeNs, tracking };
    },
    next(state, sample) {
      const step = trackOffset(state.tracking, sample, rules);
      const estimate: TrackingMasterEstimate =
        step.estimate === null
          ? { ...state, tracking: step.state }
          : { ...step.estimate, masterStartTimeNs: state.masterStartTimeNs, tracking: step.state };
      return { state: estimate, note: timelineNote(step) };
    },
  };
}

// ---- interfaces 8-10 ----------------------------------------------------------------------------

interface TrackingSequenceState extends SequenceFilterState {
  readonly tracking: TrackingState;
  /** The fitted offset at sequence.localTimeNs; null until the estimator gives one. */
  readonly offsetNs: bigint | null;
}

const TRACKING_SEQUENCE_IDLE: TrackingSequenceState = { sequence: null, restart: "none", tracking: TRACKING_IDLE, offsetNs: null };

export function trackingSequenceFilter(rules: TrackingRules = DEFAULT_TRACKING_RULES): SequenceFilter<TrackingSequenceState> {
  return {
    name: "tracking",
    idle: TRACKING_SEQUENCE_IDLE,
    sample(state, sample) {
      if (state.restart === "drop-next") {
        const dropped: TrackingSequenceState = { ...TRACKING_SEQUENCE_IDLE, restart: "start-next" };
        return {
          state: dropped,
          startedSequence: false,
          note: { key: "restart", level: "debug", message: (ip: string) => `filter restart: dropped a sample of ${ip}` },
        };
      }
      const previous = state.sequence;
      const grandmasterChanged =
        previous !== null &&
        previous.grandmasterIdentity !== null &&
        sample.grandmasterIdentity !== null &&
        sample.grandmasterIdentity !== previous.grandmasterIdentity;
      const starts = state.restart === "start-next" || previous === null || grandmasterChanged;
      const step = trackOffset(starts ? TRACKING_IDLE : state.tracking, sample, rules);
      const grandmasterIdentity = starts ? sample.grandmasterIdentity : (previous!.grandmasterIdentity ?? sample.grandmasterIdentity);
      const startNs = starts ? sample.localTimeNs : previous!.startNs;
      const estimate = step.estimate;
      const next: TrackingSequenceState = {
        sequence: { grandmasterIdentity, startNs, localTimeNs: estimate?.localTimeNs ?? (starts ? sample.localTimeNs : previous!.localTimeNs) },
        restart: "none",
        tracking: step.state,
        offsetNs: estimate?.offsetNs ?? (starts ? null : state.offsetNs),
      };
      let note = timelineNote(step);
      if (grandmasterChanged) {
        note = {
          key: "grandmaster",
          level: "info",
          message: (ip: string) => `grandmaster of ${ip} changed to ${formatClockId(sample.grandmasterIdentity!)}: new sequence`,
        };
      }
      return { state: next, startedSequence: starts, note };
    },
    offsetOf: (state) => state.offsetNs,
  };
}
