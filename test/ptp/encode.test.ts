import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { decode } from "../../src/ptp/decode.ts";
import {
  encodeAnnounce,
  encodeFollowUp,
  encodeHeader,
  encodeOrganizationExtensionTlv,
  encodeSync,
  encodeTlv,
  type AnnounceFields,
  type FollowUpFields,
  type HeaderFields,
  type SyncFields,
} from "../../src/ptp/encode.ts";
import type { ClockQuality, Header, PtpMessage } from "../../src/ptp/types.ts";
import { MessageType } from "../../src/ptp/types.ts";
import { createPrng, type Prng } from "../support/prng.ts";
import { appleFollowUp, appleSync, hex, ptp4lAnnounce, wakeUpAnnounce } from "./fixtures.ts";
import { readPcapUdp } from "./pcap.ts";

const CAPTURE = new URL("../fixtures/ptp4l-master-unicast.pcap", import.meta.url);

// --- decoded message → encoder fields ----------------------------------------------------------

function headerFieldsOf(header: Header): Required<HeaderFields> {
  return {
    transportSpecific: header.transportSpecific,
    domainNumber: header.domainNumber,
    flagField: header.flagField,
    correctionField: header.correctionField,
    clockIdentity: header.clockIdentity,
    sourcePortNumber: header.sourcePortNumber,
    sequenceId: header.sequenceId,
    logMessageInterval: header.logMessageInterval,
  };
}

function fieldsOf(message: PtpMessage): SyncFields | FollowUpFields | AnnounceFields {
  const header = headerFieldsOf(message.header);
  switch (message.kind) {
    case "sync":
      return { ...header, originTimestamp: message.originTimestamp } satisfies SyncFields;
    case "follow-up":
      return { ...header, preciseOriginTimestamp: message.preciseOriginTimestamp } satisfies FollowUpFields;
    case "announce": {
      const { kind: _kind, header: _header, ...body } = message;
      return { ...header, ...body } satisfies AnnounceFields;
    }
    default:
      throw new Error(`no encoder for ${message.kind}`);
  }
}

/** `fields` as the decoder will give them back: defaults filled in, TLV bytes left out. */
function normalised<F extends HeaderFields & { tlvs?: unknown }>(fields: F): HeaderFields {
  const { tlvs: _tlvs, ...rest } = fields;
  return { ...rest, transportSpecific: fields.transportSpecific ?? 0, correctionField: fields.correctionField ?? 0n };
}

/**
 * decode(encode(fields)) must give `fields` back, with the header constants the message type
 * implies. Returns the bytes and the message for further checks.
 */
function roundTrip<F extends HeaderFields>(
  encode: (fields: F) => Uint8Array,
  fields: F,
  constants: { messageType: number; controlField: number; messageLength: number },
): { bytes: Uint8Array; message: PtpMessage } {
  const bytes = encode(fields);
  const result = decode(bytes);
  if (!result.ok) throw new Error(`round trip failed: ${result.error.kind}: ${result.error.detail}`);
  const { message } = result;
  expect<HeaderFields>(fieldsOf(message)).toStrictEqual(normalised(fields));
  expect({
    messageType: message.header.messageType,
    controlField: message.header.controlField,
    messageLength: message.header.messageLength,
    versionPTP: message.header.versionPTP,
    datagramLength: bytes.length,
  }).toEqual({ ...constants, versionPTP: 2, datagramLength: constants.messageLength });
  return { bytes, message };
}

// --- random fields ----------------------------------------------------------------------------

function randomBig(prng: Prng, bits: number): bigint {
  let value = 0n;
  for (let i = 0; i < bits; i += 32) value = (value << 32n) | BigInt(prng.u32());
  return value & ((1n << BigInt(bits)) - 1n);
}

