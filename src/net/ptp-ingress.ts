// From PTP datagram to tracker event (spec section 2): a datagram counts only if its source port
// equals the port it arrived on (IEEE 1588 Annex D: 319→319, 320→320) and its sender is not one
// of this host's own addresses; then it is decoded (never throws) and handed on with its
// kernel receive time. Counts what it drops, and logs decode errors at debug, rate-limited.

import { decode } from "../ptp/decode.ts";
import type { PtpMessage } from "../ptp/types.ts";
import { type LogRateLimiter, suppressedSuffix } from "../util/rate-limit.ts";
import { canonicalSender } from "../rules/ip-address.ts";
import { OwnAddresses } from "./host.ts";
import type { PtpDatagram } from "./ptp-sockets.ts";

export interface IngressStats {
  datagrams: { event: number; general: number };
  ignored: { wrongSourcePort: number; ownAddress: number };
  decodeErrors: Record<string, number>;
}

export interface PtpIngressOptions {
  eventPort: number;
  generalPort: number;
  log: { debug(message: string): void };
  limiter: LogRateLimiter;
  /** A decoded message from `source` (canonical IP text), received at receivedAtNs. */
  onMessage: (source: string, message: PtpMessage, receivedAtNs: bigint) => void;
  /** This host's addresses; tests substitute. */
  own?: OwnAddresses;
}

const SENDER_CACHE_SIZE = 4096;

export class PtpIngress {
  readonly stats: IngressStats = { datagrams: { event: 0, general: 0 }, ignored: { wrongSourcePort: 0, ownAddress: 0 }, decodeErrors: {} };
  private readonly senders = new Map<string, string>();
  private readonly own: OwnAddresses;

  constructor(private readonly options: PtpIngressOptions) {
    this.own = options.own ?? new OwnAddresses();
  }

  /** The canonical text of a socket's sender address, cached (the same few senders repeat). */
  private sender(address: string): string {
    let canonical = this.senders.get(address);
    if (canonical === undefined) {
      if (this.senders.size >= SENDER_CACHE_SIZE) this.senders.clear();
      canonical = canonicalSender(address);
      this.senders.set(address, canonical);
    }
    return canonical;
  }

  readonly onDatagram = ({ role, data, port, address, receivedAtNs }: PtpDatagram): void => {
    const { stats, options } = this;
    stats.datagrams[role]++;
    if (port !== (role === "event" ? options.eventPort : options.generalPort)) {
      stats.ignored.wrongSourcePort++;
      return;
    }
    const source = this.sender(address);
    if (this.own.has(source, Date.now())) {
      stats.ignored.ownAddress++;
      return;
    }
    const result = decode(data);
    if (!result.ok) {
      const kind = result.error.kind;
      stats.decodeErrors[kind] = (stats.decodeErrors[kind] ?? 0) + 1;
      const decision = options.limiter.check(`decode:${kind}`, Date.now());
      if (decision.log) options.log.debug(`ignored a datagram from ${source}: ${kind}: ${result.error.detail}${suppressedSuffix(decision)}`);
      return;
    }
    options.onMessage(source, result.message, receivedAtNs);
  };
}
