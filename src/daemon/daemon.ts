// The daemon: start-up order and shutdown. It only wires; each job has its module:
//   net/ptp-sockets.ts + net/ptp-ingress.ts   PTP datagrams → tracker events
//   daemon/control-server.ts + control/dispatch.ts   control messages → tracker events (and new clients)
//   tracker-runner.ts                         the pure tracker; its effects → regions, Announces, timers
//   shm/publisher.ts                          the regions, busy retries, systemd's STATUS text
//
// The ports come first: holding them proves no other nqptp serves these ports, and only then is
// the shared memory ours to create (or to take over after a crash of ours). Opening the region
// first would let a second instance that fails to bind remove the first one's region on exit.

import type { DaemonOptions } from "./options.ts";
import { createTracker } from "../clock/tracker.ts";
import { dispatchControl } from "../control/dispatch.ts";
import { ControlServer, type ControlStats } from "./control-server.ts";
import { encodeStatusReport } from "../control/status.ts";
import { NqptpError } from "../errors.ts";
import { traitsOf } from "../rules/interface-version.ts";
import type { Logger } from "./log.ts";
import { clockIdentityFromHost } from "../net/host.ts";
import { PtpIngress, type IngressStats } from "../net/ptp-ingress.ts";
import { describeInterfaces } from "../net/interface-watch.ts";
import { openPtpSockets, type PtpSockets } from "../net/ptp-sockets.ts";
import { Publisher, type PublisherStats } from "../shm/publisher.ts";
import { HOST_ARCH } from "../sys/linux.ts";
import { readClock, type LocalClock } from "../time/clocks.ts";
import { TrackerRunner } from "./tracker-runner.ts";
import { LogRateLimiter, suppressedSuffix } from "../util/rate-limit.ts";
import { VERSION } from "../cli/version.ts";

export interface DaemonStats {
  ptp: IngressStats;
  control: ControlStats;
  shm: PublisherStats;
  announcesSent: number;
}

export interface Daemon {
  readonly options: DaemonOptions;
  readonly shmName: string;
  stats(): DaemonStats;
  /** With --interface, where PTP is heard now ("interface eth0 (waiting for wlan0)"); null without it. */
  ptpInterfaces(): string | null;
  /** Closes sockets, cancels timers, removes every region. Idempotent. */
  stop(): void;
}

export interface DaemonDeps {
  logger: Logger;
  /** Reads the interface's local clock; tests may substitute. */
  now?: (clock: LocalClock) => bigint;
  /** One line saying what the regions publish, whenever that changes (systemd's STATUS=). */
  onStatus?: (status: string) => void;
}

const STAMPING: Record<PtpSockets["eventStamping"], string> = {
  worker: "by the kernel",
  ioctl: "by the kernel, per batch",
  callback: "in JavaScript",
  "reader-clock": "by the reader thread's clock",
};

/** "all addresses", "10.0.0.2,::1", or (--interface) "interface eth0 (waiting for wlan0)". */
function ptpWhere(options: DaemonOptions, ptp: PtpSockets): string {
  const interfaces = ptp.interfaces();
  if (interfaces !== null) return describeInterfaces(interfaces);
  return options.ptpAddresses.length ? options.ptpAddresses.join(",") : "all addresses";
}

