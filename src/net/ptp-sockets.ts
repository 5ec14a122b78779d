// The PTP ports: event (319: Sync) and general (320: Follow_Up, Announce), on every address of
// both families or on the addresses given. Each datagram is handed on with the time it was
// received, read from the interface's local clock.

import type { LocalClock } from "../time/clocks.ts";
import { bindUdp, bindWildcard, type BoundSocket } from "./udp.ts";

export type PtpPortRole = "event" | "general";

export interface PtpDatagram {
  role: PtpPortRole;
  data: Buffer;
  /** The sender's port and address as the socket reports them. */
  port: number;
  address: string;
  /** Reception time in the local clock of the interface (ns). */
  receivedAtNs: bigint;
}

export interface PtpSocketsOptions {
  eventPort: number;
  generalPort: number;
  /** Empty: every address, IPv4 and IPv6. */
  addresses: string[];
  localClock: LocalClock;
  readClock: (clock: LocalClock) => bigint;
  onDatagram: (datagram: PtpDatagram) => void;
  onError: (role: PtpPortRole, error: Error) => void;
}

export interface PtpSockets {
  /** Sends from the general port (wake-up Announces go 320 → 320). */
  sendGeneral(data: Uint8Array, address: string): boolean;
  close(): void;
}

const ROLE_NAMES: Record<PtpPortRole, string> = { event: "PTP event port", general: "PTP general port" };

export async function openPtpSockets(options: PtpSocketsOptions): Promise<PtpSockets> {
  const sockets: BoundSocket[] = [];
  const bind = async (role: PtpPortRole, port: number): Promise<BoundSocket[]> => {
    const request = {
      port,
      role: ROLE_NAMES[role],
      onData: (data: Buffer, senderPort: number, address: string) => {
        const receivedAtNs = options.readClock(options.localClock);
        options.onDatagram({ role, data, port: senderPort, address, receivedAtNs });
      },
      onError: (error: Error) => options.onError(role, error),
    };
    if (options.addresses.length === 0) return [await bindWildcard(request)];
    const bound: BoundSocket[] = [];
    for (const hostname of options.addresses) bound.push(await bindUdp({ ...request, hostname }));
    return bound;
  };
  const closeAll = () => {
    for (const socket of sockets.splice(0)) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  };
  let generals: BoundSocket[];
  try {
    sockets.push(...(await bind("event", options.eventPort)));
    generals = await bind("general", options.generalPort);
    sockets.push(...generals);
  } catch (error) {
    closeAll();
    throw error;
  }

  return {
    sendGeneral(data, address) {
      const ipv4 = !address.includes(":");
      // A dual-stack socket reaches IPv4 hosts through mapped addresses; pick a socket of the
      // right family when bound to specific addresses.
      const socket = generals.find((s) => (s.hostname === "::" ? true : s.hostname.includes(":") !== ipv4)) ?? generals[0]!;
      const target = ipv4 && socket.hostname === "::" ? `::ffff:${address}` : address;
      return socket.send(data, options.generalPort, target);
    },
    close: closeAll,
  };
}
