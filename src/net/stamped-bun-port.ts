// A PTP port on Bun UDP sockets, one per address (or the wildcard), each datagram stamped through
// ioctl(SIOCGSTAMPNS) (kernel-stamps.ts), or by a clock read in the callback where the kernel
// refuses the ioctl. The general port always lives here; the event port only as a fallback.

import type { LocalClock } from "../time/clocks.ts";
import { LastDatagramStamper } from "./kernel-stamps.ts";
import type { PtpDatagram } from "./ptp-sockets.ts";
import { ROLE_NAMES, type PtpPortRole } from "./stamping.ts";
import { bindUdp, bindWildcard, type BoundSocket } from "./udp.ts";

export interface StampedPortOptions {
  /** Empty: the wildcard of both families. */
  addresses: readonly string[];
  localClock: LocalClock;
  readClock: (clock: LocalClock) => bigint;
  onDatagram: (datagram: PtpDatagram) => void;
  onError: (role: PtpPortRole, error: Error) => void;
  /** Said (at most once, by the caller's rule) when a stamper's ioctl stops working later. */
  warnOnce: (role: PtpPortRole, message: string) => void;
}

export interface StampedPort {
  sockets: BoundSocket[];
  /** Why the kernel refused the ioctl on the first socket that was refused (null: all stamp). */
  refusal: string | null;
}

/** Binds `port` on every address; on failure closes what it had bound and throws the bind error. */
export async function bindStampedPort(role: PtpPortRole, port: number, options: StampedPortOptions): Promise<StampedPort> {
  const sockets: BoundSocket[] = [];
  const refusals: string[] = [];
  try {
    for (const hostname of options.addresses.length === 0 ? [null] : options.addresses) {
      const { socket, refusal } = await bindOne(role, port, hostname, options);
      sockets.push(socket);
      if (refusal !== null) refusals.push(refusal);
    }
  } catch (error) {
    closeBunSockets(sockets);
    throw error;
  }
  return { sockets, refusal: refusals[0] ?? null };
}

async function bindOne(role: PtpPortRole, port: number, hostname: string | null, options: StampedPortOptions) {
  let stamper: LastDatagramStamper | null = null;
  const request = {
    port,
    role: ROLE_NAMES[role],
    onData: (data: Buffer, senderPort: number, address: string) => {
      const receivedAtNs = stamper ? stamper.stamp() : options.readClock(options.localClock);
      const kernelStamp = stamper?.usingKernelStamps ?? false;
      options.onDatagram({ role, data, port: senderPort, address, receivedAtNs, kernelStamp });
    },
    onError: (error: Error) => options.onError(role, error),
  };
  const socket = hostname === null ? await bindWildcard(request) : await bindUdp({ ...request, hostname });
  stamper = new LastDatagramStamper(socket.fd, options.localClock, options.readClock, (why) =>
    options.warnOnce(role, `kernel receive timestamps stopped working on the ${ROLE_NAMES[role]} (${why}); stamping in JavaScript`),
  );
  return { socket, refusal: stamper.prime() };
}

export function closeBunSockets(sockets: BoundSocket[]): void {
  for (const socket of sockets.splice(0)) {
    try {
      socket.close();
    } catch {
      // already closed
    }
  }
}
