// The clock tracker (spec sections 4–7, 10, 11), as a reducer:
//   reduce(state, event, nowNs) → { state, effects }
// Pure: no sockets, timers or clocks. Events are decoded PTP messages (already filtered by the
// shell for our own addresses and for port equality) and control-port commands (mapped by
// control/dispatch.ts); effects are "publish", "send-announce", "log" and "schedule-tick"
// (effects.ts).
//
// Where each part lives:
//   state.ts            the shape of the state and the configuration
//   table.ts            the shared record table: admission, GC, PTP messages → records, waking
//   select.ts           interfaces 5, 6: timing peer list, BMC, the master filter
//   clients.ts        interfaces 8-10: clients, each following one clock with its own filter
//   offset/master-seam.ts,   the seams the offset filters (classic, tracking) plug into
//   offset/sequence-seam.ts
//   snapshot.ts         the read-only view for status
// Which policy serves an interface version is src/rules/interface-version.ts's `followsOneClock`.
// Events of the other generation are ignored with a warning.
//
// The input state is never changed (draft.ts). nowNs and receivedAtNs are both local time of the
// interface's clock: bookkeeping (last heard, qualification window, wake rate limit, log limits)
// uses nowNs, offset samples receivedAtNs.

import { INTERFACE_VERSIONS, isInterfaceVersion, traitsOf } from "../rules/interface-version.ts";
import type { PtpMessage } from "../ptp/types.ts";
import { Draft } from "./draft.ts";
import { DEFAULT_FOLLOW_RULES } from "./client-follow.ts";
import * as following from "./clients.ts";
import { DEFAULT_LOG_LIMIT_RULES, NO_LOG_LIMITS } from "./log-limit.ts";
import { masterTracker } from "./offset/master-seam.ts";
import { isOffsetFilterName } from "./offset/names.ts";
import { DEFAULT_OFFSET_V5_RULES, classicMasterFilter } from "./offset/classic-master.ts";
import { DEFAULT_QUALIFICATION_RULES } from "./qualify.ts";
import { DEFAULT_GC_TIMEOUT_NS, DEFAULT_MAX_RECORDS, DEFAULT_SAMPLE_RING_SIZE } from "./records.ts";
import * as select from "./select.ts";
import { DEFAULT_TRACKING_RULES } from "./offset/tracking.ts";
import { classicSequenceFilter } from "./offset/classic-sequence.ts";
import { idleTrack } from "./offset/sequence-seam.ts";
import { trackingMasterFilter, trackingSequenceFilter } from "./offset/tracking-seams.ts";
import type { TrackerConfig, TrackerState, TrackerStep } from "./state.ts";
import { DEFAULT_SYFU_RULES } from "./syfu.ts";
import { collectGarbage, onPtpMessage } from "./table.ts";
import { DEFAULT_WAKE_RULES } from "./wake.ts";

export type { AnnounceToSend, LogLevel, PublishedMaster, TrackerEffect } from "./effects.ts";
export type { ClientState, MasterState, OverflowState, SelectionState, TrackerConfig, TrackerState, TrackerStep } from "./state.ts";
export { snapshot, type ClientSnapshot, type FollowSnapshot, type RecordSnapshot, type TrackerSnapshot } from "./snapshot.ts";

/** What the daemon chooses (its options, with their defaults in src/daemon/options.ts alone). */
type ChosenByDaemon = "ourClockIdentity" | "interfaceVersion" | "mainClient" | "maxClients" | "offsetFilter";

/** What createTracker needs: what the daemon chooses; the rules have defaults (the standard's and the original's). */
export type TrackerOptions = Pick<TrackerConfig, ChosenByDaemon> &
  Partial<Omit<TrackerConfig, ChosenByDaemon | "masterTracker" | "idleSequenceTrack">>;

export type TrackerEvent =
  | { kind: "ptp"; source: string; message: PtpMessage; receivedAtNs: bigint }
  /** Versions 5, 6 ("T ip…"): replaces the timing peer list; [] clears it. */
  | { kind: "timing-peers"; addresses: readonly string[] }
  /**
   * Versions 8–10 ("<client> T ip…"): the client follows `address` (the first address of the
   * command) from scratch; null ("T" alone) stops its timing. `client` defaults to the main one.
   */
  | { kind: "follow"; address: string | null; client?: string }
  /** Version 9+ "B": play began. */
  | { kind: "play-begin"; client?: string }
  /** Version 9+ "E": play ended. */
  | { kind: "play-end"; client?: string }
  /** Version 9+ "P": play paused (changes nothing). */
  | { kind: "pause"; client?: string }
  /** The timer of the last "schedule-tick" effect fired. */
  | { kind: "tick" };

