// The clock tracker (spec sections 4–7), as a reducer:
//   reduce(state, event, nowNs) → { state, effects }
// Pure: no sockets, timers or clocks. Events are decoded PTP messages (already filtered by the
// shell for our own addresses and for port equality) and control-port commands; effects are
// "publish", "send-announce", "log" and "schedule-tick" (effects.ts).
//
// Records, qualification, Sync/Follow_Up pairing, waking and garbage collection are shared. The
// publishing policy depends on the interface version:
//   - 5, 6 (seed): a timing peer list ("timing-peers"); the BMC picks the master among qualified,
//     valid peers; offset-v5.ts estimates its offset. state.follow is null.
//   - 8, 9, 10: Shairport Sync names one clock to follow ("follow"); play commands ("play-begin",
//     "play-end", "pause", 9+) and the validity window decide when it is published; smoothing.ts
//     smooths its offset; follow.ts holds that state. The followed address is the only timing
//     peer (so waking still only ever targets it); state.master stays null.
// Events of the other generation are ignored with a warning.
//
// The input state is never changed. Each event copies what it changes: the record it touches
// (a shallow copy), the table's Map (≤ maxRecords entries) and, for a sample, that one record's
// sample ring. Events from non-peers never run the BMC; nothing scans the table per packet
// except eviction, which happens only when the table is full and an unknown address speaks.
//
// nowNs and receivedAtNs are both local time of the interface's clock: bookkeeping (last heard,
// qualification window, wake rate limit, log limits) uses nowNs, offset samples receivedAtNs.

import { INTERFACE_VERSIONS, isInterfaceVersion, traitsOf, type InterfaceVersion } from "../interface-version.ts";
import type { AnnounceMessage, FollowUpMessage, PtpMessage, SyncMessage } from "../ptp/types.ts";
import { nsToSecondsForLog, subU64, toI64 } from "../time/ns.ts";
import { selectMaster, type MasterCandidate } from "./bmc.ts";
import { formatClockId, samePublishedMaster, type LogLevel, type PublishedMaster, type TrackerEffect } from "./effects.ts";
import { offsetV5Estimator } from "./estimator.ts";
import {
  DEFAULT_FOLLOW_RULES,
  NOT_FOLLOWING,
  followAnnounce,
  followSample,
  followedMaster,
  isPublishable,
  playBegin,
  playEnd,
  scheduleTick,
  startFollowing,
  stopFollowing,
  type FollowRules,
  type FollowState,
} from "./follow.ts";
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
import {
  DEFAULT_WAKE_RULES,
  wakeAnnounces,
  wakeOnAnnounce,
  wakeOnFirstAnnounce,
  wakeOnFollowUp,
  type WakeRules,
} from "./wake.ts";

export type { AnnounceFields, LogLevel, PublishedMaster, TrackerEffect } from "./effects.ts";

export interface TrackerConfig {
  interfaceVersion: InterfaceVersion;
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
  /** Versions 8–10: validity windows, smoothing, the origin-stall wake. */
  follow: FollowRules;
}

export type TrackerOptions = Pick<TrackerConfig, "ourClockIdentity"> & Partial<TrackerConfig>;

export type TrackerEvent =
  | { kind: "ptp"; source: string; message: PtpMessage; receivedAtNs: bigint }
  /** Versions 5, 6 ("T ip…"): replaces the timing peer list; [] clears it. */
  | { kind: "timing-peers"; addresses: readonly string[] }
  /**
   * Versions 8–10 ("/nqptp T ip…"): forget every record and follow `address` (the first address
   * of the command); null ("T" alone) stops timing.
   */
  | { kind: "follow"; address: string | null }
  /** Version 9+ "B": play began. */
  | { kind: "play-begin" }
  /** Version 9+ "E": play ended. */
  | { kind: "play-end" }
  /** Version 9+ "P": play paused (changes nothing). */
  | { kind: "pause" }
  /** The timer of the last "schedule-tick" effect fired. */
  | { kind: "tick" };

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
  /** Versions 8–10: the followed clock; null for versions 5, 6. */
  readonly follow: FollowState | null;
}

export interface TrackerStep {
  state: TrackerState;
  effects: TrackerEffect[];
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
    follow: DEFAULT_FOLLOW_RULES,
    ...options,
  };
  if (!isInterfaceVersion(config.interfaceVersion)) {
    throw new Error(`clock tracker: interface version ${String(config.interfaceVersion)} is not one of ${INTERFACE_VERSIONS.join(", ")}`);
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
    follow: traitsOf(config.interfaceVersion).followsOneClock ? NOT_FOLLOWING : null,
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
  follow: FollowState | null;
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
    this.follow = state.follow;
  }

  writableRecords(): Map<string, ClockRecord> {
    if (!this.ownsRecords) {
      this.records = new Map(this.records);
      this.ownsRecords = true;
    }
    return this.records as Map<string, ClockRecord>;
  }

  /** Forgets every record. */
  clearRecords(): void {
    this.records = new Map();
    this.ownsRecords = true;
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
        follow: this.follow,
      },
      effects: this.effects,
    };
  }
}