function randomHeader(prng: Prng): HeaderFields {
  const fields: HeaderFields = {
    domainNumber: prng.int(0, 255),
    flagField: prng.int(0, 0xffff),
    clockIdentity: randomBig(prng, 64),
    sourcePortNumber: prng.int(0, 0xffff),
    sequenceId: prng.int(0, 0xffff),
    logMessageInterval: prng.int(-128, 127),
  };
  // Leave the defaulted fields out now and then.
  if (prng.int(0, 3) > 0) fields.transportSpecific = prng.int(0, 15);
  if (prng.int(0, 3) > 0) fields.correctionField = BigInt.asIntN(64, randomBig(prng, 64));
  return fields;
}

function randomTimestamp(prng: Prng) {
  return { seconds: randomBig(prng, 48), nanoseconds: prng.int(0, 999_999_999) };
}

function randomAnnounce(prng: Prng): AnnounceFields {
  return {
    ...randomHeader(prng),
    originTimestamp: randomTimestamp(prng),
    currentUtcOffset: prng.int(-32768, 32767),
    grandmasterPriority1: prng.int(0, 255),
    grandmasterClockQuality: {
      clockClass: prng.int(0, 255),
      clockAccuracy: prng.int(0, 255),
      offsetScaledLogVariance: prng.int(0, 0xffff),
    },
    grandmasterPriority2: prng.int(0, 255),
    grandmasterIdentity: randomBig(prng, 64),
    stepsRemoved: prng.int(0, 0xffff),
    timeSource: prng.int(0, 255),
  };
}

/** The header fields and originTimestamp of an Announce's fields. */
function headerPart(fields: AnnounceFields): HeaderFields & Pick<AnnounceFields, "originTimestamp"> {
  const { transportSpecific, domainNumber, flagField, correctionField, clockIdentity } = fields;
  const { sourcePortNumber, sequenceId, logMessageInterval, originTimestamp } = fields;
  return {
    transportSpecific,
    domainNumber,
    flagField,
    correctionField,
    clockIdentity,
    sourcePortNumber,
    sequenceId,
    logMessageInterval,
    originTimestamp,
  };
}

const ANNOUNCE = { messageType: MessageType.Announce, controlField: 5, messageLength: 64 };
const SYNC = { messageType: MessageType.Sync, controlField: 0, messageLength: 44 };
const FOLLOW_UP = { messageType: MessageType.FollowUp, controlField: 2, messageLength: 44 };

// --- tests ------------------------------------------------------------------------------------

