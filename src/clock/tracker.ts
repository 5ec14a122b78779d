// The clock tracker for interface versions 5 and 6 (spec sections 4, 5, 7), as a reducer:
//   reduce(state, event, nowNs) → { state, effects }
// Pure: no sockets, timers or clocks. Events are decoded PTP messages (already filtered by the
// shell for our own addresses and for port equality) and timing peer lists; effects are
// "publish", "send-announce" and "log" (effects.ts).
//
// The input state is never changed. Each event copies what it changes: the record it touches
// (a shallow copy), the table's Map (≤ maxRecords entries) and, for a sample, that one record's
// sample ring. Events from non-peers never run the BMC; nothing scans the table per packet
// except eviction, which happens only when the table is full and an unknown address speaks.
//
// nowNs and receivedAtNs are both local time of the interface's clock: bookkeeping (last heard,
// qualification window, wake rate limit, log limits) uses nowNs, offset samples receivedAtNs.

import type { AnnounceMessage, FollowUpMessage, PtpMessage, SyncMessage } from "../ptp/types.ts";
import { subU64, toI64 } from "../time/ns.ts";
import { selectMaster, type MasterCandidate } from "./bmc.ts";
import { formatClockId, samePublishedMaster, type LogLevel, type PublishedMaster, type TrackerEffect } from "./effects.ts";
import { offsetV5Estimator } from "./estimator.ts";
import { DEFAULT_LOG_LIMIT_RULES, NO_LOG_LIMITS, limitLog, type LogLimitRules, type LogLimits } from "./log-limit.ts";
import { DEFAULT_OFFSET_V5_RULES, type OffsetV5Rules, type V5Estimate } from "./offset-v5.ts";
import { DEFAULT_QUALIFICATION_RULES, qualifyAnnounce, type QualificationRules } from "./qualify.ts";
import {
  DEFAULT_GC_TIMEOUT_NS,
  DEFAULT_MAX_RECORDS,
  DEFAULT_SAMPLE_RING_SIZE,
  announceDataOf,
  appendSample,
  isCandidate,
  leastRecentlyHeardNonPeer,
  newRecord,
  nextExpiry,
  sweepExpired,
  withClockIdentity,
  type AnnounceData,
  type ClockRecord,
} from "./records.ts";
import { DEFAULT_SYFU_RULES, syfuOnFollowUp, syfuOnSync, type OffsetSample, type SyfuRules } from "./syfu.ts";
import { DEFAULT_WAKE_RULES, wakeAnnounces, wakeOnAnnounce, wakeOnFollowUp, type WakeRules } from "./wake.ts";

export type { AnnounceFields, LogLevel, PublishedMaster, TrackerEffect } from "./effects.ts";

export interface TrackerConfig {
  interfaceVersion: 5 | 6;
  /** Our EUI-64 clock identity, used in waking Announces. */
  ourClockIdentity: bigint;
  maxRecords: number;
  /** A non-peer record not heard for this long is deleted. */
  gcTimeoutNs: bigint;
  sampleRingSize: number;
  qualification: QualificationRules;
  syfu: SyfuRules;
  offset: OffsetV5Rules;
  wake: WakeRules;
  logLimit: LogLimitRules;
}

export type TrackerOptions = Pick<TrackerConfig, "ourClockIdentity"> & Partial<TrackerConfig>;

export type TrackerEvent =
  | { kind: "ptp"; source: string; message: PtpMessage; receivedAtNs: bigint }
  /** Replaces the timing peer list; [] clears it. */
  | { kind: "timing-peers"; addresses: readonly string[] };

export interface MasterState {
  readonly ip: string;
  readonly clockId: bigint;
  readonly estimate: V5Estimate | null;
}

export interface OverflowState {
  /** The table has been full since the last admission that found room. */
  readonly active: boolean;
  /** Records evicted and newcomers dropped during the current (or last) episode. */
  readonly evicted: number;
  readonly dropped: number;
}

export interface TrackerState {
  readonly config: TrackerConfig;
  readonly records: ReadonlyMap<string, ClockRecord>;
  readonly peers: readonly string[];
  readonly master: MasterState | null;
  /** The last master published (null: none, which is also the zeroed shm at start). */
  readonly published: PublishedMaster | null;
  /** No record expires before this time; null when there is no non-peer. */
  readonly gcDueNs: bigint | null;
  readonly overflow: OverflowState;
  /** sequenceId of our next Announce. */
  readonly announceSequenceId: number;
  readonly logLimits: LogLimits;
}

export interface TrackerStep {
  state: TrackerState;
  effects: TrackerEffect[];
}

