// The publishing policy of interfaces 8, 9 and 10 (spec sections 6 and 11): each client (one
// Shairport Sync, one shm region, named by the first word of its control messages) follows the
// one clock it names. Per client: the followed address, play state, validity window, offset
// filter and origin-stall wake (client-follow.ts). Shared by all: the clock table, one record per
// sender, and so its samples. The timing peers are the clocks some client follows.
//
// "T ip" makes the client follow ip from scratch; "T" alone stops it. The original, which has
// one client, forgets every clock record at either; here that becomes: forget the records no
// other client follows (so one room leaving never disturbs another room's clock).
//
// After every event, settle() works out what each client's region should hold now, publishes
// what changed, and asks the shell for one tick at the earliest validity deadline of all.

import { traitsOf } from "../rules/interface-version.ts";
import { nsToSecondsForLog } from "../time/ns.ts";
import type { Draft } from "./draft.ts";
import { samePublishedMaster, type LogLevel } from "./effects.ts";
import {
  followAnnounce,
  followSample,
  followedMaster,
  isPublishable,
  notFollowing,
  playBegin,
  playEnd,
  scheduleTick,
  startFollowing,
  stopFollowing,
  validityDeadline,
} from "./client-follow.ts";
import type { ClientState } from "./state.ts";
import { forgetRecordsExcept, restartRecord, sendWake, setTimingPeers, type RecordUpdate } from "./table.ts";

export type PlayCommand = "play-begin" | "play-end" | "pause";

/** The clients a new tracker starts with: the main (--shm-name) one, following nothing. */
export function initialClients(d: Pick<Draft, "config">): ReadonlyMap<string, ClientState> {
  const name = d.config.mainClient;
  return new Map([[name, { name, follow: notFollowing(d.config.idleSequenceTrack), published: null }]]);
}

/**
 * The client called `name`, created (following nothing) if it is new and there is room; null
 * when it is new and maxClients clients exist already (the shell refuses it before this).
 */
function clientFor(d: Draft, name: string): ClientState | null {
  const existing = d.clients!.get(name);
  if (existing !== undefined) return existing;
  if (d.clients!.size >= d.config.maxClients) {
    d.limitedLog("clients-full", "warn", `ignored a control message from client ${name}: ${d.config.maxClients} clients are served already`);
    return null;
  }
  const client: ClientState = { name, follow: notFollowing(d.config.idleSequenceTrack), published: null };
  d.putClient(client);
  d.limitedLog("client-new", "debug", `new client ${name}`);
  return client;
}

/** Addresses some client other than `except` follows. */
function followedByOthers(d: Draft, except: string): Set<string> {
  const ips = new Set<string>();
  for (const client of d.clients!.values()) {
    if (client.name !== except && client.follow.ip !== null) ips.add(client.follow.ip);
  }
  return ips;
}

/** The timing peers are the followed clocks, in the order of the clients. */
function updatePeers(d: Draft): void {
  const peers: string[] = [];
  for (const client of d.clients!.values()) {
    const ip = client.follow.ip;
    if (ip !== null && !peers.includes(ip)) peers.push(ip);
  }
  const same = peers.length === d.peers.length && peers.every((ip, i) => ip === d.peers[i]);
  if (!same) setTimingPeers(d, peers);
}

/** "<name> T ip" / "<name> T": the client follows `address` from scratch, or stops (null). */
export function onFollow(d: Draft, name: string, address: string | null): void {
  const client = clientFor(d, name);
  if (client === null) return;
  const others = followedByOthers(d, name);
  // What the original does as "forget every clock", limited to what no other client follows.
  forgetRecordsExcept(d, others);
  if (address === null || address === "") {
    d.putClient({ ...client, follow: stopFollowing(client.follow) });
    updatePeers(d);
    clientLog(d, name, "follow", "info", "timing stopped");
    return;
  }
  // A clock another client follows keeps its record (and samples); otherwise an inert record
  // until the clock speaks, kept (a timing peer) whatever its silence.
  if (!others.has(address)) restartRecord(d, address, true);
  const playControlled = traitsOf(d.config.interfaceVersion).hasPlayCommands;
  d.putClient({ ...client, follow: startFollowing(client.follow, address, d.nowNs, playControlled, d.config.follow) });
  updatePeers(d);
  clientLog(d, name, "follow", "info", `following ${address}`);
}