export async function startDaemon(options: DaemonOptions, deps: DaemonDeps): Promise<Daemon> {
  if (HOST_ARCH === null) {
    throw new NqptpError("unsupported-platform", `nqptp lays out shared memory for x86_64 and arm64 Linux, not ${process.arch}`);
  }
  const log = deps.logger.withTag("nqptp");
  const traits = traitsOf(options.interfaceVersion);
  const readLocal = deps.now ?? readClock;
  const now = () => readLocal(traits.localClock);
  const limiter = new LogRateLimiter(60_000);
  const warnLimited = (key: string, message: string) => {
    const decision = limiter.check(key, Date.now());
    if (decision.log) log.warn(message + suppressedSuffix(decision));
  };
  const startedAtMs = Date.now();
  const maxClients = traits.namedClients ? options.maxClients : 1;

  const publisher = new Publisher({
    interfaceVersion: options.interfaceVersion,
    mainName: options.shmName,
    maxClients,
    log,
    warnLimited,
    onStatus: deps.onStatus,
  });
  let ptp: PtpSockets | null = null;
  const runner = new TrackerRunner({
    initial: createTracker({
      interfaceVersion: options.interfaceVersion,
      ourClockIdentity: clockIdentityFromHost(),
      mainClient: options.shmName,
      maxClients,
      offsetFilter: options.offsetFilter,
    }),
    publisher,
    now,
    sendGeneral: (data, address) => ptp?.sendGeneral(data, address) ?? false,
    clockLog: deps.logger.withTag("clock"),
    log,
    warnLimited,
  });
  const ingress = new PtpIngress({
    eventPort: options.eventPort,
    generalPort: options.generalPort,
    log,
    limiter,
    onMessage: (source, message, receivedAtNs) => runner.dispatch({ kind: "ptp", source, message, receivedAtNs }, receivedAtNs),
  });
  const stats = (): DaemonStats => ({
    ptp: structuredClone(ingress.stats),
    control: structuredClone(control?.stats ?? { datagrams: 0, ignoredRemote: 0, errors: {} }),
    shm: publisher.counters(),
    announcesSent: runner.announcesSent,
  });
  let control: ControlServer | null = null;

  const closeAll = () => {
    runner.stop();
    ptp?.close();
    control?.close();
    publisher.close();
  };

  try {
    ptp = await openPtpSockets({
      eventPort: options.eventPort,
      generalPort: options.generalPort,
      addresses: options.ptpAddresses,
      interfaces: options.interfaces,
      localClock: traits.localClock,
      readClock: readLocal,
      onDatagram: ingress.onDatagram,
      onError: (role, e) => warnLimited(`socket:${role}`, `PTP ${role} port: ${e.message}`),
      onNotice: (notice) => (notice.level === "warn" ? log.warn(notice.text) : log.info(notice.text)),
      onInterfacesChanged: (statuses) => publisher.setPtpInterfaces(describeInterfaces(statuses)),
    });
    control = await ControlServer.open({
      addresses: options.controlAddresses,
      port: options.controlPort,
      traits,
      allowRemoteControl: options.allowRemoteControl,
      log,
      warnLimited,
      onCommand: (command, shmName) => runner.control(dispatchControl(command, shmName, traits)),
      statusReport: () =>
        encodeStatusReport({
          nqptp: VERSION,
          interfaceVersion: options.interfaceVersion,
          shmName: options.shmName,
          uptimeS: Math.round((Date.now() - startedAtMs) / 1000),
          ptpInterfaces: ptp?.interfaces() ?? null,
          snapshot: runner.snapshot(),
          stats: stats(),
        }),
    });
    publisher.openMain();
    runner.start();
  } catch (error) {
    closeAll();
    throw error;
  }

  log.info(
    `serving shared memory interface ${options.interfaceVersion} at ${options.shmName} (${traits.localClock} clock` +
      `${traits.namedClients ? `, up to ${maxClients} clients` : ""}); ` +
      `PTP on ${ptpWhere(options, ptp)} ports ` +
      `${options.eventPort}/${options.generalPort} (Sync stamped ${STAMPING[ptp.eventStamping]}); ` +
      `control on ${options.controlAddresses.join(",")} port ${options.controlPort}`,
  );

  let stopped = false;
  return {
    options,
    shmName: options.shmName,
    stats,
    ptpInterfaces() {
      const statuses = ptp?.interfaces() ?? null;
      return statuses === null ? null : describeInterfaces(statuses);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      closeAll();
      log.info(`stopped; shared memory removed (${publisher.names().join(", ")})`);
    },
  };
}
