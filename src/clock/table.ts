// The clock table every interface version shares (spec sections 4 and 7): one record per
// sender address, admitted, evicted and garbage-collected here; PTP messages update the record
// of their sender (identity, Announce qualification, Sync/Follow_Up pairing into offset samples,
// waking a silent clock). What is published from the records is the policies' business
// (select.ts for 5, 6; clients.ts for 8-10).
//
// Events from non-peers never run the BMC; nothing scans the table per packet except eviction,
// which happens only when the table is full and an unknown address speaks.

import type { AnnounceMessage, FollowUpMessage, PtpMessage, SyncMessage } from "../ptp/types.ts";
import { formatClockId } from "../ptp/clock-identity.ts";
import { traitsOf } from "../rules/interface-version.ts";
import { announceDataOf, type AnnounceData } from "./announce.ts";
import type { Draft } from "./draft.ts";
import { qualifyAnnounce } from "./qualify.ts";
import { appendSample, leastRecentlyHeardNonPeer, newRecord, nextExpiry, sweepExpired, withClockIdentity, type ClockRecord } from "./records.ts";
import { syfuOnFollowUp, syfuOnSync, type OffsetSample } from "./syfu.ts";
import { wakeAnnounces, wakeOnAnnounce, wakeOnFirstAnnounce, wakeOnFollowUp } from "./wake.ts";

/** Deletes non-peers not heard for gcTimeoutNs; lazily, when the earliest expiry has come. */
export function collectGarbage(d: Draft): void {
  if (d.gcDueNs === null || d.nowNs < d.gcDueNs) return;
  sweep(d);
}

/** Deletes every expired non-peer now and works out when the next one expires. */
export function sweep(d: Draft): void {
  const { gcTimeoutNs } = d.config;
  const expired = sweepExpired(d.writableRecords(), d.nowNs, gcTimeoutNs);
  for (const record of expired) {
    // Only non-peers expire and a non-peer is never published: no policy is affected.
    const id = record.clockIdentity === null ? "" : ` (${formatClockId(record.clockIdentity)})`;
    d.limitedLog("record-expired", "debug", `clock record ${record.ip}${id} deleted: not heard for ${gcTimeoutNs / 1_000_000_000n} s`);
  }
  d.gcDueNs = nextExpiry(d.records, d.nowNs, gcTimeoutNs);
}

/**
 * The table is full and an unknown address spoke. The first time in an overflow episode says so
 * (a flood from a hostile LAN must not become a log flood); the rest are only counted.
 */
function noteOverflow(d: Draft, outcome: "evicted" | "dropped", message: string): void {
  const o = d.overflow;
  // Once per episode; the limiter also caps episodes that start and end in quick succession.
  if (!o.active) d.limitedLog("overflow", "warn", message);
  const evicted = (o.active ? o.evicted : 0) + (outcome === "evicted" ? 1 : 0);
  const dropped = (o.active ? o.dropped : 0) + (outcome === "dropped" ? 1 : 0);
  d.overflow = { active: true, evicted, dropped };
}

/** A record for an address not in the table, or null when the newcomer is dropped. */
function admit(d: Draft, ip: string): ClockRecord | null {
  const { maxRecords } = d.config;
  if (d.records.size >= maxRecords) {
    const victim = leastRecentlyHeardNonPeer(d.records);
    if (victim === null) {
      // Every record is a timing peer: they stay, the newcomer goes.
      noteOverflow(d, "dropped", `clock table full (${maxRecords}) of timing peers: dropped ${ip}`);
      return null;
    }
    d.writableRecords().delete(victim.ip);
    noteOverflow(d, "evicted", `clock table full (${maxRecords}): evicted ${victim.ip}`);
  } else if (d.overflow.active) {
    d.limitedLog(
      "overflow-end",
      "info",
      `clock table has room again: ${d.overflow.evicted} evicted, ${d.overflow.dropped} dropped while it was full`,
    );
    d.overflow = { ...d.overflow, active: false };
  }
  d.limitedLog("record-new", "debug", `new clock record ${ip}`);
  const expiresAt = d.nowNs + d.config.gcTimeoutNs;
  if (d.gcDueNs === null || expiresAt < d.gcDueNs) d.gcDueNs = expiresAt;
  return newRecord(ip, false, d.nowNs);
}

/**
 * Makes `peers` (at most maxRecords, no duplicates) the timing peers: their records are kept
 * whatever their silence, and a peer never heard gets an inert record. Records that stopped
 * being peers expire as non-peers do.
 */
