// The shell: sockets, shared memory and timers around the pure core. Datagrams become events
// for the clock tracker; the tracker's effects become shm writes, Announces and log lines.
// Nothing here decides anything about clocks.

import type { DaemonOptions } from "./options.ts";
import { parseControlMessage, type ControlParseResult } from "./control/parse.ts";
import {
  createTracker,
  reduce,
  snapshot,
  type TrackerEffect,
  type TrackerEvent,
  type TrackerState,
} from "./clock/tracker.ts";
import { formatClockId } from "./clock/effects.ts";
import { encodeStatusReport, isStatusRequest } from "./control/status.ts";
import { NqptpError } from "./errors.ts";
import { traitsOf } from "./interface-version.ts";
import { VERSION } from "./version.ts";
import type { Logger } from "./log.ts";
import { canonicalSender, parseAddress } from "./net/address.ts";
import { clockIdentityFromHost, OwnAddresses } from "./net/host.ts";
import { openPtpSockets, type PtpDatagram, type PtpSockets } from "./net/ptp-sockets.ts";
import { bindUdp, type BoundSocket } from "./net/udp.ts";
import { decode } from "./ptp/decode.ts";
import { encodeAnnounce } from "./ptp/encode.ts";
import { layoutFor } from "./shm/layouts.ts";
import { openShm, type ShmWriter } from "./shm/writer.ts";
import { HOST_ARCH } from "./sys/linux.ts";
import { readClock, type LocalClock } from "./time/clocks.ts";
import { LogRateLimiter, suppressedSuffix } from "./util/rate-limit.ts";

export interface DaemonStats {
  datagrams: { event: number; general: number; control: number };
  ignored: { wrongSourcePort: number; ownAddress: number; remoteControl: number };
  decodeErrors: Record<string, number>;
  controlErrors: Record<string, number>;
  shm: { written: number; busy: number };
  announcesSent: number;
}

export interface Daemon {
  readonly options: DaemonOptions;
  readonly shmName: string;
  stats(): DaemonStats;
  /** Closes sockets, cancels timers, removes the shared memory. Idempotent. */
  stop(): void;
}

export interface DaemonDeps {
  logger: Logger;
  /** Reads the interface's local clock; tests may substitute. */
  now?: (clock: LocalClock) => bigint;
  /** One line saying who is master, whenever that changes (systemd's STATUS=). */
  onStatus?: (status: string) => void;
}

const SHM_RETRY_MS = 50;

const STAMPING: Record<PtpSockets["eventStamping"], string> = {
  worker: "by the kernel",
  ioctl: "by the kernel, per batch",
  callback: "in JavaScript",
};

