// The shape of the clock tracker's state and configuration (tracker.ts reduces over it).
//
//   shared by every interface version (table.ts): the records, one per sender address, with
//     their qualification, pairing and samples; garbage collection; overflow; our Announce
//     sequence; the log limits.
//   the publishing policy, chosen by interface version (src/rules/interface-version.ts):
//     - selection (select.ts, 5 and 6): the BMC picks the master among the timing peers, and a
//       master filter (offset/master-seam.ts) estimates its offset; one client, the --shm-name region;
//     - following (clients.ts, 8-10): each client (one shm region, named in its control
//       messages) follows the one clock it names, with its own play state, validity window and
//       sequence filter (offset/sequence-seam.ts). Clients share the records and their samples.

import type { OffsetFilterName } from "./offset/names.ts";
import type { FollowRules, FollowState } from "./client-follow.ts";
import type { LogLimitRules, LogLimits } from "./log-limit.ts";
import type { MasterTrack, MasterTracker } from "./offset/master-seam.ts";
import type { SequenceTrack } from "./offset/sequence-seam.ts";
import type { TrackingRules } from "./offset/tracking.ts";
import type { OffsetV5Rules } from "./offset/classic-master.ts";
import type { PublishedMaster, TrackerEffect } from "./effects.ts";
import type { QualificationRules } from "./qualify.ts";
import type { ClockRecord } from "./records.ts";
import type { SyfuRules } from "./syfu.ts";
import type { WakeRules } from "./wake.ts";
import type { InterfaceVersion } from "../rules/interface-version.ts";

export interface TrackerConfig {
  interfaceVersion: InterfaceVersion;
  /** Our EUI-64 clock identity, used in waking Announces. */
  ourClockIdentity: bigint;
  /** The --shm-name region: the only client of 5, 6; the client that exists from start in 8-10. */
  mainClient: string;
  /** 8-10: at most this many clients, the main one included. */
  maxClients: number;
  /** How offsets are estimated: "classic" (the original's rules) or "tracking" (offset + rate). */
  offsetFilter: OffsetFilterName;
  /** Built from offsetFilter (and the rules below) by createTracker: 5, 6. */
  masterTracker: MasterTracker;
  /** Built from offsetFilter (and the rules below) by createTracker: 8-10; what every client starts from. */
  idleSequenceTrack: SequenceTrack;
  maxRecords: number;
  /** A non-peer record not heard for this long is deleted. */
  gcTimeoutNs: bigint;
  sampleRingSize: number;
  qualification: QualificationRules;
  syfu: SyfuRules;
  /** The classic filter of 5, 6 (offset/classic-master.ts). */
  offset: OffsetV5Rules;
  wake: WakeRules;
  logLimit: LogLimitRules;
  /** Versions 8–10: validity windows, classic smoothing, the origin-stall wake. */
  follow: FollowRules;
  /** The tracking filter (offset/tracking.ts), every version. */
  tracking: TrackingRules;
}

export interface OverflowState {
  /** The table has been full since the last admission that found room. */
  readonly active: boolean;
  /** Records evicted and newcomers dropped during the current (or last) episode. */
  readonly evicted: number;
  readonly dropped: number;
}

/** Interfaces 5, 6: the master the BMC chose (what its region holds is select.ts's publishedRecord). */
export interface SelectionState {
  readonly master: MasterState | null;
}

export interface MasterState {
  readonly ip: string;
  readonly clockId: bigint;
  /** The master filter with its state; null until the master has a sample. */
  readonly track: MasterTrack | null;
}

/** Interfaces 8-10: one client, i.e. one Shairport Sync and its region. */
export interface ClientState {
  /** Its shm name, "/nqptp": the first word of its control messages. */
  readonly name: string;
  readonly follow: FollowState;
  /** The last record published to its region (null: zeros). */
  readonly published: PublishedMaster | null;
}

export interface TrackerState {
  readonly config: TrackerConfig;
  readonly records: ReadonlyMap<string, ClockRecord>;
  /**
   * The timing peers: 5, 6 the control port's list; 8-10 the clocks some client follows. Only
   * their records are kept whatever their silence, and only they are ever woken.
   */
  readonly peers: readonly string[];
  /** No record expires before this time; null when there is no non-peer. */
  readonly gcDueNs: bigint | null;
  readonly overflow: OverflowState;
  /** sequenceId of our next Announce. */
  readonly announceSequenceId: number;
  readonly logLimits: LogLimits;
  /** Interfaces 5, 6; null for 8-10. */
  readonly selection: SelectionState | null;
  /** Interfaces 8-10, by name; null for 5, 6. */
  readonly clients: ReadonlyMap<string, ClientState> | null;
  /** 8-10: the deadline the shell's tick timer is set for; null when no timer is outstanding. */
  readonly tickDueNs: bigint | null;
}

export interface TrackerStep {
  state: TrackerState;
  effects: TrackerEffect[];
}
