// A read-only view of the tracker's state for `nqptp status --clocks` and systemd's STATUS line:
// every record, and for interfaces 8-10 every client. Plain data (bigints included); the
// control port's status exchange (control/status.ts) serialises it.

import type { PublishedMaster } from "./effects.ts";
import type { FollowState } from "./client-follow.ts";
import { publishedRecord } from "./select.ts";
import type { ClientState, OverflowState, TrackerState } from "./state.ts";

export interface RecordSnapshot {
  ip: string;
  clockId: bigint | null;
  isTimingPeer: boolean;
  qualified: boolean;
  valid: boolean;
  /** Published to some region (5, 6: the selected master; 8-10: some client's published clock). */
  isMaster: boolean;
  /** 8-10: the clients that follow this clock, by name; [] for 5, 6. */
  followedBy: string[];
  /** null for a timing peer never heard. */
  lastHeardAgoNs: bigint | null;
  /** Offset of the newest sample (u64), null without samples. */
  latestOffsetNs: bigint | null;
  sampleCount: number;
  grandmasterIdentity: bigint | null;
  grandmasterPriority1: number | null;
}

export interface FollowSnapshot {
  /** The followed clock's address, null when not following. */
  ip: string | null;
  active: boolean;
  /** Validity left (0 when lapsed); null when never set or cleared. */
  validForNs: bigint | null;
  /** Local time the current sequence (mastership) began; null without one. */
  sequenceStartNs: bigint | null;
  /** The sequence's grandmaster (the published clock id); null when not known yet. */
  grandmasterIdentity: bigint | null;
  /** A filter restart is under way (a sample to drop, or the one to start from). */
  restartPending: boolean;
}

export interface ClientSnapshot {
  /** Its shm name. */
  name: string;
  follow: FollowSnapshot;
  /** What its region holds (null: zeros). */
  published: PublishedMaster | null;
}

export interface TrackerSnapshot {
  records: RecordSnapshot[];
  peers: readonly string[];
  /** What the main (--shm-name) region holds. */
  master: PublishedMaster | null;
  overflow: OverflowState;
  /** 8-10: the main client's follow state (null for 5, 6). */
  follow: FollowSnapshot | null;
  /** 8-10: every client, the main one first, then by name; [] for 5, 6. */
  clients: ClientSnapshot[];
}

function followSnapshot(follow: FollowState, nowNs: bigint): FollowSnapshot {
  const v = follow.validUntilNs;
  const sequence = follow.filter.sequence;
  return {
    ip: follow.ip,
    active: follow.active,
    validForNs: v === null ? null : v > nowNs ? v - nowNs : 0n,
    sequenceStartNs: sequence?.startNs ?? null,
    grandmasterIdentity: sequence?.grandmasterIdentity ?? null,
    restartPending: follow.filter.restart !== "none",
  };
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A read-only view of the state for a status display; records sorted by IP text. */
export function snapshot(state: TrackerState, nowNs: bigint): TrackerSnapshot {
  const main = state.config.mainClient;
  const clients: ClientState[] = state.clients === null ? [] : [...state.clients.values()];
  clients.sort((a, b) => (a.name === main ? -1 : b.name === main ? 1 : byText(a.name, b.name)));
  const records: RecordSnapshot[] = [];
  for (const r of state.records.values()) {
    const newest = r.samples[r.samples.length - 1];
    records.push({
      ip: r.ip,
      clockId: r.clockIdentity,
      isTimingPeer: r.isTimingPeer,
      qualified: r.qualification.qualified,
      valid: r.valid,
      isMaster:
        state.selection !== null
          ? state.selection.master !== null && state.selection.master.ip === r.ip
          : clients.some((c) => c.published !== null && c.published.ip === r.ip),
      followedBy: clients.filter((c) => c.follow.ip === r.ip).map((c) => c.name),
      lastHeardAgoNs: r.lastHeardNs === null ? null : nowNs - r.lastHeardNs,
      latestOffsetNs: newest === undefined ? null : newest.offsetNs,
      sampleCount: r.samples.length,
      grandmasterIdentity: r.announce?.grandmasterIdentity ?? null,
      grandmasterPriority1: r.announce?.grandmasterPriority1 ?? null,
    });
  }
  records.sort((a, b) => byText(a.ip, b.ip));
  const mainClient = state.clients?.get(main) ?? null;
  return {
    records,
    peers: state.peers,
    master: state.selection !== null ? publishedRecord(state.selection.master) : (mainClient?.published ?? null),
    overflow: state.overflow,
    follow: mainClient === null ? null : followSnapshot(mainClient.follow, nowNs),
    clients: clients.map((c) => ({ name: c.name, follow: followSnapshot(c.follow, nowNs), published: c.published })),
  };
}