export function reduce(state: TrackerState, event: TrackerEvent, nowNs: bigint): TrackerStep {
  const draft = new Draft(state, nowNs);
  collectGarbage(draft);
  const following = draft.follow !== null;
  switch (event.kind) {
    case "ptp":
      onPtp(draft, event.source, event.message, event.receivedAtNs);
      break;
    case "timing-peers":
      if (following) ignoreEvent(draft, event.kind);
      else onTimingPeers(draft, event.addresses);
      break;
    case "follow":
      if (following) onFollow(draft, event.address);
      else ignoreEvent(draft, event.kind);
      break;
    case "play-begin":
    case "play-end":
    case "pause":
      if (following) onPlay(draft, event.kind);
      else ignoreEvent(draft, event.kind);
      break;
    case "tick":
      // Versions 8–10 settle below; in 5, 6 no tick is ever asked for, and one changes nothing.
      break;
  }
  if (following) settleFollow(draft, event.kind === "tick");
  return draft.build();
}

/** An event of the other generation of the control protocol: the shell's mistake. */
function ignoreEvent(d: Draft, kind: TrackerEvent["kind"]): void {
  d.limitedLog(`ignored-${kind}`, "warn", `ignored a "${kind}" event: not one of interface version ${d.config.interfaceVersion}`);
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
  const changed = peers.length !== d.peers.length || peers.some((ip, i) => ip !== d.peers[i]);
  d.peers = peers;
  // Records that just stopped being peers may be past their time (or never heard at all).
  sweep(d);
  if (changed) {
    d.limitedLog("peers", "info", peers.length === 0 ? "timing peer list cleared" : `timing peer list: ${peers.join(", ")}`);
  } else {
    d.limitedLog("peers", "debug", "timing peer list unchanged");
  }
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

  if (d.follow !== null) {
    if (samples.length > 0 && record.ip === d.follow.ip) feedFollowed(d, record, samples);
    return;
  }
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
  // Versions 8–10 also wake the followed clock (the only timing peer) at its first Announce.
  const first = d.follow !== null && wakeOnFirstAnnounce(record.wake, record.isTimingPeer);
  const wake = wakeOnAnnounce(record.wake, record.isTimingPeer, d.nowNs, d.config.wake);
  if (first) sendWake(d, record.ip, announce, "its first Announce");
  else if (wake.wake) sendWake(d, record.ip, announce);
  if (d.follow !== null && record.ip === d.follow.ip) d.follow = followAnnounce(d.follow, announce.grandmasterIdentity);
  return { ...record, announce, qualification, wake: wake.state };
}

