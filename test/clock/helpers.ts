// Builders for decoded PTP messages (plain objects of src/ptp/types.ts) and a scenario runner
// for the clock tracker. No sockets, no clocks: every time is given.

import type { AnnounceMessage, ClockQuality, FollowUpMessage, Header, OtherMessage, PtpMessage, SyncMessage } from "../../src/ptp/types.ts";
import { FLAG_TWO_STEP } from "../../src/ptp/types.ts";
import type { PublishedMaster, TrackerEffect } from "../../src/clock/effects.ts";
import type { FollowState } from "../../src/clock/client-follow.ts";
import { publishedRecord } from "../../src/clock/select.ts";
import type { MasterState } from "../../src/clock/state.ts";
import { DEFAULTS } from "../../src/daemon/options.ts";
import { createTracker, reduce, type TrackerEvent, type TrackerOptions, type TrackerState } from "../../src/clock/tracker.ts";
import { ptpTimestamp } from "../support/timestamp.ts";

export const S = 1_000_000_000n;
export const MS = 1_000_000n;
export const US = 1_000n;

export const OUR_CLOCK_ID = 0x0011_22ff_fe33_4455n;

/**
 * What createTracker needs, as the daemon would give it with its defaults (src/daemon/options.ts),
 * but with the classic filter: the tests of the tracker work out exact figures from the
 * original's rules. Overrides win.
 */
export function trackerOptions(overrides: Partial<TrackerOptions> = {}): TrackerOptions {
  return {
    ourClockIdentity: OUR_CLOCK_ID,
    interfaceVersion: DEFAULTS.interfaceVersion,
    mainClient: DEFAULTS.shmName,
    maxClients: DEFAULTS.maxClients,
    offsetFilter: "classic",
    ...overrides,
  };
}

export function header(messageType: number, clockIdentity: bigint, sequenceId: number, extra: Partial<Header> = {}): Header {
  return {
    transportSpecific: 1,
    messageType,
    versionPTP: 2,
    messageLength: 44,
    domainNumber: 0,
    flagField: 0,
    correctionField: 0n,
    clockIdentity,
    sourcePortNumber: 1,
    sequenceId,
    controlField: 5,
    logMessageInterval: 0,
    ...extra,
  };
}

export interface AnnounceOptions {
  grandmasterPriority1?: number;
  grandmasterPriority2?: number;
  grandmasterClockQuality?: Partial<ClockQuality>;
  grandmasterIdentity?: bigint;
  stepsRemoved?: number;
  timeSource?: number;
  currentUtcOffset?: number;
  header?: Partial<Header>;
}

export function announce(clockIdentity: bigint, sequenceId: number, o: AnnounceOptions = {}): AnnounceMessage {
  return {
    kind: "announce",
    header: header(0xb, clockIdentity, sequenceId, { messageLength: 64, flagField: 0x0408, ...o.header }),
    originTimestamp: ptpTimestamp(0n),
    currentUtcOffset: o.currentUtcOffset ?? 37,
    grandmasterPriority1: o.grandmasterPriority1 ?? 248,
    grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff, ...o.grandmasterClockQuality },
    grandmasterPriority2: o.grandmasterPriority2 ?? 248,
    grandmasterIdentity: o.grandmasterIdentity ?? clockIdentity,
    stepsRemoved: o.stepsRemoved ?? 0,
    timeSource: o.timeSource ?? 0xa0,
  };
}

export function sync(
  clockIdentity: bigint,
  sequenceId: number,
  o: { correctionField?: bigint; twoStep?: boolean; header?: Partial<Header> } = {},
): SyncMessage {
  return {
    kind: "sync",
    header: header(0x0, clockIdentity, sequenceId, {
      flagField: o.twoStep === false ? 0 : FLAG_TWO_STEP,
      correctionField: o.correctionField ?? 0n,
      controlField: 0,
      logMessageInterval: -3,
      ...o.header,
    }),
    originTimestamp: ptpTimestamp(0n),
  };
}

export function followUp(
  clockIdentity: bigint,
  sequenceId: number,
  preciseOriginNs: bigint,
  o: { correctionField?: bigint; header?: Partial<Header> } = {},
): FollowUpMessage {
  return {
    kind: "follow-up",
    header: header(0x8, clockIdentity, sequenceId, {
      correctionField: o.correctionField ?? 0n,
      controlField: 2,
      logMessageInterval: -3,
      ...o.header,
    }),
    preciseOriginTimestamp: ptpTimestamp(preciseOriginNs),
    tlvLength: 0,
  };
}

export function other(clockIdentity: bigint, sequenceId = 0): OtherMessage {
  return { kind: "other", header: header(0xc, clockIdentity, sequenceId) };
}

export type PublishEffect = Extract<TrackerEffect, { kind: "publish" }>;
export type SendEffect = Extract<TrackerEffect, { kind: "send-announce" }>;
export type LogEffect = Extract<TrackerEffect, { kind: "log" }>;

/**
 * A tracker driven by a script. `now` is the local time of the next event; PTP messages are
 * received at `now` unless a receipt time is given. Every effect is kept in `effects`.
 */
export class Scenario {
  state: TrackerState;
  now: bigint;
  effects: TrackerEffect[] = [];
  /** Effects of the last event only. */
  last: TrackerEffect[] = [];

  /** Interfaces 8-10: the main client's follow state; null for 5, 6. */
  get followState(): FollowState | null {
    return this.state.clients?.get(this.state.config.mainClient)?.follow ?? null;
  }