/** "<name> B" / "E" / "P" (interfaces 9, 10). */
export function onPlay(d: Draft, name: string, kind: PlayCommand): void {
  const command = kind === "play-begin" ? "B" : kind === "play-end" ? "E" : "P";
  if (!traitsOf(d.config.interfaceVersion).hasPlayCommands) {
    d.limitedLog("play", "debug", `"${command}" ignored: interface version ${d.config.interfaceVersion} has no play commands`);
    return;
  }
  const client = clientFor(d, name);
  if (client === null) return;
  const follow = client.follow;
  switch (kind) {
    case "play-begin": {
      const step = playBegin(follow, d.nowNs);
      d.putClient({ ...client, follow: step.state });
      if (step.outcome === "ALREADY_ACTIVE") clientLog(d, name, "play", "debug", "play began: clock already active");
      else if (step.outcome === "BEGAN") clientLog(d, name, "play", "info", "play began: clock active");
      else clientLog(d, name, "play", "info", "play began: clock active (smoothing restarted)");
      break;
    }
    case "play-end": {
      const step = playEnd(follow, d.nowNs, d.config.follow);
      d.putClient({ ...client, follow: step.state });
      if (step.outcome === "NOT_ACTIVE") clientLog(d, name, "play", "debug", "play ended: clock was not active");
      else {
        const validFor = nsToSecondsForLog(d.config.follow.validAfterPlayEndNs);
        clientLog(d, name, "play", "info", `play ended: clock valid for ${validFor} s more`);
      }
      break;
    }
    case "pause":
      clientLog(d, name, "play", "debug", "play paused: nothing to do");
      break;
  }
}

/** A PTP message updated a record: every client following it adopts its grandmaster and samples. */
export function onRecordUpdate(d: Draft, update: RecordUpdate): void {
  const { record, samples } = update;
  if (!record.isTimingPeer || (!update.announced && samples.length === 0)) return;
  const grandmasterIdentity = record.announce?.grandmasterIdentity ?? null;
  let woken = false;
  for (const client of d.clients!.values()) {
    if (client.follow.ip !== record.ip) continue;
    let follow = client.follow;
    if (update.announced && grandmasterIdentity !== null) follow = followAnnounce(follow, grandmasterIdentity);
    for (const sample of samples) {
      const step = followSample(follow, sample, grandmasterIdentity, d.config.follow, record.timelineEpoch);
      follow = step.state;
      if (step.note !== null) clientLog(d, client.name, step.note.key, step.note.level, step.note.message(record.ip));
      if (step.wake && !woken) {
        // One pair of Announces however many clients noticed the stall.
        woken = true;
        if (record.announce !== null) {
          const stalled = nsToSecondsForLog(d.config.follow.originStall.stallNs);
          sendWake(d, record.ip, record.announce, `its time has not advanced for ${stalled} s`);
        } else {
          d.limitedLog("wake-no-announce", "debug", `cannot wake ${record.ip}: no Announce from it yet`);
        }
      }
    }
    if (follow !== client.follow) d.putClient({ ...client, follow });
  }
}

/** After every event: publish what each region should hold now; ask for a tick if needed. */
export function settle(d: Draft, timerFired: boolean): void {
  let deadline: bigint | null = null;
  for (const client of d.clients!.values()) {
    const follow = client.follow;
    const published = client.published;
    // A client this event did not change, still publishable, holds what it held: the same follow
    // state gives the same record (most events are other senders' datagrams; skip rebuilding it).
    const unchanged = d.clientsBefore?.get(client.name) === client && published !== null && isPublishable(follow, d.nowNs);
    if (!unchanged) {
      const master = followedMaster(follow, d.nowNs);
      if (master === null && published !== null && follow.ip === published.ip && !isPublishable(follow, d.nowNs)) {
        clientLog(d, client.name, "lapsed", "debug", `clock ${follow.ip} no longer active or valid: publishing zeros`);
      }
      if (!samePublishedMaster(published, master)) {
        d.putClient({ ...client, published: master });
        d.publish(client.name, master);
      }
    }
    const due = validityDeadline(follow, d.nowNs);
    if (due !== null && (deadline === null || due < deadline)) deadline = due;
  }
  const tick = scheduleTick(d.tickDueNs, deadline, d.nowNs, timerFired);
  d.tickDueNs = tick.tickDueNs;
  if (tick.delayMs !== null) d.effects.push({ kind: "schedule-tick", delayMs: tick.delayMs });
}

/**
 * A line about one client, rate-limited per client (so that one room's lines never hide
 * another's), and naming the client when the daemon serves more than the main one.
 */
function clientLog(d: Draft, name: string, key: string, level: LogLevel, message: string): void {
  const text = name === d.config.mainClient && d.clients!.size <= 1 ? message : `${name}: ${message}`;
  d.limitedLog(`${key} ${name}`, level, text);
}
