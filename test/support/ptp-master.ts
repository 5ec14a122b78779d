// A PTP master simulator for end-to-end tests: sends Announce, two-step Sync and Follow_Up over
// real UDP from its own address, with a known offset from this host's clock, and records what
// the daemon sends back (the wake-up Announces of spec section 7).

import { encodeAnnounce, encodeFollowUp, encodeSync } from "../../src/ptp/encode.ts";
import { decode } from "../../src/ptp/decode.ts";
import { FLAG_TWO_STEP, type AnnounceMessage } from "../../src/ptp/types.ts";
import { ptpTimestamp } from "./timestamp.ts";

export interface MasterOptions {
  /** Address the simulator sends from (e.g. 127.0.0.2: not one of the host's own addresses). */
  address: string;
  /** Where the daemon listens. */
  target: string;
  eventPort: number;
  generalPort: number;
  clockIdentity: bigint;
  /** master time − local time (ns, signed). */
  offsetNs: bigint;
  /** The local clock the offset is relative to (CLOCK_REALTIME for interface 5). */
  clock: () => bigint;
  grandmasterPriority1?: number;
  grandmasterIdentity?: bigint;
  announceIntervalMs?: number;
  /** 0: no timer, Sync/Follow_Up pairs go only when sendSyncPair() is called. */
  syncIntervalMs?: number;
  /** correctionField values (ns) put in Sync and Follow_Up; preciseOriginTimestamp is reduced to match. */
  syncCorrectionNs?: bigint;
  followUpCorrectionNs?: bigint;
  /** Send Announces only (an Apple clock that has gone quiet). */
  silent?: boolean;
  /** Send each Follow_Up before its Sync (they travel on two ports: either may arrive first). */
  followUpFirst?: boolean;
  /**
   * Before the first Sync, send one octet from each socket to the daemon (which rejects it as
   * truncated), so that the first Sync does not leave hundreds of µs after its timestamp.
   */
  warmUp?: boolean;
}

export interface ReceivedAnnounce {
  announce: AnnounceMessage;
  fromPort: number;
  atMs: number;
}

export interface PtpMaster {
  readonly options: MasterOptions;
  /** Announces received from the daemon on our general port. */
  readonly received: ReceivedAnnounce[];
  setPriority1(priority1: number): void;
  setSilent(silent: boolean): void;
  /** Sends one Sync/Follow_Up pair now. */
  sendSyncPair(): void;
  stop(): void;
}

export async function startPtpMaster(options: MasterOptions): Promise<PtpMaster> {
  const received: ReceivedAnnounce[] = [];
  // A daemon that stops while we still send answers with ICMP port unreachable (ECONNREFUSED on
  // the next send): expected in tests, not an error of theirs.
  const ignoreRefused = (...args: unknown[]) => {
    const error = args.find((a) => a instanceof Error) as (Error & { code?: string }) | undefined;
    if (error && error.code !== "ECONNREFUSED") console.error(`ptp master simulator: ${error.message}`);
  };
  const event = await Bun.udpSocket({ hostname: options.address, port: options.eventPort, socket: { error: ignoreRefused } });
  const general = await Bun.udpSocket({
    hostname: options.address,
    port: options.generalPort,
    socket: {
      error: ignoreRefused,
      data(_s, data, fromPort) {
        const result = decode(data);
        if (result.ok && result.message.kind === "announce") received.push({ announce: result.message, fromPort, atMs: performance.now() });
      },
    },
  });

  let priority1 = options.grandmasterPriority1 ?? 128;
  let silent = options.silent ?? false;
  let announceSequence = 0;
  let syncSequence = 0;
  const common = {
    domainNumber: 0,
    clockIdentity: options.clockIdentity,
    sourcePortNumber: 1,
  };
  const syncCorrection = options.syncCorrectionNs ?? 0n;
  const followUpCorrection = options.followUpCorrectionNs ?? 0n;

  const sendAnnounce = () => {
    const bytes = encodeAnnounce({
      ...common,
      flagField: 0,
      sequenceId: announceSequence++ & 0xffff,
      logMessageInterval: -2,
      originTimestamp: ptpTimestamp(options.clock() + options.offsetNs),
      currentUtcOffset: 37,
      grandmasterPriority1: priority1,
      grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
      grandmasterPriority2: 128,
      grandmasterIdentity: options.grandmasterIdentity ?? options.clockIdentity,
      stepsRemoved: 0,
      timeSource: 0xa0,
    });
    general.send(bytes, options.generalPort, options.target);
  };

  const syncMessage = (sequenceId: number) =>
    encodeSync({
      ...common,
      flagField: FLAG_TWO_STEP,
      sequenceId,
      logMessageInterval: -3,
      correctionField: syncCorrection << 16n,
      originTimestamp: { seconds: 0n, nanoseconds: 0 },
    });
  const followUpMessage = (sequenceId: number, departureNs: bigint) =>
    encodeFollowUp({
      ...common,
      flagField: 0,
      sequenceId,
      logMessageInterval: -3,
      correctionField: followUpCorrection << 16n,
      preciseOriginTimestamp: ptpTimestamp(departureNs - syncCorrection - followUpCorrection),
    });
  // The encoders compiled before the first Sync's timestamp is taken.
  syncMessage(0);
  followUpMessage(0, options.clock());
  if (options.warmUp) {
    event.send(new Uint8Array(1), options.eventPort, options.target);
    general.send(new Uint8Array(1), options.generalPort, options.target);
  }

  const sendSyncPair = () => {
    if (silent) return;
    const sequenceId = syncSequence++ & 0xffff;
    const sync = syncMessage(sequenceId);
    // The master's time when the Sync leaves: preciseOriginTimestamp + corrections (IEEE 1588 11.3).
    const departureNs = options.clock() + options.offsetNs;
    if (options.followUpFirst) {
      general.send(followUpMessage(sequenceId, departureNs), options.generalPort, options.target);
      event.send(sync, options.eventPort, options.target);
    } else {
      event.send(sync, options.eventPort, options.target);
      general.send(followUpMessage(sequenceId, departureNs), options.generalPort, options.target);
    }
  };

  sendAnnounce();
  const announceTimer = setInterval(sendAnnounce, options.announceIntervalMs ?? 250);
  const syncTimer = options.syncIntervalMs === 0 ? undefined : setInterval(sendSyncPair, options.syncIntervalMs ?? 125);

  return {
    options,
    received,
    setPriority1: (p) => {
      priority1 = p;
    },
    setSilent: (s) => {
      silent = s;
    },
    sendSyncPair,
    stop() {
      clearInterval(announceTimer);
      clearInterval(syncTimer);
      event.close();
      general.close();
    },
  };
}