  /** What the main region holds (5, 6: the selected master's record; 8-10: the main client's). */
  get published(): PublishedMaster | null {
    const s = this.state;
    return s.selection !== null ? publishedRecord(s.selection.master) : (s.clients?.get(s.config.mainClient)?.published ?? null);
  }

  /** Interfaces 5, 6: the master the BMC chose; null for 8-10. */
  get master(): MasterState | null {
    return this.state.selection?.master ?? null;
  }

  constructor(options: Partial<TrackerOptions> = {}, startNs = 1_000n * S) {
    this.state = createTracker(trackerOptions(options));
    this.now = startNs;
  }

  at(ns: bigint): this {
    this.now = ns;
    return this;
  }

  advance(ns: bigint): this {
    this.now += ns;
    return this;
  }

  dispatch(event: TrackerEvent): TrackerEffect[] {
    const step = reduce(this.state, event, this.now);
    this.state = step.state;
    this.last = step.effects;
    this.effects.push(...step.effects);
    return step.effects;
  }

  ptp(source: string, message: PtpMessage, receivedAtNs: bigint = this.now): TrackerEffect[] {
    return this.dispatch({ kind: "ptp", source, message, receivedAtNs });
  }

  peers(...addresses: string[]): TrackerEffect[] {
    return this.dispatch({ kind: "timing-peers", addresses });
  }

  publishes(): (PublishedMaster | null)[] {
    return this.effects.filter((e): e is PublishEffect => e.kind === "publish").map((e) => e.master);
  }

  lastPublish(): PublishedMaster | null | undefined {
    const all = this.publishes();
    return all.length === 0 ? undefined : all[all.length - 1];
  }

  sends(): SendEffect[] {
    return this.effects.filter((e): e is SendEffect => e.kind === "send-announce");
  }

  logs(level?: LogEffect["level"]): string[] {
    return this.effects.filter((e): e is LogEffect => e.kind === "log" && (level === undefined || e.level === level)).map((e) => e.message);
  }

  clear(): this {
    this.effects = [];
    return this;
  }
}

/**
 * A simulated two-step master: master time = local time + offsetNs. One "round" is a Sync
 * received at the current local time and its Follow_Up a little later.
 */
export class SimMaster {
  sequenceId = 0;
  announceSequenceId = 0;

  constructor(
    readonly ip: string,
    readonly clockId: bigint,
    public offsetNs: bigint,
    public announceOptions: AnnounceOptions = {},
  ) {}

  announce(sc: Scenario): TrackerEffect[] {
    return sc.ptp(this.ip, announce(this.clockId, this.announceSequenceId++, this.announceOptions));
  }

  /** Sync received at sc.now (with `delayNs` of network delay), Follow_Up 1 ms later. */
  round(sc: Scenario, delayNs = 0n): TrackerEffect[] {
    const seq = this.sequenceId++ & 0xffff;
    const sentLocal = sc.now - delayNs;
    const precise = sentLocal + this.offsetNs;
    const out = sc.ptp(this.ip, sync(this.clockId, seq));
    const fuAt = sc.now + MS;
    const saved = sc.now;
    sc.now = fuAt;
    out.push(...sc.ptp(this.ip, followUp(this.clockId, seq, precise)));
    sc.now = saved;
    return out;
  }
}

/** Object.freeze, all the way down (Maps and arrays included; Map contents are frozen too). */
export function deepFreeze<T>(value: T, seen = new Set<unknown>()): T {
  if (value === null || typeof value !== "object" || seen.has(value)) return value;
  seen.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) {
      deepFreeze(k, seen);
      deepFreeze(v, seen);
    }
  } else {
    for (const v of Object.values(value as object)) deepFreeze(v, seen);
  }
  return Object.freeze(value);
}

/** A plain, comparable rendering of a value (bigints and Maps included). */
export function deepRender(value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Map) return { __map: [...value.entries()].map(([k, v]) => [deepRender(k), deepRender(v)]) };
  if (Array.isArray(value)) return value.map(deepRender);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = deepRender(v);
    return out;
  }
  return value;
}

export type ScheduleTickEffect = Extract<TrackerEffect, { kind: "schedule-tick" }>;

/**
 * A Scenario for interface versions 8–10 (version 9 unless told): the control commands of
 * Shairport Sync 4.1 and later as events, and the tick timer the tracker asks for.
 */
export class FollowScenario extends Scenario {
  constructor(options: Partial<TrackerOptions> = {}, startNs = 1_000n * S) {
    super({ interfaceVersion: 9, ...options }, startNs);
  }

  /** "/nqptp T ip" (the first address), or "/nqptp T" with null. */
  follow(address: string | null): TrackerEffect[] {
    return this.dispatch({ kind: "follow", address });
  }

  playBegin(): TrackerEffect[] {
    return this.dispatch({ kind: "play-begin" });
  }

  playEnd(): TrackerEffect[] {
    return this.dispatch({ kind: "play-end" });
  }

  pause(): TrackerEffect[] {
    return this.dispatch({ kind: "pause" });
  }

  tick(): TrackerEffect[] {
    return this.dispatch({ kind: "tick" });
  }

  /** delayMs of every schedule-tick so far. */
  ticks(): number[] {
    return this.effects.filter((e): e is ScheduleTickEffect => e.kind === "schedule-tick").map((e) => e.delayMs);
  }

  /** The publish effects of the last event only. */
  lastPublishes(): (PublishedMaster | null)[] {
    return this.last.filter((e): e is PublishEffect => e.kind === "publish").map((e) => e.master);
  }
}
