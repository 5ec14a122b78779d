// The PTP ports: event (319: Sync) and general (320: Follow_Up, Announce), on every address of
// both families or on the addresses given. Each datagram is handed on with the time it was
// received, in the interface's local clock, taken by the kernel.
//
// The event port is read by a Worker (poll()/recvmsg() on a libc socket with SO_TIMESTAMPNS: a
// kernel stamp per Sync), the general port by a Bun socket stamped with ioctl(SIOCGSTAMPNS), with
// fallbacks said once (and, once, event datagrams that came without their kernel stamp). Why, with the measurements: bench/README.md, "Why the event port is read by a Worker".
//
// Multicast: ptp4l and other IEEE 1588 masters send to 224.0.1.129 / ff0e::181; when bound to
// the wildcard, every socket joins those groups on every interface (multicast.ts), again every
// minute for interfaces that came up later.

import type { LocalClock } from "../time/clocks.ts";
import { startEventReader, type EventReader } from "./event-reader.ts";
import { LastDatagramStamper } from "./kernel-stamps.ts";
import { PtpGroupMembership, currentInterfaces, type GroupMember, type NetworkInterface } from "./multicast.ts";
import {
  TimestampsUnavailable,
  bindTimestampedSocket,
  bindTimestampedWildcard,
  closeTimestampedSocket,
  type TimestampedSocket,
} from "./timestamped-socket.ts";
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
  /** true when receivedAtNs is the kernel's receive time, false when a clock read in JavaScript. */
  kernelStamp: boolean;
}

export interface PtpSocketsOptions {
  eventPort: number;
  generalPort: number;
  /** Empty: every address, IPv4 and IPv6. */
  addresses: string[];
  localClock: LocalClock;
  /** The clock for datagrams with no kernel stamp (the fallbacks above). */
  readClock: (clock: LocalClock) => bigint;
  onDatagram: (datagram: PtpDatagram) => void;
  /** Socket errors, and (once) the news that kernel timestamps are not available here. */
  onError: (role: PtpPortRole, error: Error) => void;
  /** How often to re-join the multicast groups on new interfaces (ms; default 60 s; 0: never). */
  multicastRefreshMs?: number;
  /** The event-port reader's Worker script (tests point it elsewhere to exercise the fallback). */
  workerUrl?: URL;
  /** Interface list for multicast, read through any socket `probeFd` (tests substitute). */
  interfaces?: (probeFd: number) => NetworkInterface[];
}

export interface PtpSockets {
  /** Sends from the general port (wake-up Announces go 320 → 320). */
  sendGeneral(data: Uint8Array, address: string): boolean;
  /** How event-port datagrams are stamped: "worker" is design (b) above, "ioctl" and "callback" the fallbacks. */
  readonly eventStamping: "worker" | "ioctl" | "callback";
  /** Multicast memberships held, "fd/interface/group" (empty unless bound to the wildcard). */
  multicastMemberships(): string[];
  close(): void;
}

const ROLE_NAMES: Record<PtpPortRole, string> = { event: "PTP event port", general: "PTP general port" };