/** The interface versions this tracker serves (8–10 follow one clock: another policy). */
export function isTrackerInterfaceVersion(version: number): version is TrackerConfig["interfaceVersion"] {
  return version === 5 || version === 6;
}

export function createTracker(options: TrackerOptions): TrackerState {
  const config: TrackerConfig = {
    interfaceVersion: 5,
    maxRecords: DEFAULT_MAX_RECORDS,
    gcTimeoutNs: DEFAULT_GC_TIMEOUT_NS,
    sampleRingSize: DEFAULT_SAMPLE_RING_SIZE,
    qualification: DEFAULT_QUALIFICATION_RULES,
    syfu: DEFAULT_SYFU_RULES,
    offset: DEFAULT_OFFSET_V5_RULES,
    wake: DEFAULT_WAKE_RULES,
    logLimit: DEFAULT_LOG_LIMIT_RULES,
    ...options,
  };
  if (!isTrackerInterfaceVersion(config.interfaceVersion)) {
    throw new Error(`clock tracker: interface version ${String(config.interfaceVersion)} is not 5 or 6`);
  }
  if (!Number.isInteger(config.maxRecords) || config.maxRecords < 1) {
    throw new Error(`clock tracker: maxRecords must be a positive integer, not ${config.maxRecords}`);
  }
  if (!Number.isInteger(config.sampleRingSize) || config.sampleRingSize < 1) {
    throw new Error(`clock tracker: sampleRingSize must be a positive integer, not ${config.sampleRingSize}`);
  }
  return {
    config,
    records: new Map(),
    peers: [],
    master: null,
    published: null,
    gcDueNs: null,
    overflow: { active: false, evicted: 0, dropped: 0 },
    announceSequenceId: 0,
    logLimits: NO_LOG_LIMITS,
  };
}

/** The state being built for one event: copies are made on first write, never of the input. */
class Draft {
  readonly config: TrackerConfig;
  records: ReadonlyMap<string, ClockRecord>;
  private ownsRecords = false;
  peers: readonly string[];
  master: MasterState | null;
  published: PublishedMaster | null;
  gcDueNs: bigint | null;
  overflow: OverflowState;
  announceSequenceId: number;
  logLimits: LogLimits;
  readonly effects: TrackerEffect[] = [];

  constructor(
    state: TrackerState,
    readonly nowNs: bigint,
  ) {
    this.config = state.config;
    this.records = state.records;
    this.peers = state.peers;
    this.master = state.master;
    this.published = state.published;
    this.gcDueNs = state.gcDueNs;
    this.overflow = state.overflow;
    this.announceSequenceId = state.announceSequenceId;
    this.logLimits = state.logLimits;
  }

  writableRecords(): Map<string, ClockRecord> {
    if (!this.ownsRecords) {
      this.records = new Map(this.records);
      this.ownsRecords = true;
    }
    return this.records as Map<string, ClockRecord>;
  }

  putRecord(record: ClockRecord): void {
    this.writableRecords().set(record.ip, record);
  }

  log(level: LogLevel, message: string): void {
    this.effects.push({ kind: "log", level, message });
  }

  /** A log line the LAN could trigger per packet: at most `burst` per interval for `key`. */
  limitedLog(key: string, level: LogLevel, message: string): void {
    const decision = limitLog(this.logLimits, key, message, this.nowNs, this.config.logLimit);
    this.logLimits = decision.limits;
    if (decision.message !== null) this.log(level, decision.message);
  }

  publish(master: PublishedMaster | null): void {
    if (samePublishedMaster(this.published, master)) return;
    this.published = master;
    this.effects.push({ kind: "publish", master });
  }

  build(): TrackerStep {
    return {
      state: {
        config: this.config,
        records: this.records,
        peers: this.peers,
        master: this.master,
        published: this.published,
        gcDueNs: this.gcDueNs,
        overflow: this.overflow,
        announceSequenceId: this.announceSequenceId,
        logLimits: this.logLimits,
      },
      effects: this.effects,
    };
  }
}

export function reduce(state: TrackerState, event: TrackerEvent, nowNs: bigint): TrackerStep {
  const draft = new Draft(state, nowNs);
  collectGarbage(draft);
  switch (event.kind) {
    case "ptp":
      onPtp(draft, event.source, event.message, event.receivedAtNs);
      break;
    case "timing-peers":
      onTimingPeers(draft, event.addresses);
      break;
  }
  return draft.build();
}

// ---------------------------------------------------------------------------------------------
// Table upkeep

/** Deletes non-peers not heard for gcTimeoutNs; lazily, when the earliest expiry has come. */
function collectGarbage(d: Draft): void {
  if (d.gcDueNs === null || d.nowNs < d.gcDueNs) return;
  sweep(d);
}

