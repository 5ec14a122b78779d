// The test-side pcap reader, on the real capture and on small captures built here for the
// variants the real one does not have (big-endian, nanosecond stamps, SLL, SLL2, raw IP, IPv6,
// VLAN tags, fragments).

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { LinkType, readPcapUdp } from "./pcap.ts";

const PAYLOAD = Uint8Array.of(0x0b, 0x02, 0x00, 0x40, 0xaa, 0xbb);

function udp(srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(8 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, srcPort);
  view.setUint16(2, dstPort);
  view.setUint16(4, bytes.length);
  bytes.set(payload, 8);
  return bytes;
}

function ipv4(src: number[], dst: number[], segment: Uint8Array, fragmentOffset = 0): Uint8Array {
  const bytes = new Uint8Array(20 + segment.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 0x45);
  view.setUint16(2, bytes.length);
  view.setUint16(6, fragmentOffset);
  view.setUint8(8, 64);
  view.setUint8(9, 17);
  bytes.set(src, 12);
  bytes.set(dst, 16);
  bytes.set(segment, 20);
  return bytes;
}

/** IPv6 with one hop-by-hop options header (8 octets) before UDP. */
function ipv6(src: number[], dst: number[], segment: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(40 + 8 + segment.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 0x60);
  view.setUint16(4, 8 + segment.length);
  view.setUint8(6, 0); // next header: hop-by-hop
  view.setUint8(7, 1);
  bytes.set(src, 8);
  bytes.set(dst, 24);
  view.setUint8(40, 17); // hop-by-hop's next header: UDP, length 0 (8 octets)
  bytes.set(segment, 48);
  return bytes;
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Uint8Array.from(p)));
}

interface PcapOptions {
  littleEndian: boolean;
  nanosecond: boolean;
  linkType: number;
}

function pcap(options: PcapOptions, frames: Uint8Array[]): Uint8Array {
  const { littleEndian, nanosecond, linkType } = options;
  const header = new DataView(new ArrayBuffer(24));
  header.setUint32(0, nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, littleEndian);
  header.setUint16(4, 2, littleEndian);
  header.setUint16(6, 4, littleEndian);
  header.setUint32(16, 65535, littleEndian);
  header.setUint32(20, linkType, littleEndian);
  const records = frames.map((frame, i) => {
    const record = new DataView(new ArrayBuffer(16));
    record.setUint32(0, 1_700_000_000 + i, littleEndian);
    record.setUint32(4, nanosecond ? 123_456_789 : 123_456, littleEndian);
    record.setUint32(8, frame.length, littleEndian);
    record.setUint32(12, frame.length, littleEndian);
    return concat(new Uint8Array(record.buffer), frame);
  });
  return concat(new Uint8Array(header.buffer), ...records);
}

const MAC = [0, 1, 2, 3, 4, 5];
const V6_SRC = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];
const V6_DST = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x81];

