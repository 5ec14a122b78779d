// Offset smoothing of interface versions 8, 9 and 10 (spec section 6): the publishing policy of
// "follow one clock". Which clock is followed is decided elsewhere (client-follow.ts, from the control
// port); this module turns that clock's offset samples into the published offset.
//
// Samples come in *sequences*. The first sample, a sample from a new grandmaster, or the sample
// after a requested restart starts one: the smoothed offset is that sample's offset and the
// sequence ("mastership") starts at its local time. After that, with
//   jitter = offset − previous smoothed offset   (signed: toI64 of the u64 difference)
// a rise (jitter ≥ 0) is taken whole during the first second of the sequence and 1/16 of it
// after; a fall (jitter < 0) is ignored during the first second and, after it, moves the offset
// by 1/256 of the fall, a fall being counted as at most 2.5 ms. Network delay only ever makes an
// offset smaller than the truth: rises are believed more than falls.
//
// A restart (play began after the clock had lapsed) drops the next sample and starts a sequence
// with the one after: the first sample after a long pause is not trusted.
//
// All arithmetic is 64-bit integer arithmetic in bigint; offsets are u64 (a negative offset
// wraps), and division truncates toward zero as C's does (BigInt `/` does). Never a float.

import { formatClockId } from "../../ptp/clock-identity.ts";
import { NS_PER_MS, NS_PER_SECOND, subU64, toI64, toU64 } from "../../time/ns.ts";
import type { FilterNote } from "./master-seam.ts";
import type { RestartPhase, SequenceFilter } from "./sequence-seam.ts";

export interface SmoothingRules {
  /** A sequence younger than or exactly this old is in its first period ("first second"). */
  firstPeriodNs: bigint;
  /** Divisor of a rise after the first period. */
  riseDivisor: bigint;
  /** Divisor of a fall after the first period. */
  fallDivisor: bigint;
  /** A fall larger than this counts as this much (a positive number of ns). */
  maxFallNs: bigint;
}

export const DEFAULT_SMOOTHING_RULES: SmoothingRules = {
  firstPeriodNs: NS_PER_SECOND,
  riseDivisor: 16n,
  fallDivisor: 256n,
  maxFallNs: (5n * NS_PER_MS) / 2n, // 2.5 ms
};

export interface SmoothingSequence {
  /** grandmasterIdentity the sequence's samples were measured against; null until known. */
  readonly grandmasterIdentity: bigint | null;
  /** Local time at which the sequence (mastership) started: its first sample's local time. */
  readonly startNs: bigint;
  /** Local time of the newest sample. */
  readonly localTimeNs: bigint;
  /** The smoothed offset, master time − local time, u64. */
  readonly smoothedNs: bigint;
}

export interface SmoothingState {
  /** null before the first sample, and during a restart until the sample that starts one. */
  readonly sequence: SmoothingSequence | null;
  readonly restart: RestartPhase;
}

export const SMOOTHING_IDLE: SmoothingState = { sequence: null, restart: "none" };

export interface SmoothingSample {
  readonly localTimeNs: bigint;
  /** master time − local time, u64. */
  readonly offsetNs: bigint;
  /** grandmasterIdentity of the clock's latest Announce when the sample arrived; null if none yet. */
  readonly grandmasterIdentity: bigint | null;
}

export type SmoothingOutcome =
  /** The first sample: a sequence starts. */
  | "STARTED"
  /** The grandmaster changed: a new sequence starts with this sample. */
  | "GRANDMASTER_CHANGED"
  /** A restart was requested: this sample is dropped, the sequence is gone. */
  | "DROPPED_FOR_RESTART"
  /** The sample after a dropped one: a new sequence starts. */
  | "RESTARTED"
  /** First period, jitter ≥ 0: the offset is taken as is. */
  | "ROSE_TAKEN"
  /** After the first period, jitter ≥ 0: previous + jitter/16. */
  | "ROSE_SMOOTHED"
  /** First period, jitter < 0: the previous offset is kept. */
  | "FALL_IGNORED"
  /** After the first period, 0 > jitter ≥ −2.5 ms: previous + jitter/256. */
  | "FALL_SMOOTHED"
  /** After the first period, jitter < −2.5 ms: previous − 2.5 ms/256. */
  | "FALL_CLAMPED";

/** The outcomes that begin a new sequence (a new mastership start time). */
export function startsSequence(outcome: SmoothingOutcome): boolean {
  return outcome === "STARTED" || outcome === "GRANDMASTER_CHANGED" || outcome === "RESTARTED";
}

