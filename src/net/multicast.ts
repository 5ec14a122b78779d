// Joining the PTP multicast groups (IEEE 1588-2008 Annex D.3 and E.3: 224.0.1.129 for IPv4,
// FF0X::181 for IPv6, where ptp4l's default scope X is E, global) on every interface that is not
// loopback and can multicast, for the wildcard-bound PTP sockets.
//
// Without a membership the interface drops the group's traffic: only unicast arrives. Measured
// here (Linux 6.18): a dual-stack AF_INET6 socket that had not joined received none of the IPv4
// group's traffic even though another socket had joined on that interface (an AF_INET socket in
// the same place did receive it). So every socket joins, itself, by interface index (ip_mreqn,
// ipv6_mreq): that needs no route, whereas joining with no interface or by address fails with
// ENODEV in a network namespace without a default route.
// The peer-delay group (224.0.0.107, FF02::6B) is not joined: nqptp never uses peer delay.

import { allocateNative } from "../sys/libc.ts";
import { IFF_LOOPBACK, IFF_MULTICAST, IP_ADD_MEMBERSHIP, IPPROTO_IP, IPPROTO_IPV6, IPV6_JOIN_GROUP, SOCKET_ABI } from "../sys/linux.ts";
import { SysError, interfaceFlags, listInterfaces, setSocketOptionBytes } from "../sys/posix.ts";
import { addressBytes } from "./timestamps.ts";

export const PTP_PRIMARY_GROUP_V4 = "224.0.1.129";
export const PTP_PRIMARY_GROUP_V6 = "ff0e::181";

export interface NetworkInterface {
  name: string;
  index: number;
  /** IFF_* flags. */
  flags: number;
}

export interface Membership {
  interfaceName: string;
  interfaceIndex: number;
  family: 4 | 6;
  group: string;
}

/**
 * Every interface of this network namespace with its flags: if_nameindex() and SIOCGIFFLAGS
 * (through `probeFd`, any socket). Not node:os networkInterfaces(): that lists only interfaces
 * that are up, have carrier and have an address, so a link whose carrier comes a moment after
 * the daemon starts (a veth, a cable, Wi-Fi associating) would be missed. A membership can be
 * taken on an interface that is down or unaddressed, and it lasts through down/up.
 */
export function currentInterfaces(probeFd: number): NetworkInterface[] {
  const out: NetworkInterface[] = [];
  for (const { index, name } of listInterfaces()) {
    const flags = interfaceFlags(probeFd, name);
    if (flags !== null) out.push({ name, index, flags });
  }
  return out;
}

/**
 * The memberships a socket of `socketFamily` needs: on every interface that is not loopback and
 * can multicast, the IPv4 group, and on a dual-stack IPv6 socket also the IPv6 group. In
 * interface-index order, so joins happen in a stable order.
 */
export function plannedMemberships(interfaces: NetworkInterface[], socketFamily: 4 | 6): Membership[] {
  const out: Membership[] = [];
  const usable = interfaces.filter((i) => (i.flags & IFF_LOOPBACK) === 0 && (i.flags & IFF_MULTICAST) !== 0);
  for (const i of [...usable].sort((a, b) => a.index - b.index)) {
    out.push({ interfaceName: i.name, interfaceIndex: i.index, family: 4, group: PTP_PRIMARY_GROUP_V4 });
    if (socketFamily === 6) out.push({ interfaceName: i.name, interfaceIndex: i.index, family: 6, group: PTP_PRIMARY_GROUP_V6 });
  }
  return out;
}

/** "unavailable": the interface is gone, or has no IPv4/IPv6 stack (e.g. IPv6 switched off on it). */
export type JoinOutcome = "joined" | "already" | "unavailable" | { error: SysError };

const mreq = allocateNative(Math.max(SOCKET_ABI.ipMreqn.size, SOCKET_ABI.ipv6Mreq.size));