export async function startDaemon(options: DaemonOptions, deps: DaemonDeps): Promise<Daemon> {
  const log = deps.logger.withTag("nqptp");
  const now = deps.now ?? readClock;

  // The ports come first: holding them proves no other nqptp serves these ports, and only then is
  // the shared memory ours to create (or to take over after a crash of ours). Opening the region
  // first would let a second instance that fails to bind remove the first one's region on exit.
  if (HOST_ARCH === null) {
    throw new NqptpError("unsupported-platform", `nqptp lays out shared memory for x86_64 and arm64 Linux, not ${process.arch}`);
  }
  const localClock = layoutFor(options.interfaceVersion, HOST_ARCH).localClock;
  let shm: ShmWriter | null = null;

  const sockets: BoundSocket[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const limiter = new LogRateLimiter(60_000);
  const own = new OwnAddresses();
  const senderCache = new Map<string, string>();
  const stats: DaemonStats = {
    datagrams: { event: 0, general: 0, control: 0 },
    ignored: { wrongSourcePort: 0, ownAddress: 0, remoteControl: 0 },
    decodeErrors: {},
    controlErrors: {},
    shm: { written: 0, busy: 0 },
    announcesSent: 0,
  };
  let stopped = false;
  let wrongFormWarned = false;

  let state: TrackerState = createTracker({
    interfaceVersion: options.interfaceVersion,
    ourClockIdentity: clockIdentityFromHost(),
  });

  const warnLimited = (key: string, message: string) => {
    const decision = limiter.check(key, Date.now());
    if (decision.log) log.warn(message + suppressedSuffix(decision));
  };

  // ---- shared memory: publish, and retry when a reader holds the lock ----
  type Published = Parameters<ShmWriter["publish"]>[0];
  let pending: { record: Published } | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let busySince: number | null = null;

  let ownerDeadSeen = 0;
  let statusKey = "";
  const publish = (record: Published) => {
    pending = null;
    if (!shm) return;
    const key = record ? `${record.clockId}@${record.ip}` : "";
    if (key !== statusKey) {
      statusKey = key;
      deps.onStatus?.(
        record
          ? `master ${formatClockId(record.clockId)}${record.ip ? ` at ${record.ip}` : ""}; interface ${options.interfaceVersion} at ${options.shmName}`
          : `no master; interface ${options.interfaceVersion} at ${options.shmName}`,
      );
    }
    const outcome = shm.publish(record);
    if (shm.recoveredOwnerDead !== ownerDeadSeen) {
      ownerDeadSeen = shm.recoveredOwnerDead;
      log.warn(`a client died holding the shared memory lock of ${options.shmName}; the lock was recovered`);
    }
    if (outcome === "written") {
      stats.shm.written++;
      if (busySince !== null) {
        log.info(`shared memory lock free again after ${Date.now() - busySince} ms; publishing resumed`);
        busySince = null;
      }
      return;
    }
    stats.shm.busy++;
    if (busySince === null) {
      busySince = Date.now();
      log.warn(
        `a client is holding the shared memory lock of ${options.shmName}; skipping updates until it lets go ` +
          `(clients must hold it only long enough to copy the record)`,
      );
    }
    pending = { record };
    if (retryTimer === null && !stopped) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        if (!pending || stopped) return;
        try {
          publish(pending.record);
        } catch (error) {
          // As in dispatch: a failed write is reported, the daemon goes on.
          warnLimited("shm:retry", `could not write ${options.shmName}: ${(error as Error).message}`);
        }
      }, SHM_RETRY_MS);
    }
  };

  // ---- tracker effects ----
  let ptp: PtpSockets | null = null;
  let tickTimer: ReturnType<typeof setTimeout> | null = null;
  const sendAnnounce = (effect: Extract<TrackerEffect, { kind: "send-announce" }>) => {
    if (stopped || !ptp) return;
    try {
      if (ptp.sendGeneral(encodeAnnounce(effect.announce), effect.to)) stats.announcesSent++;
    } catch (error) {
      warnLimited(`send:${effect.to}`, `could not send an Announce to ${effect.to}: ${(error as Error).message}`);
    }
  };

  const applyEffects = (effects: TrackerEffect[]) => {
    for (const effect of effects) {
      switch (effect.kind) {
        case "publish":
          publish(effect.master);
          break;
        case "send-announce":
          if (effect.delayMs <= 0) sendAnnounce(effect);
          else {
            const timer = setTimeout(() => {
              timers.delete(timer);
              sendAnnounce(effect);
            }, effect.delayMs);
            timers.add(timer);
          }
          break;
        case "log":
          clockLog[effect.level](effect.message);
          break;
        case "schedule-tick":
          // One timer: a new request replaces the previous one (interfaces 8-10 validity windows).
          if (tickTimer) clearTimeout(tickTimer);
          if (stopped) break;
          tickTimer = setTimeout(() => {
            tickTimer = null;
            dispatch({ kind: "tick" }, now(localClock));
          }, effect.delayMs);
          break;
      }
    }
  };
  const clockLog = deps.logger.withTag("clock");

  const dispatch = (event: TrackerEvent, nowNs: bigint) => {
    // Until the region exists (the first milliseconds of start-up) there is nowhere to publish:
    // the tracker must not believe it published.
    if (!shm) return;
    try {
      const result = reduce(state, event, nowNs);
      state = result.state;
      applyEffects(result.effects);
    } catch (error) {
      // A bug must not stop the music: say so loudly, keep the last good state, go on.
      warnLimited(`bug:${(error as Error).message}`, `internal error handling ${event.kind}: ${(error as Error).stack ?? error}`);
    }
  };

  // ---- PTP datagrams ----
  const sender = (address: string): string => {
    let canonical = senderCache.get(address);
    if (canonical === undefined) {
      if (senderCache.size >= 4096) senderCache.clear();
      canonical = canonicalSender(address);
      senderCache.set(address, canonical);
    }
    return canonical;
  };

  const onPtp = ({ role, data, port, address, receivedAtNs }: PtpDatagram) => {
    stats.datagrams[role]++;
    // IEEE 1588 over UDP (Annex D): event messages go 319→319, general 320→320.
    if (port !== (role === "event" ? options.eventPort : options.generalPort)) {
      stats.ignored.wrongSourcePort++;
      return;
    }
    const source = sender(address);
    if (own.has(source, Date.now())) {
      stats.ignored.ownAddress++;
      return;
    }
    const result = decode(data);
    if (!result.ok) {
      const kind = result.error.kind;
      stats.decodeErrors[kind] = (stats.decodeErrors[kind] ?? 0) + 1;
      const decision = limiter.check(`decode:${kind}`, Date.now());
      if (decision.log) log.debug(`ignored a datagram from ${source}: ${kind}: ${result.error.detail}${suppressedSuffix(decision)}`);
      return;
    }
    dispatch({ kind: "ptp", source, message: result.message, receivedAtNs }, receivedAtNs);
  };

  // ---- control datagrams ----
  const startedAtMs = Date.now();
  const answerStatus = (socket: BoundSocket, port: number, address: string) => {
    const report = encodeStatusReport({
      nqptp: VERSION,
      interfaceVersion: options.interfaceVersion,
      shmName: options.shmName,
      uptimeS: Math.round((Date.now() - startedAtMs) / 1000),
      snapshot: snapshot(state, now(localClock)),
      stats,
    });
    try {
      socket.send(report, port, address);
    } catch (error) {
      warnLimited("control:status", `could not answer a status request from ${address}: ${(error as Error).message}`);
    }
  };

  const onControl = (socket: () => BoundSocket | undefined) => (data: Buffer, port: number, address: string) => {
    stats.datagrams.control++;
    const source = parseAddress(address);
    if (!source?.isLoopback && !options.allowRemoteControl) {
      stats.ignored.remoteControl++;
      warnLimited(
        "control:remote",
        `ignored a control message from ${address}: only this host may send timing peer lists ` +
          `(--allow-remote-control accepts other hosts)`,
      );
      return;
    }
    if (isStatusRequest(data)) {
      // Only loopback senders get here (or the user allowed remote control explicitly).
      const receiving = socket();
      if (receiving) answerStatus(receiving, port, address);
      return;
    }
    const parsed: ControlParseResult = parseControlMessage(data, options.interfaceVersion);
    if (!parsed.ok) {
      const { kind, detail } = parsed.error;
      stats.controlErrors[kind] = (stats.controlErrors[kind] ?? 0) + 1;
      if (kind === "wrong-form") {
        // Once per run: a mismatched Shairport Sync repeats this with every session.
        if (wrongFormWarned) {
          log.debug(`ignored a control message: ${kind}: ${detail}`);
          return;
        }
        wrongFormWarned = true;
        log.warn(
          `control message ${detail}, but this nqptp serves shared memory interface ${options.interfaceVersion}. ` +
            `Choose --interface-version to match your Shairport Sync: its "shairport-sync -V" string shows ` +
            `smi8 → 8 (4.1.x), smi9 → 9 (4.2.x), smi10 → 10 (4.3.x and 5.x); no smi tag (4.0 and earlier) → 5.`,
        );
      } else {
        warnLimited(`control:${kind}`, `ignored a control message: ${kind}: ${detail}`);
      }
      return;
    }
    const command = parsed.command;
    const nowNs = now(localClock);
    if (command.kind === "timing-peers" && command.skipped.length > 0) {
      warnLimited("control:skipped", `timing peer list: skipped malformed address(es) ${command.skipped.join(", ")}`);
    }
    if (!traitsOf(options.interfaceVersion).followsOneClock) {
      if (command.kind === "timing-peers") dispatch({ kind: "timing-peers", addresses: command.addresses }, nowNs);
      return;
    }
    switch (command.kind) {
      case "timing-peers":
        if (command.addresses.length === 0 && command.skipped.length > 0) {
          // "T garbage" is a mistake, not a request to stop timing.
          return;
        }
        if (command.addresses.length > 1) {
          log.debug(`following ${command.addresses[0]} only (interface ${options.interfaceVersion} follows the first address)`);
        }
        dispatch({ kind: "follow", address: command.addresses[0] ?? null }, nowNs);
        return;
      case "play-begin":
      case "play-end":
      case "pause":
        dispatch({ kind: command.kind }, nowNs);
        return;
    }
  };

  const closeAll = () => {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    if (retryTimer) clearTimeout(retryTimer);
    if (tickTimer) clearTimeout(tickTimer);
    ptp?.close();
    for (const socket of sockets.splice(0)) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
    shm?.close();
  };

  try {
    ptp = await openPtpSockets({
      eventPort: options.eventPort,
      generalPort: options.generalPort,
      addresses: options.ptpAddresses,
      localClock,
      readClock: now,
      onDatagram: onPtp,
      onError: (role, e) => warnLimited(`socket:${role}`, `PTP ${role} port: ${e.message}`),
    });
    for (const hostname of options.controlAddresses) {
      let bound: BoundSocket | undefined;
      bound = await bindUdp({
        hostname,
        port: options.controlPort,
        role: "control port",
        onData: onControl(() => bound),
        onError: (e) => warnLimited("socket:control", `control port: ${e.message}`),
      });
      sockets.push(bound);
    }
    try {
      shm = openShm({ name: options.shmName, version: options.interfaceVersion });
    } catch (error) {
      throw error instanceof NqptpError
        ? error
        : new NqptpError("shm", `shared memory ${options.shmName}: ${(error as Error).message}`, { cause: error });
    }
    if (shm.reusedStaleRegion) log.warn(`replaced a stale ${shm.path} left by an earlier run of ours`);
  } catch (error) {
    closeAll();
    throw error;
  }

  log.info(
    `serving shared memory interface ${options.interfaceVersion} at ${options.shmName} (${localClock} clock); ` +
      `PTP on ${options.ptpAddresses.length ? options.ptpAddresses.join(",") : "all addresses"} ports ` +
      `${options.eventPort}/${options.generalPort} (Sync stamped ${STAMPING[ptp!.eventStamping]}); ` +
      `control on ${options.controlAddresses.join(",")} port ${options.controlPort}`,
  );

  return {
    options,
    shmName: options.shmName,
    stats: () => structuredClone(stats),
    stop() {
      if (stopped) return;
      closeAll();
      log.info("stopped; shared memory removed");
    },
  };
}