export function setTimingPeers(d: Draft, peers: readonly string[]): void {
  const peerSet = new Set(peers);
  const records = d.writableRecords();
  for (const record of [...records.values()]) {
    const isTimingPeer = peerSet.has(record.ip);
    if (record.isTimingPeer !== isTimingPeer) records.set(record.ip, { ...record, isTimingPeer });
  }
  for (const ip of peers) {
    if (records.has(ip)) continue;
    if (records.size >= d.config.maxRecords) {
      // There are at most maxRecords peers, so a full table holds a non-peer to evict.
      const victim = leastRecentlyHeardNonPeer(records);
      if (victim === null) continue;
      records.delete(victim.ip);
      d.limitedLog("record-evicted-for-peer", "debug", `clock record ${victim.ip} evicted for timing peer ${ip}`);
    }
    // An inert record: a timing peer we have not heard yet.
    records.set(ip, newRecord(ip, true, null));
  }
  d.peers = peers;
  // Records that just stopped being peers may be past their time (or never heard at all).
  sweep(d);
}

/** Forgets every record except those at the addresses in `keep` (interfaces 8-10: "T"). */
export function forgetRecordsExcept(d: Draft, keep: ReadonlySet<string>): void {
  const records = d.writableRecords();
  for (const ip of [...records.keys()]) {
    if (!keep.has(ip)) records.delete(ip);
  }
  d.gcDueNs = nextExpiry(d.records, d.nowNs, d.config.gcTimeoutNs);
}

/** Replaces the record at `ip` with a fresh inert one (a clock followed from scratch). */
export function restartRecord(d: Draft, ip: string, isTimingPeer: boolean): void {
  d.putRecord(newRecord(ip, isTimingPeer, null));
}

/** What a PTP message did to its sender's record, for the publishing policy. */
export interface RecordUpdate {
  record: ClockRecord;
  /** Offset samples this message completed (a paired Sync/Follow_Up, or a Follow_Up alone). */
  samples: OffsetSample[];
  /** The message was an Announce (the record's announce is its data). */
  announced: boolean;
  /**
   * Something the BMC compares may have changed for a timing peer: its Announce, its identity,
   * or it became valid.
   */
  candidateChanged: boolean;
}

/** A PTP message from `source`; null when it changes nothing (our own, or the table is full). */
export function onPtpMessage(d: Draft, source: string, message: PtpMessage, receivedAtNs: bigint): RecordUpdate | null {
  // Our own messages looped back (IEEE 1588-2008 9.3.2.5: never qualified; nothing else either).
  if (message.header.clockIdentity === d.config.ourClockIdentity) return null;
  const known = d.records.get(source) ?? admit(d, source);
  if (known === null) return null;
  const heard: ClockRecord = { ...known, lastHeardNs: d.nowNs };
  let handled: Handled;
  switch (message.kind) {
    case "announce":
      handled = onAnnounce(d, adoptIdentity(d, heard, message), message);
      break;
    case "sync":
      handled = onSync(d, adoptIdentity(d, heard, message), message, receivedAtNs);
      break;
    case "follow-up":
      handled = onFollowUp(d, adoptIdentity(d, heard, message), message, receivedAtNs);
      break;
    default:
      // Delay_Resp, Signaling, Management: heard, nothing else (they may carry another clock's identity).
      handled = { record: heard, samples: [], candidateChanged: false };
      break;
  }
  const record = withSamples(handled, d.config.sampleRingSize);
  d.putRecord(record);
  return {
    record,
    samples: handled.samples,
    announced: message.kind === "announce",
    candidateChanged: (handled.candidateChanged || (!handled.record.valid && record.valid)) && record.isTimingPeer,
  };
}

/** What one message's handler made of the record. */
interface Handled {
  record: ClockRecord;
  /** Offset samples the message completed, oldest first. */
  samples: OffsetSample[];
  /** Something the BMC compares may have changed (its Announce, its identity). */
  candidateChanged: boolean;
}

/**
 * The identity in the header of a message that describes its sender (Announce, Sync,
 * Follow_Up). A different one restarts the record (records.ts) and is evidence of a new timeline.
 */
function adoptIdentity(d: Draft, record: ClockRecord, message: AnnounceMessage | SyncMessage | FollowUpMessage): Identified {
  const before = record.clockIdentity;
  const identity = message.header.clockIdentity;
  const adopted = withClockIdentity(record, identity);
  if (before === null || before === identity) return { record: adopted, identityChanged: false };
  d.limitedLog(
    "identity-changed",
    "info",
    `clock at ${record.ip} changed identity ${formatClockId(before)} → ${formatClockId(identity)}: record restarted`,
  );
  return { record: { ...adopted, timelineEpoch: record.timelineEpoch + 1 }, identityChanged: true };
}

interface Identified {
  record: ClockRecord;
  identityChanged: boolean;
}

