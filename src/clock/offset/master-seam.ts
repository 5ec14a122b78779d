// The seam between master selection (select.ts, interfaces 5 and 6) and the offset filter that
// estimates the selected master's offset. A filter starts from the new master's recent samples
// (its ring, oldest first) and then takes each new sample; its state always exposes what the
// region publishes. One filter per --offset-filter name, built once in the tracker's config.

import type { LogLevel } from "../effects.ts";
import type { OffsetFilterName } from "./names.ts";
import { DEFAULT_OFFSET_V5_RULES, acceptSample, lookBack, type OffsetV5Rules, type V5Estimate } from "./classic-master.ts";
import type { OffsetSample } from "../syfu.ts";
import { subU64, toI64 } from "../../time/ns.ts";

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

export interface MasterFilter {
  readonly name: OffsetFilterName;
  /** A clock has just become master: its first estimate from its samples, oldest first. */
  begin(samples: readonly OffsetSample[]): MasterEstimate | null;
  /** The master's next sample. */
  next(estimate: MasterEstimate, sample: OffsetSample): { estimate: MasterEstimate; note: FilterNote | null };
}

/** The seed's rules (spec section 5): look back over the ring, then accept a rise or hold a fall. */
export function classicMasterFilter(rules: OffsetV5Rules = DEFAULT_OFFSET_V5_RULES): MasterFilter {
  return {
    name: "classic",
    begin: (samples) => lookBack(samples, rules),
    next(estimate, sample) {
      const previous = estimate as V5Estimate;
      const step = acceptSample(previous, sample, rules);
      if (step.outcome !== "DELAYED") return { estimate: step.estimate, note: null };
      const below = -toI64(subU64(sample.offsetNs, previous.offsetNs));
      return {
        estimate: step.estimate,
        note: {
          key: "delayed",
          level: "debug",
          message: (master) => `master ${master}: sample ${below} ns below the estimate, taken as network delay`,
        },
      };
    },
  };
}
