// Kernel receive timestamps, the pure parts: finding SCM_TIMESTAMPNS in a recvmsg() control
// buffer, turning a CLOCK_REALTIME stamp into the interface's local clock, and the socket
// addresses recvmsg() fills in and bind() takes. No FFI and no clock reads here: callers pass
// the bytes and the clock readings in (tests feed them by hand).

import type { LocalClock } from "../time/clocks.ts";
import { NS_PER_SECOND } from "../time/ns.ts";
import { parseAddress } from "../rules/ip-address.ts";
import { AF_INET, AF_INET6, SCM_TIMESTAMPNS, SOCKET_ABI, SOL_SOCKET } from "../sys/linux.ts";

const CMSG = SOCKET_ABI.cmsghdr;
const IN = SOCKET_ABI.sockaddrIn;
const IN6 = SOCKET_ABI.sockaddrIn6;

const alignCmsg = (n: number) => (n + CMSG.align - 1) & ~(CMSG.align - 1);

/**
 * The receive time carried by a SOL_SOCKET/SCM_TIMESTAMPNS control message (a struct timespec
 * of CLOCK_REALTIME), in ns; null when the control data holds none. Walks the chain the way
 * CMSG_FIRSTHDR/CMSG_NXTHDR do and never reads past `length` (malformed lengths end the walk).
 */
export function timestampFromControl(control: DataView, length: number): bigint | null {
  const end = Math.min(length, control.byteLength);
  let at = 0;
  while (at + CMSG.size <= end) {
    const cmsgLength = Number(control.getBigUint64(at + CMSG.length, true));
    if (cmsgLength < CMSG.size || at + cmsgLength > end) return null;
    const level = control.getInt32(at + CMSG.level, true);
    const type = control.getInt32(at + CMSG.type, true);
    if (level === SOL_SOCKET && type === SCM_TIMESTAMPNS && cmsgLength >= CMSG.size + 16) {
      const seconds = control.getBigInt64(at + CMSG.size, true);
      const nanoseconds = control.getBigInt64(at + CMSG.size + 8, true);
      return seconds * NS_PER_SECOND + nanoseconds;
    }
    at += alignCmsg(cmsgLength);
  }
  return null;
}

/**
 * Three clock readings taken back to back: CLOCK_REALTIME, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME.
 * The midpoint of the two realtime readings is the realtime instant of the raw reading (to
 * within half their spread, ~20 ns), so realtime − raw at that instant is known.
 */
export interface ClockPair {
  realtimeBeforeNs: bigint;
  monotonicRawNs: bigint;
  realtimeAfterNs: bigint;
}

/**
 * A CLOCK_REALTIME kernel stamp in the interface's local clock. For CLOCK_MONOTONIC_RAW the two
 * clocks' difference is taken from a fresh ClockPair: the clocks run at rates up to ~500 ppm
 * apart (NTP slews realtime), so the pair must be read close to the stamp (microseconds later
 * costs nothing; a second later could cost 0.5 ms), and never from Bun.nanoseconds(), which
 * follows CLOCK_MONOTONIC.
 */
export function stampToLocalClock(stampRealtimeNs: bigint, clock: LocalClock, pair: ClockPair | null): bigint {
  if (clock === "realtime") return stampRealtimeNs;
  if (pair === null) throw new Error("a CLOCK_MONOTONIC_RAW stamp needs a clock pair");
  const realtimeMidpointNs = (pair.realtimeBeforeNs + pair.realtimeAfterNs) / 2n;
  return stampRealtimeNs - (realtimeMidpointNs - pair.monotonicRawNs);
}

export interface SocketAddress {
  /** Text as a Bun socket would report it: "10.0.0.5", "::ffff:10.0.0.5", "fe80::1". */
  address: string;
  port: number;
}

/**
 * A struct sockaddr_in or sockaddr_in6 as recvmsg() wrote it (`length` = msg_namelen); null for
 * another family or a short name. IPv4-mapped senders on a dual-stack socket keep their
 * "::ffff:a.b.c.d" form, as Bun reports them; the daemon's canonical form comes later.
 */
export function decodeSockaddr(view: DataView, length: number): SocketAddress | null {
  if (length < 2) return null;
  const family = view.getUint16(0, true);
  if (family === AF_INET && length >= IN.size - 8) {
    const a = IN.addr;
    return {
      address: `${view.getUint8(a)}.${view.getUint8(a + 1)}.${view.getUint8(a + 2)}.${view.getUint8(a + 3)}`,
      port: view.getUint16(IN.port, false),
    };
  }
  if (family === AF_INET6 && length >= IN6.size) {
    const groups: number[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(IN6.addr + 2 * i, false));
    const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
    const address = mapped
      ? `::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`
      : (parseAddress(groups.map((g) => g.toString(16)).join(":"))?.text ?? "::");
    return { address, port: view.getUint16(IN6.port, false) };
  }
  return null;
}

/** The bytes of an IP address given as text (an optional %zone is split off); null if not an IP. */
export function addressBytes(text: string): { family: 4 | 6; bytes: Uint8Array; zone: string | null } | null {
  const zoneAt = text.indexOf("%");
  const zone = zoneAt > 0 ? text.slice(zoneAt + 1) : null;
  const parsed = parseAddress(text);
  if (parsed === null) return null;
  // parseAddress turns "::ffff:a.b.c.d" into its IPv4 text; "::" and other IPv6 stay IPv6.
  const isV4Text = !text.includes(":");
  if (parsed.family === 4 && isV4Text) {
    return { family: 4, bytes: Uint8Array.from(parsed.text.split(".").map(Number)), zone: null };
  }
  const bytes = new Uint8Array(16);
  if (parsed.family === 4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(parsed.text.split(".").map(Number), 12);
    return { family: 6, bytes, zone };
  }
  // Canonical IPv6 text: hex groups with at most one "::".
  const [head = "", tail = ""] = parsed.text.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = parsed.text.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const groups = [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  groups.forEach((g, i) => {
    const value = parseInt(g, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return { family: 6, bytes, zone };
}

/**
 * A struct sockaddr_in/sockaddr_in6 for bind(), written into `view` (zeroed first); returns its
 * length. `scopeId` is the interface index of a link-local IPv6 address's zone (0 otherwise).
 */
export function encodeSockaddr(view: DataView, family: 4 | 6, bytes: Uint8Array, port: number, scopeId = 0): number {
  const size = family === 4 ? IN.size : IN6.size;
  if (view.byteLength < size) throw new Error(`sockaddr buffer of ${view.byteLength} bytes is too small`);
  for (let i = 0; i < size; i++) view.setUint8(i, 0);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(family === 4 ? IN.port : IN6.port, port, false);
  const at = family === 4 ? IN.addr : IN6.addr;
  for (const [i, b] of bytes.entries()) view.setUint8(at + i, b);
  if (family === 6) view.setUint32(IN6.scopeId, scopeId, true);
  return size;
}
