// The clock record table (spec section 4): one record per sender IP, at most maxRecords.
//
// Records are immutable values; the table is a Map from normalised IP text (the shell
// normalises: IPv4 dotted, IPv6 lower-case compressed; here they are plain strings) to records.
// The functions that change a table take a Map the caller owns (the reducer's copy of this
// event) and never touch one it does not.

import { NS_PER_SECOND } from "../time/ns.ts";
import type { AnnounceData } from "./announce.ts";
import { UNQUALIFIED, type Qualification } from "./qualify.ts";
import { SYFU_IDLE, type OffsetSample, type SyfuState } from "./syfu.ts";
import { WAKE_IDLE, type WakeState } from "./wake.ts";

export const DEFAULT_MAX_RECORDS = 32;
/** Sync receipt timeout of the original: 960 intervals of 1/8 s. */
export const DEFAULT_GC_TIMEOUT_NS = 120n * NS_PER_SECOND;
/** About 10 s of samples at the seed's rate. */
export const DEFAULT_SAMPLE_RING_SIZE = 47;

export interface ClockRecord {
  /** Normalised IP text: the key. */
  readonly ip: string;
  /** clockIdentity from the headers of its Announce, Sync and Follow_Up; null until one came. */
  readonly clockIdentity: bigint | null;
  /** Local time of the last datagram from this address; null for a timing peer never heard. */
  readonly lastHeardNs: bigint | null;
  readonly isTimingPeer: boolean;
  readonly qualification: Qualification;
  readonly announce: AnnounceData | null;
  /** A Follow_Up has given a sample. */
  readonly valid: boolean;
  readonly syfu: SyfuState;
  /** Offset samples, oldest first, at most sampleRingSize. Replaced (never changed) on append. */
  readonly samples: readonly OffsetSample[];
  readonly wake: WakeState;
  /**
   * Evidence from outside one-way timing that the clock's timeline may have changed: it counts
   * up at a new clock identity, an Announce that changes what describes the timeline, and a
   * restarted Sync sequence (table.ts). Offset filters compare it with the last they saw.
   */
  readonly timelineEpoch: number;
  /** sequenceId of the last Sync heard; null before the first. */
  readonly lastSyncSequenceId: number | null;
}

export function newRecord(ip: string, isTimingPeer: boolean, lastHeardNs: bigint | null): ClockRecord {
  return {
    ip,
    clockIdentity: null,
    lastHeardNs,
    isTimingPeer,
    qualification: UNQUALIFIED,
    announce: null,
    valid: false,
    syfu: SYFU_IDLE,
    samples: [],
    wake: WAKE_IDLE,
    timelineEpoch: 0,
    lastSyncSequenceId: null,
  };
}

/**
 * The record with clockIdentity set. A different clock at the same address (another device got
 * the address, or the sender restarted with a new identity) starts from nothing: none of the old
 * clock's announces, samples or pairing state describe the new one. Except the wake-up state:
 * it belongs to the address we send to, and resetting it would let a spoofer that changes
 * identity with every Announce make us answer each one (a reflector aimed at the real device).
 */
export function withClockIdentity(record: ClockRecord, clockIdentity: bigint): ClockRecord {
  if (record.clockIdentity === clockIdentity) return record;
  if (record.clockIdentity === null) return { ...record, clockIdentity };
  return { ...newRecord(record.ip, record.isTimingPeer, record.lastHeardNs), clockIdentity, wake: record.wake };
}

/** The ring with `sample` appended, dropping the oldest beyond `capacity`. A new array. */
export function appendSample(samples: readonly OffsetSample[], sample: OffsetSample, capacity: number): readonly OffsetSample[] {
  const drop = samples.length >= capacity ? samples.length - capacity + 1 : 0;
  const next = new Array<OffsetSample>(samples.length - drop + 1);
  for (let i = drop; i < samples.length; i++) next[i - drop] = samples[i]!;
  next[next.length - 1] = sample;
  return next;
}

/** A candidate for master (spec section 5): a timing peer, qualified and valid. */
export function isCandidate(record: ClockRecord): boolean {
  return record.isTimingPeer && record.valid && record.qualification.qualified && record.announce !== null;
}

/** A record that is not a timing peer and has not been heard for timeoutNs is deleted. */
export function isExpired(record: ClockRecord, nowNs: bigint, timeoutNs: bigint): boolean {
  if (record.isTimingPeer) return false;
  if (record.lastHeardNs === null) return true;
  return nowNs - record.lastHeardNs >= timeoutNs;
}

/** Deletes the expired records from `records` (owned by the caller); returns them. */
export function sweepExpired(records: Map<string, ClockRecord>, nowNs: bigint, timeoutNs: bigint): ClockRecord[] {
  const expired: ClockRecord[] = [];
  for (const record of records.values()) {
    if (isExpired(record, nowNs, timeoutNs)) expired.push(record);
  }
  for (const record of expired) records.delete(record.ip);
  return expired;
}

/**
 * A time at or before which no record can expire, or null if none can (no non-peer). Records
 * only become younger by being heard, so this stays a lower bound until a timing peer stops
 * being one; recompute then.
 */
export function nextExpiry(records: ReadonlyMap<string, ClockRecord>, nowNs: bigint, timeoutNs: bigint): bigint | null {
  let due: bigint | null = null;
  for (const record of records.values()) {
    if (record.isTimingPeer) continue;
    const at = record.lastHeardNs === null ? nowNs : record.lastHeardNs + timeoutNs;
    if (due === null || at < due) due = at;
  }
  return due;
}

/** The non-peer heard least recently (never heard counts as longest ago), or null if none. */
export function leastRecentlyHeardNonPeer(records: ReadonlyMap<string, ClockRecord>): ClockRecord | null {
  let oldest: ClockRecord | null = null;
  for (const record of records.values()) {
    if (record.isTimingPeer) continue;
    if (record.lastHeardNs === null) return record;
    if (oldest === null || record.lastHeardNs < oldest.lastHeardNs!) oldest = record;
  }
  return oldest;
}
