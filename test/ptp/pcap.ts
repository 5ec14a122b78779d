// A tiny reader for classic libpcap files, enough to pull UDP datagrams out of a capture.
// File format: https://www.tcpdump.org/manpages/pcap-savefile.5.html (classic, not pcapng).
//   - Magic 0xA1B2C3D4 (microsecond stamps) or 0xA1B23C4D (nanosecond stamps), in either byte
//     order: the order of the magic is the order of every header field that follows.
//   - Link types: Ethernet (1, with 802.1Q/802.1ad tags), raw IP (101), Linux cooked SLL (113)
//     and SLL2 (276).
//   - IPv4 (unfragmented, or the first fragment) and IPv6 (skipping the common extension headers).
// Anything else is skipped, never fatal; only a damaged file header or record header throws.

import { canonicalSender } from "../../src/rules/ip-address.ts";

export interface UdpFrame {
  /** 1-based frame number, as Wireshark counts. */
  frameNumber: number;
  /** Capture time in ns since the Unix epoch. */
  timestampNs: bigint;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  /** The UDP payload (a view into the file's bytes). */
  payload: Uint8Array;
}

export const LinkType = { Ethernet: 1, Raw: 101, LinuxSll: 113, LinuxSll2: 276 } as const;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const IP_PROTOCOL_UDP = 17;
/** IPv6 extension headers with the generic (next header, length in 8-octet units) form. */
const IPV6_EXTENSIONS = new Set([0, 43, 60]); // hop-by-hop, routing, destination options
const IPV6_FRAGMENT = 44;

/** All UDP datagrams of a classic pcap file, in file order. */
export function readPcapUdp(file: Uint8Array): UdpFrame[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.byteLength < 24) throw new Error("pcap: shorter than the 24-octet file header");
  const { littleEndian, nanosecond } = readMagic(view.getUint32(0, false));
  const linkType = view.getUint32(20, littleEndian) & 0x0fff_ffff; // upper bits: FCS info

  const frames: UdpFrame[] = [];
  let offset = 24;
  let frameNumber = 0;
  while (offset < file.byteLength) {
    if (offset + 16 > file.byteLength) throw new Error(`pcap: record header cut at ${offset}`);
    const seconds = view.getUint32(offset, littleEndian);
    const fraction = view.getUint32(offset + 4, littleEndian);
    const capturedLength = view.getUint32(offset + 8, littleEndian);
    const start = offset + 16;
    const end = start + capturedLength;
    if (end > file.byteLength) throw new Error(`pcap: frame at ${offset} runs past the end`);
    frameNumber++;
    const timestampNs = BigInt(seconds) * 1_000_000_000n + BigInt(nanosecond ? fraction : fraction * 1000);
    const udp = parseLinkLayer(file.subarray(start, end), linkType);
    if (udp) frames.push({ frameNumber, timestampNs, ...udp });
    offset = end;
  }
  return frames;
}

type Datagram = Omit<UdpFrame, "frameNumber" | "timestampNs">;

function readMagic(magic: number): { littleEndian: boolean; nanosecond: boolean } {
  switch (magic) {
    case 0xa1b2c3d4:
      return { littleEndian: false, nanosecond: false };
    case 0xd4c3b2a1:
      return { littleEndian: true, nanosecond: false };
    case 0xa1b23c4d:
      return { littleEndian: false, nanosecond: true };
    case 0x4d3cb2a1:
      return { littleEndian: true, nanosecond: true };
    default:
      throw new Error(`pcap: unknown magic 0x${magic.toString(16)} (pcapng is not supported)`);
  }
}

function parseLinkLayer(frame: Uint8Array, linkType: number): Datagram | null {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  switch (linkType) {
    case LinkType.Ethernet: {
      // dst(6) src(6) then EtherType, possibly behind 802.1Q / 802.1ad tags of 4 octets.
      let at = 12;
      while (at + 2 <= frame.byteLength) {
        const etherType = view.getUint16(at);
        if (etherType !== ETHERTYPE_VLAN && etherType !== ETHERTYPE_QINQ) {
          return parseNetwork(frame.subarray(at + 2), etherType);
        }
        at += 4;
      }
      return null;
    }
    case LinkType.Raw: {
      if (frame.byteLength < 1) return null;
      const version = view.getUint8(0) >> 4;
      return parseNetwork(frame, version === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    }
    case LinkType.LinuxSll:
      // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
      if (frame.byteLength < 16) return null;
      return parseNetwork(frame.subarray(16), view.getUint16(14));
    case LinkType.LinuxSll2:
      // protocol(2) reserved(2) interface index(4) ARPHRD(2) packet type(1) address length(1) address(8)
      if (frame.byteLength < 20) return null;
      return parseNetwork(frame.subarray(20), view.getUint16(0));
    default:
      return null;
  }
}

function parseNetwork(packet: Uint8Array, etherType: number): Datagram | null {
  if (etherType === ETHERTYPE_IPV4) return parseIPv4(packet);
  if (etherType === ETHERTYPE_IPV6) return parseIPv6(packet);
  return null;
}

/** RFC 791 */
function parseIPv4(packet: Uint8Array): Datagram | null {
  if (packet.byteLength < 20) return null;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (view.getUint8(0) >> 4 !== 4) return null;
  const headerLength = (view.getUint8(0) & 0x0f) * 4;
  const totalLength = Math.min(view.getUint16(2), packet.byteLength);
  const fragmentOffset = view.getUint16(6) & 0x1fff;
  if (fragmentOffset !== 0 || view.getUint8(9) !== IP_PROTOCOL_UDP) return null;
  if (headerLength < 20 || headerLength > totalLength) return null;
  const srcIp = Array.from(packet.subarray(12, 16)).join(".");
  const dstIp = Array.from(packet.subarray(16, 20)).join(".");
  return parseUdp(packet.subarray(headerLength, totalLength), srcIp, dstIp);
}

/** RFC 8200 */
function parseIPv6(packet: Uint8Array): Datagram | null {
  if (packet.byteLength < 40) return null;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (view.getUint8(0) >> 4 !== 6) return null;
  const end = Math.min(40 + view.getUint16(4), packet.byteLength);
  let nextHeader = view.getUint8(6);
  let at = 40;
  while (IPV6_EXTENSIONS.has(nextHeader) || nextHeader === IPV6_FRAGMENT) {
    if (at + 8 > end) return null;
    if (nextHeader === IPV6_FRAGMENT && (view.getUint16(at + 2) & 0xfff8) !== 0) return null;
    const length = nextHeader === IPV6_FRAGMENT ? 8 : (view.getUint8(at + 1) + 1) * 8;
    nextHeader = view.getUint8(at);
    at += length;
  }
  if (nextHeader !== IP_PROTOCOL_UDP || at > end) return null;
  return parseUdp(packet.subarray(at, end), ipv6Text(view, 8), ipv6Text(view, 24));
}

/** RFC 768: the payload is what the UDP length says, bounded by what was captured. */
function parseUdp(segment: Uint8Array, srcIp: string, dstIp: string): Datagram | null {
  if (segment.byteLength < 8) return null;
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  const udpLength = view.getUint16(4);
  if (udpLength < 8) return null;
  const payload = segment.subarray(8, Math.min(udpLength, segment.byteLength));
  return { srcIp, srcPort: view.getUint16(0), dstIp, dstPort: view.getUint16(2), payload };
}

/** RFC 5952 text, through the daemon's own canonical form so records match. */
function ipv6Text(view: DataView, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(offset + 2 * i).toString(16));
  return canonicalSender(groups.join(":"));
}
