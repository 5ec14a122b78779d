// Both PTP ports on one network interface (--interface): two libc sockets bound to it with
// SO_BINDTODEVICE before bind() (so that each interface has its own pair on the same ports, and
// a port another daemon holds there still fails to bind: src/sys/linux.ts), read together by one
// reader Worker (event-reader.ts) with a kernel stamp per datagram, joined to the PTP multicast
// groups on that interface only, and sending wake-up Announces out of it from the general port.

import { NqptpError } from "../errors.ts";
import { allocateNative } from "../sys/libc.ts";
import { SOCKET_ABI } from "../sys/linux.ts";
import { interfaceFlags, sendDatagram } from "../sys/posix.ts";
import type { LocalClock } from "../time/clocks.ts";
import { readerDatagrams } from "./event-port.ts";
import { startEventReader, type EventReader } from "./event-reader.ts";
import { PtpGroupMembership, groupMember } from "./multicast.ts";
import type { PtpDatagram } from "./ptp-sockets.ts";
import { pickSendSocket } from "./send-socket.ts";
import { ROLE_NAMES, type PtpPortRole } from "./stamping.ts";
import { bindTimestampedWildcard, closeTimestampedSocket, type TimestampedSocket } from "./timestamped-socket.ts";
import { addressBytes, encodeSockaddr } from "./timestamps.ts";

export interface InterfacePortsOptions {
  name: string;
  index: number;
  eventPort: number;
  generalPort: number;
  localClock: LocalClock;
  /** Ask for SO_TIMESTAMPNS (false where the kernel refuses it: the reader then reads the clock). */
  timestamps: boolean;
  onDatagram: (datagram: PtpDatagram) => void;
  onError: (role: PtpPortRole, error: Error) => void;
  workerUrl?: URL;
}

export interface InterfacePorts {
  readonly name: string;
  readonly index: number;
  /** Sends from this interface's general port; throws what sendto() refused. */
  sendGeneral(data: Uint8Array, address: string): void;
  /** Joins the PTP groups on this interface where not yet joined (IPv6 may come later than the interface). */
  refreshMulticast(): void;
  /** "fd/interface/group" for each membership held. */
  memberships(): string[];
  /** Stops the reader, which closes both sockets before this returns. Idempotent. */
  close(): void;
}

/** The sockets' order in the reader: the datagram's `socket` index says which port it came in on. */
const ROLES: readonly PtpPortRole[] = ["event", "general"];

/** Opens both ports on the interface. Throws NqptpError (bind errors, no such interface, reader failed); nothing stays open then. */
export async function openInterfacePorts(options: InterfacePortsOptions): Promise<InterfacePorts> {
  const { name, index } = options;
  const sockets = bindBoth(options);
  let reader: EventReader;
  try {
    reader = await startEventReader({
      sockets,
      localClock: options.localClock,
      workerUrl: options.workerUrl,
      onDatagram: readerDatagrams({
        roles: ROLES,
        stampsAsked: options.timestamps,
        interfaceName: name,
        onDatagram: options.onDatagram,
        onError: options.onError,
      }),
      onError: (error) => options.onError("event", new Error(`interface ${name}: ${error.message}`)),
    });
  } catch (error) {
    // startEventReader closed the sockets.
    throw new NqptpError("bind-failed", `cannot read PTP on interface ${name}: ${(error as Error).message}`, { cause: error });
  }
  const running = () => reader.running;
  const membership = new PtpGroupMembership(
    sockets.map((s) => groupMember(s, running)),
    (probeFd) => {
      const flags = interfaceFlags(probeFd, name);
      return flags === null ? [] : [{ name, index, flags }];
    },
    (message) => options.onError("general", new Error(message)),
  );
  membership.refresh();
  const general = sockets[1]!;
  const sockaddr = allocateNative(SOCKET_ABI.sockaddrIn6.size);
  return {
    name,
    index,
    sendGeneral(data, address) {
      if (!reader.running) throw new Error(`the PTP sockets on interface ${name} are closed`);
      const { target } = pickSendSocket([general], address);
      const bytes = addressBytes(target);
      if (bytes === null) throw new Error(`${JSON.stringify(address)} is not an IP address`);
      const length = encodeSockaddr(sockaddr.view, bytes.family, bytes.bytes, options.generalPort);
      sendDatagram(general.fd, data, sockaddr, length, `${target} port ${options.generalPort} on ${name}`);
    },
    refreshMulticast: () => membership.refresh(),
    memberships: () => [...membership.joined],
    close: () => reader.close(),
  };
}

/** The event and general sockets bound to the interface, or the first error (nothing left open). */
function bindBoth(options: InterfacePortsOptions): TimestampedSocket[] {
  const sockets: TimestampedSocket[] = [];
  try {
    for (const [role, port] of [
      ["event", options.eventPort],
      ["general", options.generalPort],
    ] as const) {
      sockets.push(bindTimestampedWildcard({ port, role: ROLE_NAMES[role], device: options.name, timestamps: options.timestamps }));
    }
    return sockets;
  } catch (error) {
    for (const socket of sockets) closeTimestampedSocket(socket);
    throw error;
  }
}
