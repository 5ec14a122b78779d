// The clock table every interface version shares (spec sections 4 and 7): one record per
// sender address, admitted, evicted and garbage-collected here; PTP messages update the record
// of their sender (identity, Announce qualification, Sync/Follow_Up pairing into offset samples,
// waking a silent clock). What is published from the records is the policies' business
// (select.ts for 5, 6; clients.ts for 8-10).
//
// Events from non-peers never run the BMC; nothing scans the table per packet except eviction,
// which happens only when the table is full and an unknown address speaks.

import type { PtpMessage } from "../ptp/types.ts";
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
  const header = message.header;
  // Our own messages looped back (IEEE 1588-2008 9.3.2.5: never qualified; nothing else either).
  if (header.clockIdentity === d.config.ourClockIdentity) return null;
  let record = d.records.get(source) ?? admit(d, source);
  if (record === null) return null;
  record = { ...record, lastHeardNs: d.nowNs };
  let candidateChanged = false;
  // The clock's identity comes from the messages that describe it; a Delay_Resp, Signaling or
  // Management message may carry someone else's.
  if (message.kind === "announce" || message.kind === "sync" || message.kind === "follow-up") {
    const before = record.clockIdentity;
    record = withClockIdentity(record, header.clockIdentity);
    if (before !== null && before !== header.clockIdentity) {
      d.limitedLog(
        "identity-changed",
        "info",
        `clock at ${source} changed identity ${formatClockId(before)} → ${formatClockId(header.clockIdentity)}: record restarted`,
      );
      candidateChanged = true;
    }
  }
  let samples: OffsetSample[] = [];
  switch (message.kind) {
    case "announce": {
      const announce = announceDataOf(message);
      const qualification = qualifyAnnounce(
        record.qualification,
        { sequenceId: header.sequenceId, stepsRemoved: message.stepsRemoved },
        d.nowNs,
        d.config.qualification,
      );
      // Interfaces that follow one clock also wake it (the only timing peer) at its first Announce.
      const first = traitsOf(d.config.interfaceVersion).followsOneClock && wakeOnFirstAnnounce(record.wake, record.isTimingPeer);
      const wake = wakeOnAnnounce(record.wake, record.isTimingPeer, d.nowNs, d.config.wake);
      if (first) sendWake(d, record.ip, announce, "its first Announce");
      else if (wake.wake) sendWake(d, record.ip, announce);
      record = { ...record, announce, qualification, wake: wake.state };
      candidateChanged = true;
      break;
    }
    case "sync": {
      const step = syfuOnSync(record.syfu, message, receivedAtNs, d.config.syfu);
      if (step.state !== record.syfu) record = { ...record, syfu: step.state };
      samples = step.samples;
      break;
    }
    case "follow-up": {
      const step = syfuOnFollowUp(record.syfu, message, receivedAtNs, d.config.syfu);
      record = { ...record, syfu: step.state, wake: wakeOnFollowUp(record.wake) };
      samples = step.samples;
      break;
    }
    default:
      break;
  }
  if (samples.length > 0) {
    let ring = record.samples;
    for (const sample of samples) ring = appendSample(ring, sample, d.config.sampleRingSize);
    if (!record.valid) candidateChanged = true;
    record = { ...record, samples: ring, valid: true };
  }
  d.putRecord(record);
  return {
    record,
    samples,
    announced: message.kind === "announce",
    candidateChanged: candidateChanged && record.isTimingPeer,
  };
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
