// The state being built for one event of the tracker (tracker.ts). The reducer never changes
// its input: a Draft starts from the input state's values and copies what it changes on first
// write (the record table's Map, the client map), collecting the effects in order. table.ts,
// select.ts and clients.ts work on a Draft; build() turns it into the next state.

import type { LogLevel, PublishedMaster, TrackerEffect } from "./effects.ts";
import { limitLog, type LogLimits } from "./log-limit.ts";
import type { ClockRecord } from "./records.ts";
import type { ClientState, OverflowState, SelectionState, TrackerConfig, TrackerState, TrackerStep } from "./state.ts";

export class Draft {
  readonly config: TrackerConfig;
  records: ReadonlyMap<string, ClockRecord>;
  private ownsRecords = false;
  peers: readonly string[];
  gcDueNs: bigint | null;
  overflow: OverflowState;
  announceSequenceId: number;
  logLimits: LogLimits;
  /** Interfaces 5, 6: the selected master; null for 8-10. */
  selection: SelectionState | null;
  /** Interfaces 8-10: one entry per client (shm name); null for 5, 6. */
  clients: ReadonlyMap<string, ClientState> | null;
  /** The clients as the event found them (to tell which ones it changed). */
  readonly clientsBefore: ReadonlyMap<string, ClientState> | null;
  private ownsClients = false;
  /** Interfaces 8-10: the deadline the shell's one tick timer is set for; null when none is. */
  tickDueNs: bigint | null;
  readonly effects: TrackerEffect[] = [];

  constructor(
    state: TrackerState,
    readonly nowNs: bigint,
  ) {
    this.config = state.config;
    this.records = state.records;
    this.peers = state.peers;
    this.gcDueNs = state.gcDueNs;
    this.overflow = state.overflow;
    this.announceSequenceId = state.announceSequenceId;
    this.logLimits = state.logLimits;
    this.selection = state.selection;
    this.clients = state.clients;
    this.clientsBefore = state.clients;
    this.tickDueNs = state.tickDueNs;
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

  putClient(client: ClientState): void {
    if (!this.ownsClients) {
      this.clients = new Map(this.clients);
      this.ownsClients = true;
    }
    (this.clients as Map<string, ClientState>).set(client.name, client);
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

  publish(client: string, master: PublishedMaster | null): void {
    this.effects.push({ kind: "publish", client, master });
  }

  build(): TrackerStep {
    return {
      state: {
        config: this.config,
        records: this.records,
        peers: this.peers,
        gcDueNs: this.gcDueNs,
        overflow: this.overflow,
        announceSequenceId: this.announceSequenceId,
        logLimits: this.logLimits,
        selection: this.selection,
        clients: this.clients,
        tickDueNs: this.tickDueNs,
      },
      effects: this.effects,
    };
  }
}
