// The regions the daemon publishes to, one per client (spec sections 8 and 11), and how a record
// gets into one: written at once, or, while a reader holds a region's lock past the writer's
// bounded wait, retried every SHM_RETRY_MS until it lets go (nothing is lost: the newest record
// wins). A client that dies holding the lock is recovered by the writer and reported here.
//
// The main region (--shm-name) is created at start-up, before the daemon says it is ready;
// interfaces 8-10 create one more per client name the control port brings, up to maxClients.
// Regions live until the daemon stops: a reader of an unlinked region reads zeros forever, so
// none is removed while the daemon runs.
//
// It also keeps systemd's STATUS line: who each region publishes (and, with --interface, where
// PTP is heard).

import type { PublishedMaster } from "../clock/effects.ts";
import { NqptpError } from "../errors.ts";
import type { InterfaceVersion } from "../rules/interface-version.ts";
import type { Logger } from "../daemon/log.ts";
import { formatClockId } from "../ptp/clock-identity.ts";
import { openShm, type ShmWriter, type ShmWriterOptions } from "./writer.ts";

export const SHM_RETRY_MS = 50;

export interface PublisherOptions {
  interfaceVersion: InterfaceVersion;
  /** The --shm-name region, created by openMain(). */
  mainName: string;
  /** At most this many regions, the main one included. */
  maxClients: number;
  log: Logger;
  /** Rate-limited warning (key, message): for what a client or the LAN can make happen often. */
  warnLimited: (key: string, message: string) => void;
  /** One line saying what each region publishes, whenever that changes (systemd's STATUS=). */
  onStatus?: (status: string) => void;
  /** Opens a region; tests substitute. */
  open?: (options: ShmWriterOptions) => ShmWriter;
}

interface Region {
  readonly name: string;
  readonly writer: ShmWriter;
  /** The record still to be written (the lock was busy), or undefined. */
  pending: { record: PublishedMaster | null } | undefined;
  retryTimer: ReturnType<typeof setTimeout> | null;
  busySince: number | null;
  ownerDeadSeen: number;
  /** What it holds (null: zeros), for the status line. */
  current: PublishedMaster | null;
}

export interface PublisherStats {
  written: number;
  busy: number;
  regions: number;
  refused: number;
}

export class Publisher {
  private readonly regions = new Map<string, Region>();
  private readonly stats: Omit<PublisherStats, "regions"> = { written: 0, busy: 0, refused: 0 };
  private statusLine = "";
  /** With --interface: where PTP is heard ("interface eth0 (waiting for wlan0)"); null without it. */
  private ptpInterfaces: string | null = null;
  private closed = false;

  constructor(private readonly options: PublisherOptions) {}

  /** The main region. Throws NqptpError("shm") when it cannot be created: the daemon cannot run. */
  openMain(): ShmWriter {
    const { mainName } = this.options;
    try {
      const writer = this.add(mainName);
      if (writer.reusedStaleRegion) this.options.log.warn(`replaced a stale ${writer.path} left by an earlier run of ours`);
      // Zeros, as the region starts: the ready notification says so; STATUS follows changes.
      this.statusLine = this.statusText();
      return writer;
    } catch (error) {
      throw error instanceof NqptpError ? error : new NqptpError("shm", `shared memory ${mainName}: ${(error as Error).message}`, { cause: error });
    }
  }

  has(name: string): boolean {
    return this.regions.has(name);
  }

  get size(): number {
    return this.regions.size;
  }

  names(): string[] {
    return [...this.regions.keys()];
  }

  /**
   * A region for a new client; false (with a warning) when there is no room for one more or it
   * cannot be created: another user's region, a symlink, a full /dev/shm. Every other client
   * goes on being served.
   */
  openClient(name: string): boolean {
    if (this.regions.has(name)) return true;
    if (this.closed) return false;
    const { maxClients, warnLimited, log } = this.options;
    if (this.regions.size >= maxClients) {
      this.stats.refused++;
      warnLimited(
        "clients:full",
        `refused client ${name}: ${maxClients} clients are served already (--max-clients ${maxClients}; raise it to serve more)`,
      );
      return false;
    }
    try {
      const writer = this.add(name);
      log.info(
        `new client ${name}: created ${writer.path}` +
          (writer.reusedStaleRegion ? " (replacing a stale region of ours)" : "") +
          ` (${this.regions.size} of at most ${maxClients})`,
      );
      this.updateStatus();
      return true;
    } catch (error) {
      this.stats.refused++;
      warnLimited(`clients:open:${name}`, `refused client ${name}: ${(error as Error).message}`);
      return false;
    }
  }