export function createTracker(options: TrackerOptions): TrackerState {
  const settings = {
    maxRecords: DEFAULT_MAX_RECORDS,
    gcTimeoutNs: DEFAULT_GC_TIMEOUT_NS,
    sampleRingSize: DEFAULT_SAMPLE_RING_SIZE,
    qualification: DEFAULT_QUALIFICATION_RULES,
    syfu: DEFAULT_SYFU_RULES,
    offset: DEFAULT_OFFSET_V5_RULES,
    wake: DEFAULT_WAKE_RULES,
    logLimit: DEFAULT_LOG_LIMIT_RULES,
    follow: DEFAULT_FOLLOW_RULES,
    tracking: DEFAULT_TRACKING_RULES,
    ...options,
  };
  if (!isInterfaceVersion(settings.interfaceVersion)) {
    throw new Error(`clock tracker: interface version ${String(settings.interfaceVersion)} is not one of ${INTERFACE_VERSIONS.join(", ")}`);
  }
  if (!Number.isInteger(settings.maxRecords) || settings.maxRecords < 1) {
    throw new Error(`clock tracker: maxRecords must be a positive integer, not ${settings.maxRecords}`);
  }
  if (!Number.isInteger(settings.sampleRingSize) || settings.sampleRingSize < 1) {
    throw new Error(`clock tracker: sampleRingSize must be a positive integer, not ${settings.sampleRingSize}`);
  }
  if (!Number.isInteger(settings.maxClients) || settings.maxClients < 1) {
    throw new Error(`clock tracker: maxClients must be a positive integer, not ${settings.maxClients}`);
  }
  if (!isOffsetFilterName(settings.offsetFilter)) {
    throw new Error(`clock tracker: unknown offset filter ${JSON.stringify(settings.offsetFilter)}`);
  }
  const tracking = settings.offsetFilter === "tracking";
  const config: TrackerConfig = {
    ...settings,
    masterTracker: tracking ? masterTracker(trackingMasterFilter(settings.tracking)) : masterTracker(classicMasterFilter(settings.offset)),
    idleSequenceTrack: tracking ? idleTrack(trackingSequenceFilter(settings.tracking)) : idleTrack(classicSequenceFilter(settings.follow.smoothing)),
  };
  const followsOneClock = traitsOf(config.interfaceVersion).followsOneClock;
  return {
    config,
    records: new Map(),
    peers: [],
    gcDueNs: null,
    overflow: { active: false, evicted: 0, dropped: 0 },
    announceSequenceId: 0,
    logLimits: NO_LOG_LIMITS,
    selection: followsOneClock ? null : select.NO_SELECTION,
    clients: followsOneClock ? following.initialClients({ config }) : null,
    tickDueNs: null,
  };
}

export function reduce(state: TrackerState, event: TrackerEvent, nowNs: bigint): TrackerStep {
  const d = new Draft(state, nowNs);
  collectGarbage(d);
  const follows = d.clients !== null;
  switch (event.kind) {
    case "ptp": {
      const update = onPtpMessage(d, event.source, event.message, event.receivedAtNs);
      if (update === null) break;
      if (follows) following.onRecordUpdate(d, update);
      else select.onRecordUpdate(d, update);
      break;
    }
    case "timing-peers":
      if (follows) ignoreEvent(d, event.kind);
      else select.onTimingPeers(d, event.addresses);
      break;
    case "follow":
      if (follows) following.onFollow(d, event.client ?? d.config.mainClient, event.address);
      else ignoreEvent(d, event.kind);
      break;
    case "play-begin":
    case "play-end":
    case "pause":
      if (follows) following.onPlay(d, event.client ?? d.config.mainClient, event.kind);
      else ignoreEvent(d, event.kind);
      break;
    case "tick":
      // Versions 8–10 settle below; in 5, 6 no tick is ever asked for, and one changes nothing.
      break;
  }
  if (follows) following.settle(d, event.kind === "tick");
  return d.build();
}

/** An event of the other generation of the control protocol: the shell's mistake. */
function ignoreEvent(d: Draft, kind: TrackerEvent["kind"]): void {
  d.limitedLog(`ignored-${kind}`, "warn", `ignored a "${kind}" event: not one of interface version ${d.config.interfaceVersion}`);
}