describe("readPcapUdp", () => {
  test("the ptp4l capture: 349 UDP frames between 10.77.0.1 and 10.77.0.2 / 224.0.1.129", () => {
    const frames = readPcapUdp(readFileSync(new URL("../fixtures/ptp4l-master-unicast.pcap", import.meta.url)));
    expect(frames.length).toBe(349);
    expect(frames[0]).toMatchObject({
      frameNumber: 1,
      srcIp: "10.77.0.2",
      srcPort: 52300,
      dstIp: "10.77.0.1",
      dstPort: 320,
    });
    expect(frames[0]!.payload.length).toBe(64);
    expect(frames[0]!.timestampNs).toBe(1795492213_670864_000n);
    const addresses = new Set(frames.flatMap((f) => [f.srcIp, f.dstIp]));
    expect([...addresses].sort()).toEqual(["10.77.0.1", "10.77.0.2", "224.0.1.129"]);
  });

  for (const littleEndian of [true, false]) {
    for (const nanosecond of [true, false]) {
      const name = `${littleEndian ? "little" : "big"}-endian, ${nanosecond ? "ns" : "µs"} stamps`;
      test(`Ethernet with a VLAN tag, ${name}`, () => {
        const vlanTag = [0x81, 0x00, 0x00, 0x05];
        const packet = ipv4([10, 0, 0, 1], [10, 0, 0, 2], udp(319, 319, PAYLOAD));
        const frame = concat(MAC, MAC, vlanTag, [0x08, 0x00], packet);
        const [read] = readPcapUdp(pcap({ littleEndian, nanosecond, linkType: LinkType.Ethernet }, [frame]));
        expect(read).toMatchObject({ srcIp: "10.0.0.1", srcPort: 319, dstIp: "10.0.0.2", dstPort: 319 });
        expect(Array.from(read!.payload)).toEqual(Array.from(PAYLOAD));
        expect(read!.timestampNs).toBe(nanosecond ? 1_700_000_000_123_456_789n : 1_700_000_000_123_456_000n);
      });
    }
  }

  test("Linux cooked SLL with IPv6 and an extension header", () => {
    const sll = concat([0, 0, 0, 1, 0, 6], MAC, [0, 0], [0x86, 0xdd]);
    const frame = concat(sll, ipv6(V6_SRC, V6_DST, udp(320, 320, PAYLOAD)));
    const options = { littleEndian: false, nanosecond: false, linkType: LinkType.LinuxSll };
    const [read] = readPcapUdp(pcap(options, [frame]));
    expect(read).toMatchObject({ srcIp: "fe80::211:22ff:fe33:4455", srcPort: 320, dstIp: "ff0e::181", dstPort: 320 });
    expect(Array.from(read!.payload)).toEqual(Array.from(PAYLOAD));
  });

  test("Linux cooked SLL2 with IPv4, and raw IP", () => {
    const sll2 = concat([0x08, 0x00, 0, 0], [0, 0, 0, 2], [0, 1, 0, 6], MAC, [0, 0]);
    const packet = ipv4([192, 168, 1, 7], [192, 168, 1, 9], udp(320, 320, PAYLOAD));
    for (const [linkType, frame] of [
      [LinkType.LinuxSll2, concat(sll2, packet)],
      [LinkType.Raw, packet],
    ] as const) {
      const [read] = readPcapUdp(pcap({ littleEndian: true, nanosecond: false, linkType }, [frame]));
      expect(read).toMatchObject({ srcIp: "192.168.1.7", dstIp: "192.168.1.9", dstPort: 320 });
    }
  });

  test("non-UDP, later fragments and unknown link types are skipped; frame numbers still count", () => {
    const tcp = ipv4([1, 1, 1, 1], [2, 2, 2, 2], new Uint8Array(20));
    tcp[9] = 6;
    const fragment = ipv4([1, 1, 1, 1], [2, 2, 2, 2], udp(319, 319, PAYLOAD), 100);
    const good = ipv4([1, 1, 1, 1], [2, 2, 2, 2], udp(319, 319, PAYLOAD));
    const options = { littleEndian: true, nanosecond: false, linkType: LinkType.Raw };
    const frames = readPcapUdp(pcap(options, [tcp, fragment, good]));
    expect(frames.map((f) => f.frameNumber)).toEqual([3]);
    expect(readPcapUdp(pcap({ littleEndian: true, nanosecond: false, linkType: 147 }, [good]))).toEqual([]);
  });

  test("a damaged file throws", () => {
    expect(() => readPcapUdp(new Uint8Array(10))).toThrow();
    expect(() => readPcapUdp(new Uint8Array(24))).toThrow(/magic/);
    const whole = pcap({ littleEndian: true, nanosecond: false, linkType: LinkType.Raw }, [new Uint8Array(40)]);
    expect(() => readPcapUdp(whole.subarray(0, whole.length - 1))).toThrow(/past the end/);
  });
});