  private add(name: string): ShmWriter {
    const open = this.options.open ?? openShm;
    const writer = open({ name, version: this.options.interfaceVersion });
    this.regions.set(name, { name, writer, pending: undefined, retryTimer: null, busySince: null, ownerDeadSeen: 0, current: null });
    return writer;
  }

  /** Writes `record` (null: zeros) into client `name`'s region, or retries while its lock is held. */
  publish(name: string, record: PublishedMaster | null): void {
    const region = this.regions.get(name);
    if (region === undefined || this.closed) return;
    // The status line names who each region publishes: only a change of clock or address (or to
    // or from zeros) changes it, not each new sample.
    const before = region.current;
    region.current = record;
    if (before?.clockId !== record?.clockId || before?.ip !== record?.ip) this.updateStatus();
    this.write(region, record);
  }

  private write(region: Region, record: PublishedMaster | null): void {
    region.pending = undefined;
    const { log } = this.options;
    const outcome = region.writer.publish(record);
    if (region.writer.recoveredOwnerDead !== region.ownerDeadSeen) {
      region.ownerDeadSeen = region.writer.recoveredOwnerDead;
      log.warn(`a client died holding the shared memory lock of ${region.name}; the lock was recovered`);
    }
    if (outcome === "written") {
      this.stats.written++;
      if (region.busySince !== null) {
        log.info(`shared memory lock of ${region.name} free again after ${Date.now() - region.busySince} ms; publishing resumed`);
        region.busySince = null;
      }
      return;
    }
    this.stats.busy++;
    if (region.busySince === null) {
      region.busySince = Date.now();
      log.warn(
        `a client is holding the shared memory lock of ${region.name}; skipping updates until it lets go ` +
          `(clients must hold it only long enough to copy the record)`,
      );
    }
    region.pending = { record };
    if (region.retryTimer === null) {
      region.retryTimer = setTimeout(() => {
        region.retryTimer = null;
        const pending = region.pending;
        if (pending === undefined || this.closed) return;
        try {
          this.write(region, pending.record);
        } catch (error) {
          // Outside the dispatch guard: a failed write is reported, the daemon goes on.
          this.options.warnLimited("shm:retry", `could not write ${region.name}: ${(error as Error).message}`);
        }
      }, SHM_RETRY_MS);
    }
  }

  /** Where PTP is heard, for the status line (--interface); null: every interface, not said. */
  setPtpInterfaces(summary: string | null): void {
    this.ptpInterfaces = summary;
    if (this.regions.size > 0) this.updateStatus();
  }

  private updateStatus(): void {
    const line = this.statusText();
    if (line === this.statusLine) return;
    this.statusLine = line;
    this.options.onStatus?.(line);
  }

  /**
   * One region: "master 0x… at ip; interface N at /nqptp" (or "no master; …"). Several:
   * "2 clients: /nqptp following 192.168.1.20, /nqptp-kitchen idle; interface N". With
   * --interface, "; PTP on interface eth0" follows.
   */
  statusText(): string {
    const ptp = this.ptpInterfaces === null ? "" : `; PTP on ${this.ptpInterfaces}`;
    return this.clientsText() + ptp;
  }

  private clientsText(): string {
    const version = this.options.interfaceVersion;
    const regions = [...this.regions.values()];
    if (regions.length <= 1) {
      const record = regions[0]?.current ?? null;
      const name = regions[0]?.name ?? this.options.mainName;
      return record
        ? `master ${formatClockId(record.clockId)}${record.ip ? ` at ${record.ip}` : ""}; interface ${version} at ${name}`
        : `no master; interface ${version} at ${name}`;
    }
    const parts = regions.map((r) => (r.current ? `${r.name} following ${r.current.ip || formatClockId(r.current.clockId)}` : `${r.name} idle`));
    return `${regions.length} clients: ${parts.join(", ")}; interface ${version}`;
  }

  counters(): PublisherStats {
    return { ...this.stats, regions: this.regions.size };
  }

  /** Cancels retries, unmaps and removes every region. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const failures: unknown[] = [];
    for (const region of this.regions.values()) {
      if (region.retryTimer) clearTimeout(region.retryTimer);
      try {
        region.writer.close();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}