/** The followed clock's next sample, in order of arrival. */
export function smoothOffset(
  state: SmoothingState,
  sample: SmoothingSample,
  rules: SmoothingRules = DEFAULT_SMOOTHING_RULES,
): { state: SmoothingState; outcome: SmoothingOutcome } {
  const start = (outcome: SmoothingOutcome) => ({
    state: {
      sequence: {
        grandmasterIdentity: sample.grandmasterIdentity,
        startNs: sample.localTimeNs,
        localTimeNs: sample.localTimeNs,
        smoothedNs: toU64(sample.offsetNs),
      },
      restart: "none" as RestartPhase,
    },
    outcome,
  });
  if (state.restart === "drop-next") return { state: { sequence: null, restart: "start-next" }, outcome: "DROPPED_FOR_RESTART" };
  if (state.restart === "start-next") return start("RESTARTED");
  const previous = state.sequence;
  if (previous === null) return start("STARTED");
  // An unknown grandmaster (no Announce yet) is never a change; a known one is adopted.
  if (previous.grandmasterIdentity !== null && sample.grandmasterIdentity !== null && sample.grandmasterIdentity !== previous.grandmasterIdentity) {
    return start("GRANDMASTER_CHANGED");
  }
  const grandmasterIdentity = previous.grandmasterIdentity ?? sample.grandmasterIdentity;
  const jitter = toI64(subU64(sample.offsetNs, previous.smoothedNs));
  // A local clock that ran backwards gives a negative age: still the first period.
  const firstPeriod = sample.localTimeNs - previous.startNs <= rules.firstPeriodNs;
  let smoothedNs: bigint;
  let outcome: SmoothingOutcome;
  if (jitter >= 0n) {
    if (firstPeriod) {
      smoothedNs = toU64(sample.offsetNs);
      outcome = "ROSE_TAKEN";
    } else {
      smoothedNs = toU64(previous.smoothedNs + jitter / rules.riseDivisor);
      outcome = "ROSE_SMOOTHED";
    }
  } else if (firstPeriod) {
    smoothedNs = previous.smoothedNs;
    outcome = "FALL_IGNORED";
  } else {
    const clamped = jitter < -rules.maxFallNs;
    const fall = clamped ? -rules.maxFallNs : jitter;
    // BigInt division truncates toward zero: −1000/256 is −3, as in C.
    smoothedNs = toU64(previous.smoothedNs + fall / rules.fallDivisor);
    outcome = clamped ? "FALL_CLAMPED" : "FALL_SMOOTHED";
  }
  return {
    state: {
      sequence: { grandmasterIdentity, startNs: previous.startNs, localTimeNs: sample.localTimeNs, smoothedNs },
      restart: "none",
    },
    outcome,
  };
}

/** The note worth logging about a sample, if any. */
function smoothingNote(
  step: { outcome: SmoothingOutcome },
  previous: SmoothingState,
  sample: SmoothingSample,
  rules: SmoothingRules,
): FilterNote | null {
  switch (step.outcome) {
    case "GRANDMASTER_CHANGED":
      return {
        key: "grandmaster",
        level: "info",
        message: (ip) => `grandmaster of ${ip} changed to ${formatClockId(sample.grandmasterIdentity!)}: new smoothing sequence`,
      };
    case "DROPPED_FOR_RESTART":
      return { key: "restart", level: "debug", message: (ip) => `smoothing restart: dropped a sample of ${ip}` };
    case "FALL_CLAMPED": {
      const below = -toI64(subU64(sample.offsetNs, previous.sequence!.smoothedNs));
      return {
        key: "fall-clamped",
        level: "debug",
        message: (ip) => `${ip}: sample ${below} ns below the smoothed offset, counted as ${rules.maxFallNs} ns`,
      };
    }
    default:
      return null;
  }
}

/** The original's smoothing (spec section 6), bit for bit, behind the sequence seam. */
export function classicSequenceFilter(rules: SmoothingRules = DEFAULT_SMOOTHING_RULES): SequenceFilter<SmoothingState> {
  return {
    name: "classic",
    idle: SMOOTHING_IDLE,
    sample(previous, sample) {
      const step = smoothOffset(previous, sample, rules);
      return { state: step.state, startedSequence: startsSequence(step.outcome), note: smoothingNote(step, previous, sample, rules) };
    },
    offsetOf: (state) => state.sequence?.smoothedNs ?? null,
  };
}
