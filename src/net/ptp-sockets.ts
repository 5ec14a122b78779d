// The PTP ports: event (319: Sync) and general (320: Follow_Up, Announce), on every address of
// both families, on the addresses given, or (--interface) on the interfaces named. Each datagram
// is handed on with the time it was received, in the interface's local clock, taken by the kernel.
//
// With --interface, interface-bound-sockets.ts does it all (one pair of sockets and one reader
// per interface, waited for when it is not there). Otherwise openPtpSockets puts the parts
// together, in this order:
// - the event port's timestamped sockets and their reader Worker (event-port.ts), which starts
//   while the general port binds on Bun sockets stamped with ioctl(SIOCGSTAMPNS)
//   (stamped-bun-port.ts);
// - if the reader cannot run, the event port on Bun sockets instead;
// - which stamping that gives each port, and the one warning about it (stamping.ts, pure);
// - multicast: ptp4l and other IEEE 1588 masters send to 224.0.1.129 / ff0e::181; when bound to
//   the wildcard, every socket joins those groups on every interface (multicast.ts), again every
//   minute for interfaces that came up later;
// - sending from the general port, on a socket of the right family (send-socket.ts, pure).

import type { PtpInterfaceStatus } from "../control/status.ts";
import type { LocalClock } from "../time/clocks.ts";
import type { EventReader } from "./event-reader.ts";
import { abandonEventReaderPort, settleEventReaderPort, startEventReaderPort } from "./event-port.ts";
import { currentInterfaces, groupMember, keepPtpGroupsJoined, type GroupMember, type KeptMemberships, type NetworkInterface } from "./multicast.ts";
import { openInterfaceBoundSockets } from "./interface-bound-sockets.ts";
import type { ListedInterface, Notice } from "./interface-watch.ts";
import { bindStampedPort, closeBunSockets } from "./stamped-bun-port.ts";
import { pickSendSocket } from "./send-socket.ts";
import { chooseStamping, type EventPortFacts, type EventStamping, type PtpPortRole } from "./stamping.ts";
import type { BoundSocket } from "./udp.ts";

export type { PtpPortRole } from "./stamping.ts";

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
  /** Hear and answer PTP on these interfaces only (not with `addresses`); empty or absent: every interface. */
  interfaces?: readonly string[];
  localClock: LocalClock;
  /** The clock for datagrams with no kernel stamp (the fallbacks above). */
  readClock: (clock: LocalClock) => bigint;
  onDatagram: (datagram: PtpDatagram) => void;
  /** Socket errors, and (once) the news that kernel timestamps are not available here. */
  onError: (role: PtpPortRole, error: Error) => void;
  /** How often to re-join the multicast groups on new interfaces (ms; default 60 s; 0: never). With --interface: at each look instead. */
  multicastRefreshMs?: number;
  /** The event-port reader's Worker script (tests point it elsewhere to exercise the fallback). */
  workerUrl?: URL;
  /** Interface list for multicast, read through any socket `probeFd` (tests substitute). */
  multicastInterfaces?: (probeFd: number) => NetworkInterface[];
  /** --interface: how often the kernel's interface list is read (ms; default 2 s; 0: only at start). */
  interfaceWatchMs?: number;
  /** --interface: the kernel's interface list (tests substitute). */
  listInterfaces?: () => ListedInterface[];
  /** --interface: an interface appeared, went away, cannot be used (log lines). */
  onNotice?: (notice: Notice) => void;
  /** --interface: where PTP is heard, whenever that changes. */
  onInterfacesChanged?: (statuses: PtpInterfaceStatus[]) => void;
}

export interface PtpSockets {
  /** Sends from the general port (wake-up Announces go 320 → 320). */
  sendGeneral(data: Uint8Array, address: string): boolean;
  /**
   * How event-port datagrams are stamped: "worker" is the reader thread (bench/README.md, "Why the
   * event port is read by a Worker"), "ioctl" and "callback" the fallbacks.
   */
  readonly eventStamping: EventStamping;
  /** Multicast memberships held, "fd/interface/group" (empty when bound to addresses). */
  multicastMemberships(): string[];
  /** --interface: each named interface and whether PTP is heard there now; null without it. */
  interfaces(): PtpInterfaceStatus[] | null;
  close(): void;
}

/** Everything open, so that one close() (or a failed start) releases it all. */
class HeldSockets {
  readonly bun: BoundSocket[] = [];
  reader: EventReader | null = null;
  multicast: KeptMemberships | null = null;

  close(): void {
    this.multicast?.stop();
    this.multicast = null;
    this.reader?.close();
    this.reader = null;
    closeBunSockets(this.bun);
  }
}

/** Only the first warning is given: one degraded port is the news; its consequences are not. */
function firstWarningOnly(onError: PtpSocketsOptions["onError"]): (role: PtpPortRole, message: string) => void {
  let warned = false;
  return (role, message) => {
    if (warned) return;
    warned = true;
    onError(role, new Error(message));
  };
}

export async function openPtpSockets(options: PtpSocketsOptions): Promise<PtpSockets> {
  const interfaces = options.interfaces ?? [];
  if (interfaces.length > 0) {
    if (options.addresses.length > 0) throw new Error("PTP sockets: interfaces and addresses cannot be combined");
    return openInterfaceBoundSockets({ ...options, interfaces });
  }
  const held = new HeldSockets();
  const warnOnce = firstWarningOnly(options.onError);
  const stamped = { ...options, warnOnce };
  try {
    const startup = startEventReaderPort(options);
    const general = await bindStampedPort("general", options.generalPort, stamped).catch(async (error: unknown) => {
      await abandonEventReaderPort(startup);
      throw error;
    });
    held.bun.push(...general.sockets);
    const outcome = await settleEventReaderPort(startup);
    const members: GroupMember[] = [];
    let event: EventPortFacts;
    if (outcome.kind === "reader") {
      held.reader = outcome.reader;
      const reader = outcome.reader;
      // The joins happen while the Worker owns these sockets: setsockopt from another thread is
      // fine, and the descriptors stay open until reader.close().
      members.push(...outcome.sockets.map((s) => groupMember(s, () => reader.running)));
      event = { kind: "reader" };
    } else {
      const fallback = await bindStampedPort("event", options.eventPort, stamped);
      held.bun.push(...fallback.sockets);
      members.push(...fallback.sockets.map((s) => groupMember(s)));
      event = { kind: outcome.kind, reason: outcome.reason, ioctlRefusal: fallback.refusal };
    }
    members.push(...general.sockets.map((s) => groupMember(s)));
    const stamping = chooseStamping(event, general.refusal);
    if (stamping.warning !== null) warnOnce(stamping.warning.role, stamping.warning.text);
    if (options.addresses.length === 0) {
      const onProblem = (message: string) => options.onError("general", new Error(message));
      const list = options.multicastInterfaces ?? currentInterfaces;
      held.multicast = keepPtpGroupsJoined(members, list, onProblem, options.multicastRefreshMs ?? 60_000);
    }
    return {
      sendGeneral(data, address) {
        const { socket, target } = pickSendSocket(general.sockets, address);
        return socket.send(data, options.generalPort, target);
      },
      eventStamping: stamping.event,
      multicastMemberships: () => [...(held.multicast?.joined ?? [])],
      interfaces: () => null,
      close: () => held.close(),
    };
  } catch (error) {
    held.close();
    throw error;
  }
}