/** IEEE 1588-2008 9.3.2.5 (qualification), waking a silent clock (spec section 7), the timeline evidence. */
function onAnnounce(d: Draft, { record }: Identified, message: AnnounceMessage): Handled {
  const announce = announceDataOf(message);
  const qualification = qualifyAnnounce(
    record.qualification,
    { sequenceId: message.header.sequenceId, stepsRemoved: message.stepsRemoved },
    d.nowNs,
    d.config.qualification,
  );
  // Interfaces that follow one clock also wake it (the only timing peer) at its first Announce.
  const first = traitsOf(d.config.interfaceVersion).followsOneClock && wakeOnFirstAnnounce(record.wake, record.isTimingPeer);
  const wake = wakeOnAnnounce(record.wake, record.isTimingPeer, d.nowNs, d.config.wake);
  if (first) sendWake(d, record.ip, announce, "its first Announce");
  else if (wake.wake) sendWake(d, record.ip, announce);
  const newTimeline = record.announce !== null && describesAnotherTimeline(record.announce, announce);
  const timelineEpoch = newTimeline ? record.timelineEpoch + 1 : record.timelineEpoch;
  return { record: { ...record, announce, qualification, wake: wake.state, timelineEpoch }, samples: [], candidateChanged: true };
}

/**
 * An Announce that says the sender's time may now come from elsewhere: another grandmaster,
 * another path to it (stepsRemoved), another priority, or another UTC offset. Offset filters
 * may then follow a step of the clock's time at once (offset/tracking.ts).
 */
export function describesAnotherTimeline(before: AnnounceData, after: AnnounceData): boolean {
  return (
    before.grandmasterIdentity !== after.grandmasterIdentity ||
    before.stepsRemoved !== after.stepsRemoved ||
    before.grandmasterPriority1 !== after.grandmasterPriority1 ||
    before.grandmasterPriority2 !== after.grandmasterPriority2 ||
    before.currentUtcOffset !== after.currentUtcOffset
  );
}

/** A Sync (IEEE 1588-2008 9.5.9): pairing; a sequence that went back is a sender that restarted. */
function onSync(d: Draft, { record, identityChanged }: Identified, message: SyncMessage, receivedAtNs: bigint): Handled {
  const step = syfuOnSync(record.syfu, message, receivedAtNs, d.config.syfu);
  const sequenceId = message.header.sequenceId;
  const restarted = record.lastSyncSequenceId !== null && syncSequenceRestarted(record.lastSyncSequenceId, sequenceId);
  const timelineEpoch = restarted ? record.timelineEpoch + 1 : record.timelineEpoch;
  if (restarted)
    d.limitedLog("sync-restarted", "debug", `clock at ${record.ip}: Sync sequence went back from ${record.lastSyncSequenceId} to ${sequenceId}`);
  return {
    record: { ...record, syfu: step.state, lastSyncSequenceId: sequenceId, timelineEpoch },
    samples: step.samples,
    candidateChanged: identityChanged,
  };
}

/** sequenceIds only move on (IEEE 1588-2008 7.3.7); going back by more than this is a restart, not reordering. */
const SEQUENCE_REORDER_SLACK = 16;

/** Whether `next` after `last` (u16 sequenceIds, wrapping) went back by more than a reordering would. */
export function syncSequenceRestarted(last: number, next: number): boolean {
  const back = (last - next + 0x10000) & 0xffff;
  return back > SEQUENCE_REORDER_SLACK && back < 0x8000;
}

/** A Follow_Up (IEEE 1588-2008 9.5.10): pairing; it also shows the clock is not silent. */
function onFollowUp(d: Draft, { record, identityChanged }: Identified, message: FollowUpMessage, receivedAtNs: bigint): Handled {
  const step = syfuOnFollowUp(record.syfu, message, receivedAtNs, d.config.syfu);
  return { record: { ...record, syfu: step.state, wake: wakeOnFollowUp(record.wake) }, samples: step.samples, candidateChanged: identityChanged };
}

/** The record with the handler's samples in its ring; valid once it has one. */
function withSamples(handled: Handled, ringSize: number): ClockRecord {
  if (handled.samples.length === 0) return handled.record;
  let ring = handled.record.samples;
  for (const sample of handled.samples) ring = appendSample(ring, sample, ringSize);
  return { ...handled.record, samples: ring, valid: true };
}

/** Sends the two waking Announces; `reason` for the wakes of versions 8–10 (else: silent). */
export function sendWake(d: Draft, to: string, target: AnnounceData, reason?: string): void {
  const [better, worse] = wakeAnnounces(target, d.config.ourClockIdentity, d.announceSequenceId);
  d.announceSequenceId = (d.announceSequenceId + 2) & 0xffff;
  const id = formatClockId(target.senderClockIdentity);
  d.limitedLog("wake", "info", reason === undefined ? `waking silent clock ${id} at ${to}` : `waking clock ${id} at ${to}: ${reason}`);
  d.effects.push({ kind: "send-announce", to, delayMs: 0, announce: better });
  d.effects.push({ kind: "send-announce", to, delayMs: d.config.wake.secondAnnounceDelayMs, announce: worse });
}