/** Sends the two waking Announces; `reason` for the wakes of versions 8–10 (else: silent). */
function sendWake(d: Draft, to: string, target: AnnounceData, reason?: string): void {
  const [better, worse] = wakeAnnounces(target, d.config.ourClockIdentity, d.announceSequenceId);
  d.announceSequenceId = (d.announceSequenceId + 2) & 0xffff;
  const id = formatClockId(target.senderClockIdentity);
  d.limitedLog("wake", "info", reason === undefined ? `waking silent clock ${id} at ${to}` : `waking clock ${id} at ${to}: ${reason}`);
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
// Following one clock (versions 8–10, spec section 6)

/** "T ip" / "T": every record is forgotten; the followed address becomes the only timing peer. */
function onFollow(d: Draft, address: string | null): void {
  d.clearRecords();
  d.gcDueNs = null;
  if (address === null || address === "") {
    d.peers = [];
    d.follow = stopFollowing(d.follow!);
    d.limitedLog("follow", "info", "timing stopped");
    return;
  }
  // An inert record until the clock speaks, kept (a timing peer) whatever its silence.
  d.putRecord(newRecord(address, true, null));
  d.peers = [address];
  d.follow = startFollowing(d.follow!, address, d.nowNs, traitsOf(d.config.interfaceVersion).hasPlayCommands, d.config.follow);
  d.limitedLog("follow", "info", `following ${address}`);
}

function onPlay(d: Draft, kind: "play-begin" | "play-end" | "pause"): void {
  const command = kind === "play-begin" ? "B" : kind === "play-end" ? "E" : "P";
  if (!traitsOf(d.config.interfaceVersion).hasPlayCommands) {
    d.limitedLog("play", "debug", `"${command}" ignored: interface version ${d.config.interfaceVersion} has no play commands`);
    return;
  }
  const follow = d.follow!;
  switch (kind) {
    case "play-begin": {
      const step = playBegin(follow, d.nowNs);
      d.follow = step.state;
      if (step.outcome === "ALREADY_ACTIVE") d.limitedLog("play", "debug", "play began: clock already active");
      else if (step.outcome === "BEGAN") d.limitedLog("play", "info", "play began: clock active");
      else d.limitedLog("play", "info", "play began: clock active (smoothing restarted)");
      break;
    }
    case "play-end": {
      const step = playEnd(follow, d.nowNs, d.config.follow);
      d.follow = step.state;
      if (step.outcome === "NOT_ACTIVE") d.limitedLog("play", "debug", "play ended: clock was not active");
      else {
        const validFor = nsToSecondsForLog(d.config.follow.validAfterPlayEndNs);
        d.limitedLog("play", "info", `play ended: clock valid for ${validFor} s more`);
      }
      break;
    }
    case "pause":
      d.limitedLog("play", "debug", "play paused: nothing to do");
      break;
  }
}

/** Samples of the followed clock: smoothing, and the wake of a clock whose time stands still. */
function feedFollowed(d: Draft, record: ClockRecord, samples: readonly OffsetSample[]): void {
  let follow = d.follow!;
  const grandmasterIdentity = record.announce?.grandmasterIdentity ?? null;
  for (const sample of samples) {
    const previous = follow.smoothing.sequence;
    const step = followSample(follow, sample, grandmasterIdentity, d.config.follow);
    follow = step.state;
    switch (step.outcome) {
      case "GRANDMASTER_CHANGED":
        d.limitedLog(
          "grandmaster",
          "info",
          `grandmaster of ${record.ip} changed to ${formatClockId(grandmasterIdentity!)}: new smoothing sequence`,
        );
        break;
      case "DROPPED_FOR_RESTART":
        d.limitedLog("restart", "debug", `smoothing restart: dropped a sample of ${record.ip}`);
        break;
      case "FALL_CLAMPED":
        d.limitedLog(
          "fall-clamped",
          "debug",
          `${record.ip}: sample ${-toI64(subU64(sample.offsetNs, previous!.smoothedNs))} ns below the smoothed offset, counted as ${d.config.follow.smoothing.maxFallNs} ns`,
        );
        break;
      default:
        break;
    }
    if (step.wake) {
      if (record.announce !== null) {
        const stalled = nsToSecondsForLog(d.config.follow.originStall.stallNs);
        sendWake(d, record.ip, record.announce, `its time has not advanced for ${stalled} s`);
      } else {
        d.limitedLog("wake-no-announce", "debug", `cannot wake ${record.ip}: no Announce from it yet`);
      }
    }
  }
  d.follow = follow;
}

/** After every event (8–10): publish what the shm should hold now; ask for a tick if needed. */
function settleFollow(d: Draft, timerFired: boolean): void {
  const follow = d.follow!;
  const master = followedMaster(follow, d.nowNs);
  if (master === null && d.published !== null && follow.ip === d.published.ip && !isPublishable(follow, d.nowNs)) {
    d.limitedLog("lapsed", "debug", `clock ${follow.ip} no longer active or valid: publishing zeros`);
  }
  d.publish(master);
  const tick = scheduleTick(follow, d.nowNs, timerFired);
  d.follow = tick.state;
  if (tick.delayMs !== null) d.effects.push({ kind: "schedule-tick", delayMs: tick.delayMs });
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

export interface FollowSnapshot {
  /** The followed clock's address, null when not following. */
  ip: string | null;
  active: boolean;
  /** Validity left (0 when lapsed); null when never set or cleared. */
  validForNs: bigint | null;
  /** Local time the current smoothing sequence (mastership) began; null without one. */
  sequenceStartNs: bigint | null;
  /** The sequence's grandmaster (the published clock id); null when not known yet. */
  grandmasterIdentity: bigint | null;
  /** A smoothing restart is under way (a sample to drop, or the one to start from). */
  restartPending: boolean;
}

export interface TrackerSnapshot {
  records: RecordSnapshot[];
  peers: readonly string[];
  master: PublishedMaster | null;
  overflow: OverflowState;
  /** Versions 8–10 only (null for 5, 6). */
  follow: FollowSnapshot | null;
}

function followSnapshot(follow: FollowState, nowNs: bigint): FollowSnapshot {
  const v = follow.validUntilNs;
  const sequence = follow.smoothing.sequence;
  return {
    ip: follow.ip,
    active: follow.active,
    validForNs: v === null ? null : v > nowNs ? v - nowNs : 0n,
    sequenceStartNs: sequence?.startNs ?? null,
    grandmasterIdentity: sequence?.grandmasterIdentity ?? null,
    restartPending: follow.smoothing.restart !== "none",
  };
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
      isMaster:
        state.follow === null
          ? state.master !== null && state.master.ip === r.ip
          : state.published !== null && state.published.ip === r.ip,
      lastHeardAgoNs: r.lastHeardNs === null ? null : nowNs - r.lastHeardNs,
      latestOffsetNs: newest === undefined ? null : newest.offsetNs,
      sampleCount: r.samples.length,
      grandmasterIdentity: r.announce?.grandmasterIdentity ?? null,
      grandmasterPriority1: r.announce?.grandmasterPriority1 ?? null,
    });
  }
  records.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  return {
    records,
    peers: state.peers,
    master: state.published,
    overflow: state.overflow,
    follow: state.follow === null ? null : followSnapshot(state.follow, nowNs),
  };
}