export async function openPtpSockets(options: PtpSocketsOptions): Promise<PtpSockets> {
  const bunSockets: BoundSocket[] = [];
  let reader: EventReader | null = null;
  let refreshTimer: ReturnType<typeof setInterval> | null = null;
  let warned = false;
  let warnedUnstamped = false;
  const warnOnce = (role: PtpPortRole, message: string) => {
    if (warned) return;
    warned = true;
    options.onError(role, new Error(message));
  };
  const closeAll = () => {
    if (refreshTimer !== null) clearInterval(refreshTimer);
    refreshTimer = null;
    reader?.close();
    reader = null;
    for (const socket of bunSockets.splice(0)) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  };

  /** Bun sockets whose datagrams are stamped through ioctl(SIOCGSTAMPNS), or by the clock if refused. */
  const bindBun = async (role: PtpPortRole, port: number) => {
    const sockets: BoundSocket[] = [];
    const refusals: string[] = [];
    const hostnames = options.addresses.length === 0 ? [null] : options.addresses;
    for (const hostname of hostnames) {
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
      sockets.push(socket);
      bunSockets.push(socket);
      stamper = new LastDatagramStamper(socket.fd, options.localClock, options.readClock, (why) =>
        warnOnce(role, `kernel receive timestamps stopped working on the ${ROLE_NAMES[role]} (${why}); stamping in JavaScript`),
      );
      const refused = stamper.prime();
      if (refused !== null) refusals.push(refused);
    }
    return { sockets, refusal: refusals[0] ?? null };
  };

  /** The event port on timestamped libc sockets, or why not (nothing left open) if SO_TIMESTAMPNS is refused. */
  const bindTimestamped = (): { sockets: TimestampedSocket[] } | { unavailable: string } => {
    const sockets: TimestampedSocket[] = [];
    try {
      if (options.addresses.length === 0) sockets.push(bindTimestampedWildcard({ port: options.eventPort, role: ROLE_NAMES.event }));
      for (const hostname of options.addresses) {
        sockets.push(bindTimestampedSocket({ hostname, port: options.eventPort, role: ROLE_NAMES.event }));
      }
      return { sockets };
    } catch (error) {
      for (const socket of sockets) closeTimestampedSocket(socket);
      if (error instanceof TimestampsUnavailable) return { unavailable: error.message };
      throw error;
    }
  };

  const members: GroupMember[] = [];
  const join = (sockets: { fd: number; hostname: string }[], isOpen?: () => boolean) => {
    for (const socket of sockets) members.push({ fd: socket.fd, family: socket.hostname.includes(":") ? 6 : 4, isOpen });
  };
  let generalSockets: BoundSocket[];
  let eventStamping: PtpSockets["eventStamping"] = "worker";
  try {
    const timestamped = bindTimestamped();
    let unavailable: string | null = "unavailable" in timestamped ? timestamped.unavailable : null;
    let starting: Promise<EventReader> | null = null;
    if ("sockets" in timestamped) {
      // Multicast joins happen below, while the Worker owns the sockets: setsockopt from
      // another thread is fine, and the descriptors stay open until reader.close().
      join(timestamped.sockets, () => reader?.running ?? false);
      starting = startEventReader({
        sockets: timestamped.sockets,
        localClock: options.localClock,
        workerUrl: options.workerUrl,
        onDatagram: (d) => {
          // The socket option was accepted, yet this datagram came without its stamp: the
          // Worker read the clock instead. Said once, so that it never goes unnoticed.
          if (!d.kernelStamp && !warnedUnstamped) {
            warnedUnstamped = true;
            options.onError(
              "event",
              new Error(
                `kernel receive timestamps are missing on the PTP event port (a datagram from ${d.address} came without SCM_TIMESTAMPNS); ` +
                  "such datagrams are stamped when the reader gets them, which can be late under load: offsets will be less accurate",
              ),
            );
          }
          options.onDatagram({
            role: "event",
            data: Buffer.from(d.data.buffer, d.data.byteOffset, d.data.byteLength),
            port: d.port,
            address: d.address,
            receivedAtNs: d.receivedAtNs,
            kernelStamp: d.kernelStamp,
          });
        },
        onError: (error) => options.onError("event", error),
      });
      // Nothing may be left unhandled if the general port fails while the Worker loads.
      starting.catch(() => {});
    }
    // The general port binds while the Worker loads.
    let general: Awaited<ReturnType<typeof bindBun>>;
    try {
      general = await bindBun("general", options.generalPort);
    } catch (error) {
      if (starting)
        await starting.then(
          (r) => r.close(),
          () => {},
        );
      throw error;
    }
    generalSockets = general.sockets;
    join(generalSockets);
    if (starting) {
      try {
        reader = await starting;
      } catch (error) {
        // startEventReader closed the sockets; forget their memberships.
        members.splice(0, members.length - generalSockets.length);
        unavailable = `the event-port reader did not start: ${(error as Error).message}`;
      }
    }
    if (reader === null) {
      // Fallback: the event port on Bun sockets, stamped through the ioctl if it works.
      const events = await bindBun("event", options.eventPort);
      join(events.sockets);
      eventStamping = events.refusal === null ? "ioctl" : "callback";
      warnOnce(
        "event",
        `kernel receive timestamps per datagram are not available (${unavailable}); stamping PTP event messages ` +
          (events.refusal === null
            ? "with ioctl(SIOCGSTAMPNS) instead, which is late when several arrive together"
            : `in JavaScript instead (${events.refusal}), which can be milliseconds late under load`) +
          ": offsets will be less accurate",
      );
    } else if (general.refusal !== null) {
      warnOnce("general", `kernel receive timestamps are not available on the PTP general port (${general.refusal}); stamping there in JavaScript`);
    }
  } catch (error) {
    closeAll();
    throw error;
  }

  // ---- multicast, for sockets bound to the wildcard ----
  const membership =
    options.addresses.length === 0
      ? new PtpGroupMembership(members, options.interfaces ?? currentInterfaces, (message) => options.onError("general", new Error(message)))
      : null;
  if (membership !== null) {
    membership.refresh();
    const every = options.multicastRefreshMs ?? 60_000;
    if (every > 0) {
      refreshTimer = setInterval(() => membership.refresh(), every);
      refreshTimer.unref();
    }
  }

  return {
    sendGeneral(data, address) {
      const ipv4 = !address.includes(":");
      // A dual-stack socket reaches IPv4 hosts through mapped addresses; pick a socket of the
      // right family when bound to specific addresses.
      const socket = generalSockets.find((s) => (s.hostname === "::" ? true : s.hostname.includes(":") !== ipv4)) ?? generalSockets[0]!;
      const target = ipv4 && socket.hostname === "::" ? `::ffff:${address}` : address;
      return socket.send(data, options.generalPort, target);
    },
    eventStamping,
    multicastMemberships: () => [...(membership?.joined ?? [])],
    close: closeAll,
  };
}