/** setsockopt(IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP) for one interface, by index. */
export function joinGroup(fd: number, membership: Membership): JoinOutcome {
  const ifindex = membership.interfaceIndex;
  const group = addressBytes(membership.group)!;
  const view = mreq.view;
  for (let i = 0; i < view.byteLength; i++) view.setUint8(i, 0);
  try {
    if (membership.family === 4) {
      const m = SOCKET_ABI.ipMreqn;
      for (const [i, b] of group.bytes.entries()) view.setUint8(m.multiaddr + i, b);
      view.setInt32(m.ifindex, ifindex, true);
      setSocketOptionBytes(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq, m.size, `IP_ADD_MEMBERSHIP ${membership.group} on ${membership.interfaceName}`);
    } else {
      const m = SOCKET_ABI.ipv6Mreq;
      for (const [i, b] of group.bytes.entries()) view.setUint8(m.multiaddr + i, b);
      view.setInt32(m.ifindex, ifindex, true);
      setSocketOptionBytes(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, mreq, m.size, `IPV6_ADD_MEMBERSHIP ${membership.group} on ${membership.interfaceName}`);
    }
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    if (error.code === "EADDRINUSE") return "already";
    if (error.code === "ENODEV" || error.code === "EADDRNOTAVAIL" || error.code === "ENXIO") return "unavailable";
    return { error };
  }
  return "joined";
}

export interface GroupMember {
  fd: number;
  family: 4 | 6;
  /** false once the descriptor is closed (it is then skipped: its number may be reused). */
  isOpen?: () => boolean;
}

/** A socket as a member: its family from the address it is bound to. */
export function groupMember(socket: { fd: number; hostname: string }, isOpen?: () => boolean): GroupMember {
  return { fd: socket.fd, family: socket.hostname.includes(":") ? 6 : 4, isOpen };
}

/**
 * Keeps the given sockets in the PTP groups on every interface: joins now, and again whenever
 * refresh() is called (interfaces that appeared since, e.g. Wi-Fi coming up after the daemon).
 * Failures other than "already a member" or "interface gone" are reported once per membership
 * (ENOBUFS, for example: net.ipv4.igmp_max_memberships, 20 by default, limits a socket's groups).
 */
export class PtpGroupMembership {
  private readonly reported = new Set<string>();
  readonly joined = new Set<string>();

  constructor(
    private readonly members: GroupMember[],
    private readonly interfaces: (probeFd: number) => NetworkInterface[],
    private readonly onProblem: (message: string) => void,
  ) {}

  refresh(): void {
    const open = this.members.filter((m) => !m.isOpen || m.isOpen());
    if (open.length === 0) return;
    let table: NetworkInterface[];
    try {
      table = this.interfaces(open[0]!.fd);
    } catch (error) {
      this.report("list", `cannot list network interfaces: ${(error as Error).message}`);
      return;
    }
    for (const member of open) {
      for (const membership of plannedMemberships(table, member.family)) {
        const key = `${member.fd}/${membership.interfaceName}/${membership.group}`;
        const outcome = joinGroup(member.fd, membership);
        if (outcome === "joined" || outcome === "already") this.joined.add(key);
        else if (outcome === "unavailable") this.joined.delete(key);
        else {
          this.report(
            key,
            `cannot join PTP multicast group ${membership.group} on ${membership.interfaceName}: ${outcome.error.message}; only unicast PTP will arrive there`,
          );
        }
      }
    }
  }

  private report(key: string, message: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.onProblem(message);
  }
}

/** Memberships being kept: joined now, and again on a timer (interfaces that came up later). */
export interface KeptMemberships {
  /** "fd/interface/group" for each membership held. */
  readonly joined: ReadonlySet<string>;
  /** Ends the timer; the memberships go when their sockets close. */
  stop(): void;
}

/** Joins `members` to the PTP groups now, then every `everyMs` (0: never again). The timer keeps no process alive. */
export function keepPtpGroupsJoined(
  members: GroupMember[],
  interfaces: (probeFd: number) => NetworkInterface[],
  onProblem: (message: string) => void,
  everyMs: number,
): KeptMemberships {
  const membership = new PtpGroupMembership(members, interfaces, onProblem);
  membership.refresh();
  let timer: ReturnType<typeof setInterval> | null = null;
  if (everyMs > 0) {
    timer = setInterval(() => membership.refresh(), everyMs);
    timer.unref();
  }
  return {
    joined: membership.joined,
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
}
