// The pure parts of kernel timestamping: SCM_TIMESTAMPNS in a control buffer, the conversion of
// a CLOCK_REALTIME stamp to the local clock from a clock pair, and socket addresses.

import { describe, expect, test } from "bun:test";
import { AF_INET, AF_INET6, SCM_TIMESTAMPNS, SOL_SOCKET } from "../../src/sys/linux.ts";
import { addressBytes, decodeSockaddr, encodeSockaddr, stampToLocalClock, timestampFromControl } from "../../src/net/timestamps.ts";

/** A control buffer made of cmsghdrs as the kernel lays them out on LP64 (CMSG_ALIGN to 8). */
function control(...messages: { level: number; type: number; data: Uint8Array; length?: number }[]): DataView {
  const align = (n: number) => (n + 7) & ~7;
  const size = messages.reduce((n, m) => n + align(16 + m.data.length), 0);
  const view = new DataView(new ArrayBuffer(size));
  let at = 0;
  for (const m of messages) {
    view.setBigUint64(at, BigInt(m.length ?? 16 + m.data.length), true);
    view.setInt32(at + 8, m.level, true);
    view.setInt32(at + 12, m.type, true);
    new Uint8Array(view.buffer, at + 16, m.data.length).set(m.data);
    at += align(16 + m.data.length);
  }
  return view;
}

function timespec(seconds: bigint, nanoseconds: bigint): Uint8Array {
  const view = new DataView(new ArrayBuffer(16));
  view.setBigInt64(0, seconds, true);
  view.setBigInt64(8, nanoseconds, true);
  return new Uint8Array(view.buffer);
}

describe("timestampFromControl", () => {
  test("reads SOL_SOCKET/SCM_TIMESTAMPNS as ns", () => {
    const c = control({ level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: timespec(1_700_000_000n, 123_456_789n) });
    expect(timestampFromControl(c, c.byteLength)).toBe(1_700_000_000_123_456_789n);
  });

  test("skips other control messages, including ones whose length needs padding", () => {
    const c = control(
      { level: 0 /* IPPROTO_IP */, type: 8 /* IP_PKTINFO */, data: new Uint8Array(12) },
      { level: SOL_SOCKET, type: 29 /* SO_TIMESTAMP (timeval) */, data: new Uint8Array(16) },
      { level: 41, type: 50, data: new Uint8Array(5) },
      { level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: timespec(5n, 6n) },
    );
    expect(timestampFromControl(c, c.byteLength)).toBe(5_000_000_006n);
  });

  test("none, empty or truncated control data gives null", () => {
    const other = control({ level: 0, type: 8, data: new Uint8Array(12) });
    expect(timestampFromControl(other, other.byteLength)).toBeNull();
    expect(timestampFromControl(new DataView(new ArrayBuffer(0)), 0)).toBeNull();
    const stamp = control({ level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: timespec(5n, 6n) });
    // msg_controllen says less arrived than the message claims (MSG_CTRUNC).
    expect(timestampFromControl(stamp, 24)).toBeNull();
  });

  test("a malformed cmsg_len ends the walk instead of looping or reading past the end", () => {
    const zero = control({ level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: timespec(5n, 6n), length: 0 });
    expect(timestampFromControl(zero, zero.byteLength)).toBeNull();
    const huge = control({ level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: timespec(5n, 6n), length: 4096 });
    expect(timestampFromControl(huge, huge.byteLength)).toBeNull();
    const short = control({ level: SOL_SOCKET, type: SCM_TIMESTAMPNS, data: new Uint8Array(8) });
    expect(timestampFromControl(short, short.byteLength)).toBeNull();
  });
});

describe("stampToLocalClock", () => {
  const pair = { realtimeBeforeNs: 1_000_000_000_000n, monotonicRawNs: 5_000n, realtimeAfterNs: 1_000_000_000_100n };

  test("realtime: the stamp itself, no pair needed", () => {
    expect(stampToLocalClock(123n, "realtime", null)).toBe(123n);
  });

  test("monotonic-raw: stamp − (midpoint of the realtime reads − raw)", () => {
    // The raw reading 5000 happened at realtime 1_000_000_000_050: raw = realtime − 999_999_995_050.
    expect(stampToLocalClock(1_000_000_000_050n, "monotonic-raw", pair)).toBe(5_000n);
    expect(stampToLocalClock(999_990_000_050n, "monotonic-raw", pair)).toBe(5_000n - 10_000_000n);
  });

  test("an odd spread rounds the midpoint down (integer ns)", () => {
    const odd = { ...pair, realtimeAfterNs: pair.realtimeAfterNs + 1n };
    expect(stampToLocalClock(1_000_000_000_050n, "monotonic-raw", odd)).toBe(5_000n);
  });

  test("monotonic-raw without a pair is a programming error", () => {
    expect(() => stampToLocalClock(1n, "monotonic-raw", null)).toThrow();
  });
});

describe("socket addresses", () => {
  test("IPv4 text round-trips through sockaddr_in", () => {
    const view = new DataView(new ArrayBuffer(28));
    const target = addressBytes("192.168.1.7")!;
    expect(target.family).toBe(4);
    const length = encodeSockaddr(view, 4, target.bytes, 319);
    expect(length).toBe(16);
    expect(view.getUint16(0, true)).toBe(AF_INET);
    expect([view.getUint8(2), view.getUint8(3)]).toEqual([0x01, 0x3f]); // port 319, big-endian
    expect(decodeSockaddr(view, length)).toEqual({ address: "192.168.1.7", port: 319 });
  });

  test("IPv6, the wildcard and a zone", () => {
    const view = new DataView(new ArrayBuffer(28));
    for (const [text, expected] of [
      ["::", "::"],
      ["fe80::1%eth0", "fe80::1"],
      ["2001:db8::2:1", "2001:db8::2:1"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["ff0e::181", "ff0e::181"],
    ] as const) {
      const target = addressBytes(text)!;
      expect(target.family).toBe(6);
      const length = encodeSockaddr(view, 6, target.bytes, 320, 7);
      expect(length).toBe(28);
      expect(view.getUint16(0, true)).toBe(AF_INET6);
      expect(view.getUint32(24, true)).toBe(7);
      expect(decodeSockaddr(view, length)).toEqual({ address: expected, port: 320 });
    }
    expect(addressBytes("fe80::1%eth0")!.zone).toBe("eth0");
  });

  test("an IPv4 sender on a dual-stack socket reads as ::ffff:a.b.c.d, as Bun reports it", () => {
    const view = new DataView(new ArrayBuffer(28));
    const target = addressBytes("::ffff:10.0.0.5")!;
    expect(target.family).toBe(6);
    encodeSockaddr(view, 6, target.bytes, 319);
    expect(decodeSockaddr(view, 28)).toEqual({ address: "::ffff:10.0.0.5", port: 319 });
  });

  test("other families and short names are not addresses", () => {
    const view = new DataView(new ArrayBuffer(28));
    view.setUint16(0, 1 /* AF_UNIX */, true);
    expect(decodeSockaddr(view, 28)).toBeNull();
    view.setUint16(0, AF_INET6, true);
    expect(decodeSockaddr(view, 20)).toBeNull();
    expect(decodeSockaddr(view, 0)).toBeNull();
    expect(addressBytes("not an address")).toBeNull();
  });

  test("a buffer too small for the family is refused", () => {
    expect(() => encodeSockaddr(new DataView(new ArrayBuffer(16)), 6, new Uint8Array(16), 1)).toThrow();
  });
});