function sweep(d: Draft): void {
  const { gcTimeoutNs } = d.config;
  const expired = sweepExpired(d.writableRecords(), d.nowNs, gcTimeoutNs);
  for (const record of expired) {
    // Only non-peers expire and a non-peer is never master: the master cannot change here.
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

function onTimingPeers(d: Draft, addresses: readonly string[]): void {
  const { maxRecords } = d.config;
  let peers: string[] = [];
  const seen = new Set<string>();
  for (const address of addresses) {
    if (address === "" || seen.has(address)) continue;
    seen.add(address);
    peers.push(address);
  }
  if (peers.length > maxRecords) {
    d.limitedLog(
      "peers-too-many",
      "warn",
      `timing peer list has ${peers.length} addresses; keeping the first ${maxRecords}, ignoring ${peers.slice(maxRecords).join(", ")}`,
    );
    peers = peers.slice(0, maxRecords);
  }
  const peerSet = new Set(peers);
  const records = d.writableRecords();
  for (const record of [...records.values()]) {
    const isTimingPeer = peerSet.has(record.ip);
    if (record.isTimingPeer !== isTimingPeer) records.set(record.ip, { ...record, isTimingPeer });
  }
  for (const ip of peers) {
    if (records.has(ip)) continue;
    if (records.size >= maxRecords) {
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
  d.limitedLog("peers", "info", peers.length === 0 ? "timing peer list cleared" : `timing peer list: ${peers.join(", ")}`);
  reselectMaster(d);
}

// ---------------------------------------------------------------------------------------------
// PTP messages

function onPtp(d: Draft, source: string, message: PtpMessage, receivedAtNs: bigint): void {
  const header = message.header;
  // Our own messages looped back (IEEE 1588-2008 9.3.2.5: never qualified; nothing else either).
  if (header.clockIdentity === d.config.ourClockIdentity) return;
  let record = d.records.get(source) ?? admit(d, source);
  if (record === null) return;
  record = { ...record, lastHeardNs: d.nowNs };
  let reselect = false;
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
      reselect = record.isTimingPeer || d.master?.ip === source;
    }
  }
  let samples: OffsetSample[] = [];
  switch (message.kind) {
    case "announce":
      record = onAnnounce(d, record, message);
      reselect ||= record.isTimingPeer;
      break;
    case "sync":
      ({ record, samples } = onSync(d, record, message, receivedAtNs));
      break;
    case "follow-up":
      ({ record, samples } = onFollowUp(d, record, message, receivedAtNs));
      break;
    default:
      break;
  }
  if (samples.length > 0) {
    let ring = record.samples;
    for (const sample of samples) ring = appendSample(ring, sample, d.config.sampleRingSize);
    if (!record.valid) reselect ||= record.isTimingPeer;
    record = { ...record, samples: ring, valid: true };
  }
  d.putRecord(record);

  const masterBefore = d.master;
  if (reselect) reselectMaster(d);
  // Samples of a master that was master before this event update its estimate; a master chosen
  // just now has looked back over them already.
  if (
    samples.length > 0 &&
    d.master !== null &&
    d.master === masterBefore &&
    d.master.ip === record.ip &&
    d.master.clockId === record.clockIdentity
  ) {
    feedMaster(d, d.master, samples);
  }
}

function onAnnounce(d: Draft, record: ClockRecord, message: AnnounceMessage): ClockRecord {
  const announce = announceDataOf(message);
  const qualification = qualifyAnnounce(
    record.qualification,
    { sequenceId: message.header.sequenceId, stepsRemoved: message.stepsRemoved },
    d.nowNs,
    d.config.qualification,
  );
  const wake = wakeOnAnnounce(record.wake, record.isTimingPeer, d.nowNs, d.config.wake);
  if (wake.wake) sendWake(d, record.ip, announce);
  return { ...record, announce, qualification, wake: wake.state };
}

function sendWake(d: Draft, to: string, target: AnnounceData): void {
  const [better, worse] = wakeAnnounces(target, d.config.ourClockIdentity, d.announceSequenceId);
  d.announceSequenceId = (d.announceSequenceId + 2) & 0xffff;
  d.limitedLog("wake", "info", `waking silent clock ${formatClockId(target.senderClockIdentity)} at ${to}`);
  d.effects.push({ kind: "send-announce", to, delayMs: 0, announce: better });
  d.effects.push({ kind: "send-announce", to, delayMs: d.config.wake.secondAnnounceDelayMs, announce: worse });
}

function onSync(
  d: Draft,
  record: ClockRecord,
  message: SyncMessage,
  receivedAtNs: bigint,
): { record: ClockRecord; samples: OffsetSample[] } {
  const step = syfuOnSync(record.syfu, message, receivedAtNs, d.config.syfu);
  return { record: step.state === record.syfu ? record : { ...record, syfu: step.state }, samples: step.samples };
}

function onFollowUp(
  d: Draft,
  record: ClockRecord,
  message: FollowUpMessage,
  receivedAtNs: bigint,
): { record: ClockRecord; samples: OffsetSample[] } {
  const step = syfuOnFollowUp(record.syfu, message, receivedAtNs, d.config.syfu);
  return { record: { ...record, syfu: step.state, wake: wakeOnFollowUp(record.wake) }, samples: step.samples };
}

// ---------------------------------------------------------------------------------------------
// Master selection and publishing

function publishedOf(master: MasterState): PublishedMaster | null {
  const e = master.estimate;
  if (e === null) return null;
  return {
    clockId: master.clockId,
    ip: master.ip,
    localTimeNs: e.localTimeNs,
    offsetNs: e.offsetNs,
    masterStartTimeNs: e.masterStartTimeNs,
  };
}

/** Runs the BMC over the candidates; on a change of master, starts its estimate and publishes. */
function reselectMaster(d: Draft): void {
  const candidates: (MasterCandidate & { record: ClockRecord })[] = [];
  for (const record of d.records.values()) {
    if (isCandidate(record)) candidates.push({ id: record.ip, dataSet: record.announce!, record });
  }
  const best = selectMaster(candidates, d.master?.ip ?? null);
  const current = d.master;
  if (best === null) {
    if (current === null) return;
    d.master = null;
    d.limitedLog("master", "info", `no master (was ${formatClockId(current.clockId)} at ${current.ip})`);
    d.publish(null);
    return;
  }
  const clockId = best.record.clockIdentity!;
  if (current !== null && current.ip === best.id && current.clockId === clockId) return;
  const estimate = offsetV5Estimator(d.config.offset).begin(best.record.samples);
  d.master = { ip: best.id, clockId, estimate };
  d.limitedLog("master", "info", `new master ${formatClockId(clockId)} at ${best.id}`);
  d.publish(publishedOf(d.master));
}

function feedMaster(d: Draft, master: MasterState, samples: readonly OffsetSample[]): void {
  const estimator = offsetV5Estimator(d.config.offset);
  let estimate = master.estimate;
  for (const sample of samples) {
    if (estimate === null) {
      estimate = estimator.begin([sample]);
      continue;
    }
    const step = estimator.next(estimate, sample);
    if (step.outcome === "DELAYED") {
      d.limitedLog(
        "delayed",
        "debug",
        `master ${formatClockId(master.clockId)}: sample ${-toI64(subU64(sample.offsetNs, estimate.offsetNs))} ns below the estimate, taken as network delay`,
      );
    }
    estimate = step.estimate;
  }
  d.master = { ...master, estimate };
  d.publish(publishedOf(d.master));
}

// ---------------------------------------------------------------------------------------------
// Status

export interface RecordSnapshot {
  ip: string;
  clockId: bigint | null;
  isTimingPeer: boolean;
  qualified: boolean;
  valid: boolean;
  isMaster: boolean;
  /** null for a timing peer never heard. */
  lastHeardAgoNs: bigint | null;
  /** Offset of the newest sample (u64), null without samples. */
  latestOffsetNs: bigint | null;
  sampleCount: number;
  grandmasterIdentity: bigint | null;
  grandmasterPriority1: number | null;
}

export interface TrackerSnapshot {
  records: RecordSnapshot[];
  peers: readonly string[];
  master: PublishedMaster | null;
  overflow: OverflowState;
}

/** A read-only view of the state for a status display; records sorted by IP text. */
export function snapshot(state: TrackerState, nowNs: bigint): TrackerSnapshot {
  const records: RecordSnapshot[] = [];
  for (const r of state.records.values()) {
    const newest = r.samples[r.samples.length - 1];
    records.push({
      ip: r.ip,
      clockId: r.clockIdentity,
      isTimingPeer: r.isTimingPeer,
      qualified: r.qualification.qualified,
      valid: r.valid,
      isMaster: state.master !== null && state.master.ip === r.ip,
      lastHeardAgoNs: r.lastHeardNs === null ? null : nowNs - r.lastHeardNs,
      latestOffsetNs: newest === undefined ? null : newest.offsetNs,
      sampleCount: r.samples.length,
      grandmasterIdentity: r.announce?.grandmasterIdentity ?? null,
      grandmasterPriority1: r.announce?.grandmasterPriority1 ?? null,
    });
  }
  records.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  return { records, peers: state.peers, master: state.published, overflow: state.overflow };
}