describe("round trips", () => {
  test("Announce: 2000 random field sets", () => {
    const prng = createPrng(2008);
    for (let i = 0; i < 2000; i++) roundTrip(encodeAnnounce, randomAnnounce(prng), ANNOUNCE);
  });

  test("Sync: 2000 random field sets", () => {
    const prng = createPrng(2019);
    for (let i = 0; i < 2000; i++) {
      roundTrip(encodeSync, { ...randomHeader(prng), originTimestamp: randomTimestamp(prng) }, SYNC);
    }
  });

  test("Follow_Up: 2000 random field sets", () => {
    const prng = createPrng(8021);
    for (let i = 0; i < 2000; i++) {
      const fields = { ...randomHeader(prng), preciseOriginTimestamp: randomTimestamp(prng) };
      roundTrip(encodeFollowUp, fields, FOLLOW_UP);
    }
  });

  test("extremes of every range", () => {
    const low: AnnounceFields = {
      transportSpecific: 0,
      domainNumber: 0,
      flagField: 0,
      correctionField: -(2n ** 63n),
      clockIdentity: 0n,
      sourcePortNumber: 0,
      sequenceId: 0,
      logMessageInterval: -128,
      originTimestamp: { seconds: 0n, nanoseconds: 0 },
      currentUtcOffset: -32768,
      grandmasterPriority1: 0,
      grandmasterClockQuality: { clockClass: 0, clockAccuracy: 0, offsetScaledLogVariance: 0 },
      grandmasterPriority2: 0,
      grandmasterIdentity: 0n,
      stepsRemoved: 0,
      timeSource: 0,
    };
    const high: AnnounceFields = {
      transportSpecific: 15,
      domainNumber: 255,
      flagField: 0xffff,
      correctionField: 2n ** 63n - 1n,
      clockIdentity: 2n ** 64n - 1n,
      sourcePortNumber: 0xffff,
      sequenceId: 0xffff,
      logMessageInterval: 127,
      originTimestamp: { seconds: 2n ** 48n - 1n, nanoseconds: 999_999_999 },
      currentUtcOffset: 32767,
      grandmasterPriority1: 255,
      grandmasterClockQuality: { clockClass: 255, clockAccuracy: 255, offsetScaledLogVariance: 0xffff },
      grandmasterPriority2: 255,
      grandmasterIdentity: 2n ** 64n - 1n,
      stepsRemoved: 0xffff,
      timeSource: 255,
    };
    for (const fields of [low, high]) {
      roundTrip(encodeAnnounce, fields, ANNOUNCE);
      const { originTimestamp, ...header } = headerPart(fields);
      roundTrip(encodeSync, { ...header, originTimestamp }, SYNC);
      roundTrip(encodeFollowUp, { ...header, preciseOriginTimestamp: originTimestamp }, FOLLOW_UP);
    }
  });

  test("Follow_Up with TLVs: messageLength covers them, they follow the body unchanged", () => {
    const first = encodeOrganizationExtensionTlv(0x0080c2, 1, new Uint8Array(22));
    const second = encodeOrganizationExtensionTlv(0x000d93, 4, Uint8Array.of(0, 0, 0, 1));
    const base = {
      ...headerFieldsOf(appleFollowUp.expected.header),
      preciseOriginTimestamp: { seconds: 5n, nanoseconds: 6 },
    };
    for (const tlvs of [[first, second], [first], first, [], new Uint8Array(0)]) {
      const tlvBytes = Buffer.concat(tlvs instanceof Uint8Array ? [tlvs] : tlvs);
      const { bytes, message } = roundTrip(
        encodeFollowUp,
        { ...base, tlvs },
        {
          ...FOLLOW_UP,
          messageLength: 44 + tlvBytes.length,
        },
      );
      expect(message.kind === "follow-up" && message.tlvLength).toBe(tlvBytes.length);
      expect(Buffer.from(bytes.subarray(44)).equals(tlvBytes)).toBe(true);
    }
  });

  test("Sync with TLVs", () => {
    const tlv = encodeTlv(0x0008, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)); // PATH_TRACE
    const fields = { ...headerFieldsOf(appleSync.expected.header), originTimestamp: { seconds: 1n, nanoseconds: 2 } };
    const { bytes } = roundTrip(encodeSync, { ...fields, tlvs: tlv }, { ...SYNC, messageLength: 56 });
    expect(Array.from(bytes.subarray(44))).toEqual([0x00, 0x08, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe("exact bytes", () => {
  test("encodeAnnounce reproduces ptp4l's Announce (frame 7)", () => {
    const bytes = encodeAnnounce(fieldsOf(ptp4lAnnounce.expected) as AnnounceFields);
    expect(Buffer.from(bytes).toString("hex")).toBe(Buffer.from(ptp4lAnnounce.bytes).toString("hex"));
  });

  test("encodeAnnounce reproduces the wake-up Announce (frame 42, transportSpecific 1)", () => {
    const bytes = encodeAnnounce(fieldsOf(wakeUpAnnounce.expected) as AnnounceFields);
    expect(Buffer.from(bytes).toString("hex")).toBe(Buffer.from(wakeUpAnnounce.bytes).toString("hex"));
  });

  test("every Sync, Follow_Up and Announce of the capture re-encodes to its own bytes", () => {
    const encoders: Record<string, (fields: never) => Uint8Array> = {
      sync: encodeSync,
      "follow-up": encodeFollowUp,
      announce: encodeAnnounce,
    };
    let count = 0;
    for (const frame of readPcapUdp(readFileSync(CAPTURE))) {
      const result = decode(frame.payload);
      if (!result.ok) throw new Error(`frame ${frame.frameNumber}: ${result.error.kind}`);
      const encode = encoders[result.message.kind];
      if (!encode) continue;
      const bytes = encode(fieldsOf(result.message) as never);
      expect({ frame: frame.frameNumber, hex: Buffer.from(bytes).toString("hex") }).toEqual({
        frame: frame.frameNumber,
        hex: Buffer.from(frame.payload).toString("hex"),
      });
      count++;
    }
    expect(count).toBe(158 + 158 + 19 + 2);
  });

  test("an Apple-style Sync and a 90-octet Follow_Up with organization extension TLVs", () => {
    const sync = encodeSync(fieldsOf(appleSync.expected) as SyncFields);
    expect(Buffer.from(sync).equals(appleSync.bytes)).toBe(true);

    const followUpInformation = encodeOrganizationExtensionTlv(0x0080c2, 0x000001, new Uint8Array(22));
    const apple = encodeOrganizationExtensionTlv(0x000d93, 0x000004, Uint8Array.of(0, 0, 0, 1));
    const fields = fieldsOf(appleFollowUp.expected) as FollowUpFields;
    const followUp = encodeFollowUp({ ...fields, tlvs: [followUpInformation, apple] });
    expect(Buffer.from(followUp).toString("hex")).toBe(Buffer.from(appleFollowUp.bytes).toString("hex"));
  });

  test("encodeTlv and encodeOrganizationExtensionTlv lay out 14.1.1 and 14.3.2", () => {
    expect(Array.from(encodeTlv(0x0005, Uint8Array.of(0xb0, 0, 0, 0, 0, 0x3c, 0, 1)))).toEqual(
      Array.from(hex("00 05  00 08  b0 00 00 00 00 3c 00 01")),
    );
    expect(Array.from(encodeOrganizationExtensionTlv(0xabcdef, 0x123456, Uint8Array.of(9, 8)))).toEqual(
      Array.from(hex("00 03  00 08  ab cd ef  12 34 56  09 08")),
    );
  });

  test("encodeHeader gives a zeroed message with the header written, for other types", () => {
    const fields = headerFieldsOf(ptp4lAnnounce.expected.header);
    const bytes = encodeHeader(MessageType.DelayResp, 3, 54, fields);
    expect(bytes.length).toBe(54);
    expect(Array.from(bytes.subarray(34))).toEqual(new Array(20).fill(0));
    const result = decode(bytes);
    expect(result.ok && result.message.kind).toBe("delay-resp");
    expect(result.ok && result.message.header).toStrictEqual({
      ...ptp4lAnnounce.expected.header,
      messageType: MessageType.DelayResp,
      messageLength: 54,
      controlField: 3,
    });
  });
});

describe("range errors name the field", () => {
  function expectRangeError(run: () => unknown, field: string): void {
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RangeError);
    expect((caught as Error).message).toContain(field);
  }

  const good = randomAnnounce(createPrng(1));
  const quality = (change: Partial<ClockQuality>): ClockQuality => ({
    clockClass: 0,
    clockAccuracy: 0,
    offsetScaledLogVariance: 0,
    ...change,
  });

  const bad: [string, Partial<AnnounceFields> | Record<string, unknown>][] = [
    ["transportSpecific", { transportSpecific: 16 }],
    ["transportSpecific", { transportSpecific: -1 }],
    ["domainNumber", { domainNumber: 256 }],
    ["domainNumber", { domainNumber: 1.5 }],
    ["domainNumber", { domainNumber: Number.NaN }],
    ["flagField", { flagField: 0x10000 }],
    ["correctionField", { correctionField: 2n ** 63n }],
    ["correctionField", { correctionField: -(2n ** 63n) - 1n }],
    ["correctionField", { correctionField: 5 }],
    ["clockIdentity", { clockIdentity: -1n }],
    ["clockIdentity", { clockIdentity: 2n ** 64n }],
    ["clockIdentity", { clockIdentity: 12 }],
    ["sourcePortNumber", { sourcePortNumber: 65536 }],
    ["sequenceId", { sequenceId: -1 }],
    ["sequenceId", { sequenceId: 65536 }],
    ["logMessageInterval", { logMessageInterval: 128 }],
    ["logMessageInterval", { logMessageInterval: -129 }],
    ["originTimestamp.seconds", { originTimestamp: { seconds: 2n ** 48n, nanoseconds: 0 } }],
    ["originTimestamp.seconds", { originTimestamp: { seconds: -1n, nanoseconds: 0 } }],
    ["originTimestamp.nanoseconds", { originTimestamp: { seconds: 0n, nanoseconds: 1_000_000_000 } }],
    ["originTimestamp.nanoseconds", { originTimestamp: { seconds: 0n, nanoseconds: -1 } }],
    ["currentUtcOffset", { currentUtcOffset: 32768 }],
    ["currentUtcOffset", { currentUtcOffset: -32769 }],
    ["grandmasterPriority1", { grandmasterPriority1: 256 }],
    ["grandmasterPriority1", { grandmasterPriority1: -1 }],
    ["grandmasterClockQuality.clockClass", { grandmasterClockQuality: quality({ clockClass: 256 }) }],
    ["grandmasterClockQuality.clockAccuracy", { grandmasterClockQuality: quality({ clockAccuracy: -1 }) }],
    ["grandmasterClockQuality.offsetScaledLogVariance", { grandmasterClockQuality: quality({ offsetScaledLogVariance: 65536 }) }],
    ["grandmasterPriority2", { grandmasterPriority2: 256 }],
    ["grandmasterIdentity", { grandmasterIdentity: 2n ** 64n }],
    ["stepsRemoved", { stepsRemoved: 65536 }],
    ["timeSource", { timeSource: 256 }],
  ];

  const show = (value: unknown): string => JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value);

  for (const [field, change] of bad) {
    test(`encodeAnnounce: ${field} = ${show(Object.values(change)[0])}`, () => {
      expectRangeError(() => encodeAnnounce({ ...good, ...change } as AnnounceFields), field);
    });
  }

  test("Sync and Follow_Up check their timestamps and headers too", () => {
    const header = headerFieldsOf(appleSync.expected.header);
    expectRangeError(() => encodeSync({ ...header, originTimestamp: { seconds: 0n, nanoseconds: 1e9 } }), "originTimestamp.nanoseconds");
    expectRangeError(
      () => encodeFollowUp({ ...header, preciseOriginTimestamp: { seconds: 2n ** 48n, nanoseconds: 0 } }),
      "preciseOriginTimestamp.seconds",
    );
    expectRangeError(() => encodeFollowUp({ ...header, sequenceId: 1e6, preciseOriginTimestamp: { seconds: 0n, nanoseconds: 0 } }), "sequenceId");
  });

  test("TLVs that would push messageLength past 65535", () => {
    const header = headerFieldsOf(appleSync.expected.header);
    const big = new Uint8Array(65535 - 44 + 1);
    expectRangeError(() => encodeFollowUp({ ...header, preciseOriginTimestamp: { seconds: 0n, nanoseconds: 0 }, tlvs: big }), "messageLength");
    // Exactly 65535 is fine.
    const fits = encodeFollowUp({
      ...header,
      preciseOriginTimestamp: { seconds: 0n, nanoseconds: 0 },
      tlvs: big.subarray(1),
    });
    expect(fits.length).toBe(65535);
  });

  test("encodeTlv: odd or oversized valueField, bad tlvType", () => {
    expectRangeError(() => encodeTlv(3, new Uint8Array(3)), "lengthField");
    expectRangeError(() => encodeTlv(3, new Uint8Array(65536)), "lengthField");
    expectRangeError(() => encodeTlv(0x10000, new Uint8Array(2)), "tlvType");
    expectRangeError(() => encodeOrganizationExtensionTlv(0x1000000, 0, new Uint8Array(2)), "organizationId");
    expectRangeError(() => encodeOrganizationExtensionTlv(0, -1, new Uint8Array(2)), "organizationSubType");
  });

  test("encodeHeader: messageType, controlField, messageLength", () => {
    const header = headerFieldsOf(appleSync.expected.header);
    expectRangeError(() => encodeHeader(16, 0, 44, header), "messageType");
    expectRangeError(() => encodeHeader(0, 256, 44, header), "controlField");
    expectRangeError(() => encodeHeader(0, 0, 33, header), "messageLength");
    expectRangeError(() => encodeHeader(0, 0, 65536, header), "messageLength");
  });
});
