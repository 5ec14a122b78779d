import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { decode, messageTypeName } from "../../src/ptp/decode.ts";
import type { DecodeErrorKind, DecodeResult, PtpMessage } from "../../src/ptp/types.ts";
import { FLAG_TWO_STEP, MessageType } from "../../src/ptp/types.ts";
import { createPrng } from "../support/prng.ts";
import { allFixtures, bodyLength, hex, type Fixture } from "./fixtures.ts";
import { readPcapUdp, type UdpFrame } from "./pcap.ts";

const CAPTURE = new URL("../fixtures/ptp4l-master-unicast.pcap", import.meta.url);
const captureFrames = readPcapUdp(readFileSync(CAPTURE));

function errorKind(result: DecodeResult): DecodeErrorKind | "ok" {
  return result.ok ? "ok" : result.error.kind;
}

function messageOf(result: DecodeResult): PtpMessage {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.kind}: ${result.error.detail}`);
  return result.message;
}

/** A copy of `bytes` with messageLength (octets 2–3) set to `messageLength`. */
function withMessageLength(bytes: Uint8Array, messageLength: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint16(2, messageLength);
  return copy;
}

function patched(bytes: Uint8Array, offset: number, ...octets: number[]): Uint8Array {
  const copy = bytes.slice();
  copy.set(octets, offset);
  return copy;
}

describe("fixtures", () => {
  for (const fixture of allFixtures) {
    test(`${fixture.name} decodes to exactly its fields`, () => {
      expect(decode(fixture.bytes)).toStrictEqual({ ok: true, message: fixture.expected });
    });
  }

  for (const fixture of allFixtures.filter((f) => f.frame !== undefined)) {
    test(`${fixture.name}: the annotated octets are frame ${fixture.frame} of the capture`, () => {
      const frame = captureFrames.find((f) => f.frameNumber === fixture.frame);
      expect(frame).toBeDefined();
      expect(Buffer.from(frame!.payload).toString("hex")).toBe(Buffer.from(fixture.bytes).toString("hex"));
    });
  }

  test("octets after messageLength (UDP padding) are ignored", () => {
    for (const fixture of allFixtures) {
      const padded = new Uint8Array(fixture.bytes.length + 17).fill(0xee);
      padded.set(fixture.bytes);
      expect(decode(padded)).toStrictEqual({ ok: true, message: fixture.expected });
    }
  });
});

describe("truncation", () => {
  // The datagram is cut but messageLength still claims the whole message.
  for (const fixture of allFixtures) {
    test(`${fixture.name}: every datagram length 0..${fixture.bytes.length - 1}`, () => {
      for (let length = 0; length < fixture.bytes.length; length++) {
        const expected = length < 34 ? "truncated" : "length-mismatch";
        const result = decode(fixture.bytes.subarray(0, length));
        expect({ length, kind: errorKind(result) }).toEqual({ length, kind: expected });
      }
    });
  }

  // messageLength itself (honestly) says fewer octets than the type's body.
  for (const fixture of allFixtures) {
    const body = bodyLength(fixture);
    test(`${fixture.name}: messageLength 0..${fixture.bytes.length} within the full datagram`, () => {
      for (let messageLength = 0; messageLength <= fixture.bytes.length; messageLength++) {
        const expected = messageLength < 34 ? "length-mismatch" : messageLength < body ? "truncated" : "ok";
        const result = decode(withMessageLength(fixture.bytes, messageLength));
        expect({ messageLength, kind: errorKind(result) }).toEqual({ messageLength, kind: expected });
      }
    });

    test(`${fixture.name}: datagram and messageLength cut together below the body`, () => {
      for (let length = 34; length < body; length++) {
        const cut = withMessageLength(fixture.bytes, length).subarray(0, length);
        expect({ length, kind: errorKind(decode(cut)) }).toEqual({ length, kind: "truncated" });
      }
    });
  }

  test("a Follow_Up's tlvLength follows messageLength, not the datagram", () => {
    const apple = allFixtures.find((f) => f.expected.kind === "follow-up" && f.bytes.length === 90)!;
    for (let messageLength = 44; messageLength <= 90; messageLength++) {
      const message = messageOf(decode(withMessageLength(apple.bytes, messageLength)));
      expect(message.kind === "follow-up" && message.tlvLength).toBe(messageLength - 44);
    }
  });

  test("every message type needs its own body (13.5–13.12, 15.4.1)", () => {
    const needs: [number, number][] = [
      [MessageType.Sync, 44],
      [MessageType.DelayReq, 44],
      [MessageType.PdelayReq, 54],
      [MessageType.PdelayResp, 54],
      [MessageType.FollowUp, 44],
      [MessageType.DelayResp, 54],
      [MessageType.PdelayRespFollowUp, 54],
      [MessageType.Announce, 64],
      [MessageType.Signaling, 44],
      [MessageType.Management, 48],
      ...[0x4, 0x5, 0x6, 0x7, 0xe, 0xf].map((t): [number, number] => [t, 34]),
    ];
    for (const [type, needed] of needs) {
      const short = zeroMessage(type, needed - 1);
      const exact = zeroMessage(type, needed);
      expect({ type, short: errorKind(decode(short)), exact: errorKind(decode(exact)) }).toEqual({
        type,
        short: "truncated",
        exact: "ok",
      });
    }
  });

  test("reserved message types decode as header-only 'other'", () => {
    for (const type of [0x4, 0x5, 0x6, 0x7, 0xe, 0xf]) {
      const message = messageOf(decode(zeroMessage(type, 34)));
      expect(message.kind).toBe("other");
      expect(message.header.messageType).toBe(type);
    }
  });
});

/** A zeroed message of `length` octets: messageType, versionPTP 2, messageLength = length. */
function zeroMessage(messageType: number, length: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(length, 0));
  if (length >= 4) {
    bytes[0] = messageType;
    bytes[1] = 2;
    new DataView(bytes.buffer).setUint16(2, length);
  }
  return bytes;
}

describe("header checks", () => {
  test("versionPTP other than 2 → unsupported-version, with the messageType", () => {
    for (const fixture of allFixtures) {
      for (const version of [0x0, 0x1, 0x3, 0xf]) {
        const result = decode(patched(fixture.bytes, 1, version));
        expect(result.ok).toBe(false);
        if (result.ok) continue;
        expect(result.error.kind).toBe("unsupported-version");
        expect(result.error.messageType).toBe(fixture.expected.header.messageType);
      }
    }
  });

  test("the version check comes before the length checks", () => {
    const bytes = patched(withMessageLength(allFixtures[0]!.bytes, 0xffff), 1, 0x01);
    expect(errorKind(decode(bytes))).toBe("unsupported-version");
  });

  test("the high nibble of octet 1 (minorVersionPTP, 1588-2019) is ignored", () => {
    for (const fixture of allFixtures) {
      for (const minor of [0x1, 0x7, 0xf]) {
        const result = decode(patched(fixture.bytes, 1, (minor << 4) | 2));
        expect(result).toStrictEqual({ ok: true, message: fixture.expected });
      }
    }
  });

  test("messageLength larger than the datagram → length-mismatch", () => {
    for (const fixture of allFixtures) {
      for (const messageLength of [fixture.bytes.length + 1, fixture.bytes.length + 100, 0xffff]) {
        const result = decode(withMessageLength(fixture.bytes, messageLength));
        expect(errorKind(result)).toBe("length-mismatch");
      }
    }
  });

  test("an error carries the messageType once octet 0 is there", () => {
    const followUp = allFixtures.find((f) => f.expected.kind === "follow-up")!;
    const result = decode(followUp.bytes.subarray(0, 10));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.messageType).toBe(MessageType.FollowUp);
    const empty = decode(new Uint8Array(0));
    expect(empty).toStrictEqual({ ok: false, error: { kind: "truncated", detail: expect.any(String) } });
  });
});

describe("timestamps", () => {
  const timestamped = allFixtures.filter((f) => f.expected.kind !== "other");

  test("nanoseconds of 10^9 or more → invalid-field", () => {
    for (const fixture of timestamped) {
      for (const nanoseconds of [1_000_000_000, 0xffff_ffff]) {
        const bytes = fixture.bytes.slice();
        new DataView(bytes.buffer).setUint32(40, nanoseconds);
        const result = decode(bytes);
        expect({ name: fixture.name, kind: errorKind(result) }).toEqual({
          name: fixture.name,
          kind: "invalid-field",
        });
        if (!result.ok) expect(result.error.messageType).toBe(fixture.expected.header.messageType);
      }
    }
  });

  test("nanoseconds of 999999999 and seconds of 2^48 - 1 are in range", () => {
    for (const fixture of timestamped) {
      const bytes = patched(fixture.bytes, 34, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3b, 0x9a, 0xc9, 0xff);
      const message = messageOf(decode(bytes));
      const timestamp =
        message.kind === "follow-up"
          ? message.preciseOriginTimestamp
          : message.kind === "delay-resp"
            ? message.receiveTimestamp
            : message.kind === "other"
              ? undefined
              : message.originTimestamp;
      expect(timestamp).toEqual({ seconds: 2n ** 48n - 1n, nanoseconds: 999_999_999 });
    }
  });

  test("timestamps of types we do not decode are not checked (Delay_Req → 'other')", () => {
    const delayReq = allFixtures.find((f) => f.expected.header.messageType === MessageType.DelayReq)!;
    const bytes = patched(delayReq.bytes, 40, 0xff, 0xff, 0xff, 0xff);
    expect(errorKind(decode(bytes))).toBe("ok");
  });
});

describe("buffers", () => {
  test("a slice of a larger ArrayBuffer, garbage around it, at an odd offset", () => {
    const prng = createPrng(7);
    for (const fixture of allFixtures) {
      const pool = prng.bytes(8192);
      const offset = 1001;
      pool.set(fixture.bytes, offset);
      const slice = Buffer.from(pool.buffer, offset, fixture.bytes.length);
      expect(slice.byteOffset).toBe(offset);
      expect(decode(slice)).toStrictEqual({ ok: true, message: fixture.expected });
      // The same through a Uint8Array view.
      const view = new Uint8Array(pool.buffer, offset, fixture.bytes.length);
      expect(decode(view)).toStrictEqual({ ok: true, message: fixture.expected });
    }
  });

  test("a datagram cut inside a larger buffer does not read the octets beyond it", () => {
    const fixture = allFixtures[0]!;
    const pool = new Uint8Array(256);
    pool.set(fixture.bytes, 10);
    const cut = pool.subarray(10, 10 + fixture.bytes.length - 1); // the next octet exists in pool
    expect(errorKind(decode(cut))).toBe("length-mismatch");
  });

  test("inputs that are not byte arrays, and detached buffers, give an error, not a throw", () => {
    const odd: unknown[] = [undefined, null, 0, "0b02", {}, [11, 2, 0, 64], new ArrayBuffer(64)];
    for (const input of odd) {
      expect(errorKind(decode(input as Uint8Array))).toBe("truncated");
    }
    const buffer = new ArrayBuffer(64);
    const bytes = new Uint8Array(buffer);
    bytes.set(allFixtures[0]!.bytes);
    buffer.transfer(); // detaches `buffer`
    expect(errorKind(decode(bytes))).toBe("truncated");
  });
});

describe("the ptp4l capture", () => {
  const ptp = captureFrames.filter((f) => f.srcPort === 319 || f.srcPort === 320 || f.dstPort === 320);
  const decoded = ptp.map((frame) => ({ frame, message: messageOf(decode(frame.payload)) }));
  const ofType = (type: number) => decoded.filter((d) => d.message.header.messageType === type);
  const fromMaster = (d: { frame: UdpFrame }) => d.frame.srcIp === "10.77.0.1";

  test("every frame is a UDP datagram, and every one decodes", () => {
    expect(captureFrames.length).toBe(349);
    expect(ptp.length).toBe(349);
    expect(decoded.length).toBe(349);
  });

  test("158 Sync, 158 Follow_Up, 19 + 2 Announce, 12 Signaling", () => {
    expect(ofType(MessageType.Sync).length).toBe(158);
    expect(ofType(MessageType.FollowUp).length).toBe(158);
    expect(ofType(MessageType.Announce).filter(fromMaster).length).toBe(19);
    expect(ofType(MessageType.Announce).filter((d) => !fromMaster(d)).length).toBe(2);
    expect(ofType(MessageType.Signaling).length).toBe(12);
    const kinds = new Set(decoded.map((d) => d.message.kind));
    expect([...kinds].sort()).toEqual(["announce", "follow-up", "other", "sync"]);
  });

  test("Syncs go to 319 and are two-step; Follow_Ups and Announces go to 320", () => {
    for (const { frame, message } of decoded) {
      if (message.kind === "sync") {
        expect([frame.srcPort, frame.dstPort]).toEqual([319, 319]);
        expect(message.header.flagField & FLAG_TWO_STEP).toBe(FLAG_TWO_STEP);
      } else {
        expect(frame.dstPort).toBe(320);
      }
    }
  });

  test("each Follow_Up pairs with the earlier Sync of the same stream and sequenceId", () => {
    const pending = new Map<string, { sequenceId: number; clockIdentity: bigint }>();
    let pairs = 0;
    const streamOf = (frame: UdpFrame) => `${frame.srcIp}>${frame.dstIp}`;
    for (const { frame, message } of decoded) {
      if (message.kind === "sync") {
        pending.set(streamOf(frame), message.header);
      } else if (message.kind === "follow-up") {
        const sync = pending.get(streamOf(frame));
        expect(sync).toBeDefined();
        expect(sync!.sequenceId).toBe(message.header.sequenceId);
        expect(sync!.clockIdentity).toBe(message.header.clockIdentity);
        pending.delete(streamOf(frame));
        pairs++;
      }
    }
    expect(pairs).toBe(158);
  });

  test("preciseOriginTimestamps advance by about 125 ms within a stream (8 Hz)", () => {
    const last = new Map<string, bigint>();
    for (const { frame, message } of decoded) {
      if (message.kind !== "follow-up") continue;
      const stream = frame.dstIp;
      const { seconds, nanoseconds } = message.preciseOriginTimestamp;
      const ns = seconds * 1_000_000_000n + BigInt(nanoseconds);
      const previous = last.get(stream);
      if (previous !== undefined) {
        const step = Number(ns - previous) / 1e6;
        expect(step).toBeGreaterThan(110);
        expect(step).toBeLessThan(140);
      }
      last.set(stream, ns);
      // Software timestamps on the same host: the master's time is the capture time, give or take.
      expect(Math.abs(Number(ns - frame.timestampNs))).toBeLessThan(10_000_000);
    }
  });
});

describe("fuzz: decode never throws", () => {
  const KINDS = new Set(["truncated", "unsupported-version", "length-mismatch", "invalid-field"]);
  const KIND_OF_TYPE: Record<number, string> = { 0x0: "sync", 0x8: "follow-up", 0x9: "delay-resp", 0xb: "announce" };

  function checkWellFormed(bytes: Uint8Array, result: DecodeResult): void {
    if (result.ok) {
      const { header } = result.message;
      if (header.messageLength > bytes.length || header.versionPTP !== 2) throw new Error("bad ok");
      if (result.message.kind !== (KIND_OF_TYPE[header.messageType] ?? "other")) throw new Error("bad kind");
    } else if (!KINDS.has(result.error.kind) || typeof result.error.detail !== "string") {
      throw new Error(`bad error ${JSON.stringify(result.error)}`);
    }
  }

  test("100k seeded random buffers", () => {
    const prng = createPrng(0x5eed);
    const counts = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const bytes = prng.bytes(prng.int(0, 120));
      // Half of them get a plausible version and length so the deeper checks run too.
      if (i % 2 === 0 && bytes.length >= 4) {
        bytes[1] = 2;
        new DataView(bytes.buffer).setUint16(2, prng.int(0, bytes.length + 4));
      }
      const result = decode(bytes);
      checkWellFormed(bytes, result);
      const key = errorKind(result);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    // Every verdict was reached, so the fuzz did go past the header checks.
    expect([...counts.keys()].sort()).toEqual(["invalid-field", "length-mismatch", "ok", "truncated", "unsupported-version"]);
  });

  test("100k seeded mutations of the fixtures", () => {
    const prng = createPrng(1588);
    for (let i = 0; i < 100_000; i++) {
      const fixture: Fixture = prng.pick(allFixtures);
      const bytes = new Uint8Array(prng.int(0, fixture.bytes.length + 8));
      bytes.set(fixture.bytes.subarray(0, bytes.length));
      for (let flips = prng.int(1, 4); flips > 0; flips--) {
        if (bytes.length > 0) bytes[prng.int(0, bytes.length - 1)] = prng.int(0, 255);
      }
      checkWellFormed(bytes, decode(bytes));
    }
  });
});

describe("messageTypeName", () => {
  test("names from IEEE 1588-2008 Table 19", () => {
    expect(messageTypeName(0x0)).toBe("Sync");
    expect(messageTypeName(0x1)).toBe("Delay_Req");
    expect(messageTypeName(0x8)).toBe("Follow_Up");
    expect(messageTypeName(0x9)).toBe("Delay_Resp");
    expect(messageTypeName(0xa)).toBe("Pdelay_Resp_Follow_Up");
    expect(messageTypeName(0xb)).toBe("Announce");
    expect(messageTypeName(0xc)).toBe("Signaling");
    expect(messageTypeName(0xd)).toBe("Management");
    expect(messageTypeName(0x5)).toBe("reserved(0x5)");
    expect(messageTypeName(0xe)).toBe("reserved(0xE)");
    expect(messageTypeName(16)).toBe("invalid(16)");
    expect(messageTypeName(-1)).toBe("invalid(-1)");
    expect(messageTypeName(1.5)).toBe("invalid(1.5)");
  });
});

test("hex() reads annotated fixtures", () => {
  expect(Array.from(hex("0b // messageType\n 02 00 40 // length"))).toEqual([0x0b, 0x02, 0x00, 0x40]);
  expect(() => hex("0b 2")).toThrow();
});
