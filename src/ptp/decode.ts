// PTP datagram → message, IEEE 1588-2008 clause 13. Pure, and total: every input gives a
// DecodeResult, nothing throws. It runs for every datagram, so it reads straight from one
// DataView and allocates only the result.
//
// Checks run in a fixed order, as linuxptp's msg_post_recv does, so that one datagram always gets
// the same verdict:
//   1. at least the 34-octet common header                           → "truncated"
//   2. versionPTP (low nibble of octet 1) is 2                        → "unsupported-version"
//   3. 34 <= messageLength <= datagram length                         → "length-mismatch"
//   4. messageLength covers the fixed body of the message type        → "truncated"
//   5. field ranges (timestamp nanoseconds < 10^9)                    → "invalid-field"
// Octets after messageLength are ignored (padding, e.g. to the Ethernet minimum frame).

import { HEADER_LENGTH, MESSAGE_LENGTH_BY_TYPE, NANOSECONDS_PER_SECOND, PTP_VERSION } from "./constants.ts";
import { MessageType, type DecodeErrorKind, type DecodeResult, type Header, type Timestamp } from "./types.ts";

/** IEEE 1588-2008 13.3.2.2, Table 19, spelled as the standard spells them. */
const MESSAGE_TYPE_NAMES: readonly string[] = [
  "Sync",
  "Delay_Req",
  "Pdelay_Req",
  "Pdelay_Resp",
  "reserved(0x4)",
  "reserved(0x5)",
  "reserved(0x6)",
  "reserved(0x7)",
  "Follow_Up",
  "Delay_Resp",
  "Pdelay_Resp_Follow_Up",
  "Announce",
  "Signaling",
  "Management",
  "reserved(0xE)",
  "reserved(0xF)",
];

/** The standard's name of a messageType nibble, for logs ("Follow_Up", "reserved(0x5)"). */
export function messageTypeName(type: number): string {
  const name = Number.isInteger(type) ? MESSAGE_TYPE_NAMES[type] : undefined;
  return name ?? `invalid(${String(type)})`;
}

/** Decodes one PTP datagram (the UDP payload). Never throws. */
export function decode(bytes: Uint8Array): DecodeResult {
  // Not part of the contract, but "never throws" should hold for a JavaScript caller too.
  if (!ArrayBuffer.isView(bytes)) return failure("truncated", "input is not a byte array");

  const datagramLength = bytes.byteLength;
  // 1. IEEE 1588-2008 13.3.1: the common header is 34 octets.
  if (datagramLength < HEADER_LENGTH) {
    const detail = `${datagramLength} octets, fewer than the ${HEADER_LENGTH}-octet header`;
    // A detached buffer reports length 0; a DataView over it would throw, so look only if > 0.
    const type = datagramLength > 0 ? firstNibble(bytes) : undefined;
    return failure("truncated", detail, type);
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, datagramLength);
  const messageType = view.getUint8(0) & 0x0f;

  // 2. IEEE 1588-2008 13.3.2.3. The high nibble is minorVersionPTP in 1588-2019 and is ignored.
  const versionPTP = view.getUint8(1) & 0x0f;
  if (versionPTP !== PTP_VERSION) {
    return failure("unsupported-version", `versionPTP ${versionPTP}, expected 2`, messageType);
  }

  // 3. IEEE 1588-2008 13.3.2.4: messageLength counts header, body and TLVs.
  const messageLength = view.getUint16(2);
  if (messageLength < HEADER_LENGTH) {
    const detail = `messageLength ${messageLength} is shorter than the ${HEADER_LENGTH}-octet header`;
    return failure("length-mismatch", detail, messageType);
  }
  if (messageLength > datagramLength) {
    const detail = `messageLength ${messageLength} but the datagram has ${datagramLength} octets`;
    return failure("length-mismatch", detail, messageType);
  }

  // 4. The fixed body of the type (13.5–13.12, 15.4.1) must lie within messageLength.
  const needed = MESSAGE_LENGTH_BY_TYPE[messageType] ?? HEADER_LENGTH;
  if (messageLength < needed) {
    const detail = `${messageTypeName(messageType)} needs ${needed} octets, messageLength is ${messageLength}`;
    return failure("truncated", detail, messageType);
  }

  // 5. Field ranges, then the message.
  switch (messageType) {
    case MessageType.Sync:
      return decodeSync(view, messageType, messageLength);
    case MessageType.FollowUp:
      return decodeFollowUp(view, messageType, messageLength);
    case MessageType.Announce:
      return decodeAnnounce(view, messageType, messageLength);
    case MessageType.DelayResp:
      return decodeDelayResp(view, messageType, messageLength);
    default:
      // Delay_Req, Pdelay_*, Signaling, Management and reserved types: recognised, not used.
      return { ok: true, message: { kind: "other", header: readHeader(view, messageType, messageLength) } };
  }
}

// --- message bodies ---------------------------------------------------------------------------

/** IEEE 1588-2008 13.6: originTimestamp at 34. */
function decodeSync(view: DataView, messageType: number, messageLength: number): DecodeResult {
  if (!nanosecondsValid(view, 34)) return badTimestamp(view, messageType, "originTimestamp", 34);
  return {
    ok: true,
    message: {
      kind: "sync",
      header: readHeader(view, messageType, messageLength),
      originTimestamp: readTimestamp(view, 34),
    },
  };
}

/** IEEE 1588-2008 13.7: preciseOriginTimestamp at 34; anything up to messageLength is TLVs (14.1). */
function decodeFollowUp(view: DataView, messageType: number, messageLength: number): DecodeResult {
  if (!nanosecondsValid(view, 34)) return badTimestamp(view, messageType, "preciseOriginTimestamp", 34);
  return {
    ok: true,
    message: {
      kind: "follow-up",
      header: readHeader(view, messageType, messageLength),
      preciseOriginTimestamp: readTimestamp(view, 34),
      tlvLength: messageLength - 44,
    },
  };
}

/** IEEE 1588-2008 13.5. Octet 46 is reserved. */
function decodeAnnounce(view: DataView, messageType: number, messageLength: number): DecodeResult {
  if (!nanosecondsValid(view, 34)) return badTimestamp(view, messageType, "originTimestamp", 34);
  return {
    ok: true,
    message: {
      kind: "announce",
      header: readHeader(view, messageType, messageLength),
      originTimestamp: readTimestamp(view, 34),
      currentUtcOffset: view.getInt16(44),
      grandmasterPriority1: view.getUint8(47),
      grandmasterClockQuality: {
        clockClass: view.getUint8(48),
        clockAccuracy: view.getUint8(49),
        offsetScaledLogVariance: view.getUint16(50),
      },
      grandmasterPriority2: view.getUint8(52),
      grandmasterIdentity: view.getBigUint64(53),
      stepsRemoved: view.getUint16(61),
      timeSource: view.getUint8(63),
    },
  };
}

/** IEEE 1588-2008 13.8: receiveTimestamp at 34, requestingPortIdentity at 44. */
function decodeDelayResp(view: DataView, messageType: number, messageLength: number): DecodeResult {
  if (!nanosecondsValid(view, 34)) return badTimestamp(view, messageType, "receiveTimestamp", 34);
  return {
    ok: true,
    message: {
      kind: "delay-resp",
      header: readHeader(view, messageType, messageLength),
      receiveTimestamp: readTimestamp(view, 34),
      requestingClockIdentity: view.getBigUint64(44),
      requestingPortNumber: view.getUint16(52),
    },
  };
}

// --- fields -----------------------------------------------------------------------------------

/**
 * IEEE 1588-2008 13.3.1. Octet 5 (reserved; minorSdoId in 1588-2019) and octets 16–19
 * (reserved; messageTypeSpecific in 1588-2019) are not read.
 */
function readHeader(view: DataView, messageType: number, messageLength: number): Header {
  return {
    transportSpecific: view.getUint8(0) >> 4,
    messageType,
    versionPTP: PTP_VERSION,
    messageLength,
    domainNumber: view.getUint8(4),
    flagField: view.getUint16(6),
    correctionField: view.getBigInt64(8),
    clockIdentity: view.getBigUint64(20),
    sourcePortNumber: view.getUint16(28),
    sequenceId: view.getUint16(30),
    controlField: view.getUint8(32),
    logMessageInterval: view.getInt8(33),
  };
}

/** IEEE 1588-2008 5.3.3: UInteger48 seconds, UInteger32 nanoseconds. */
function readTimestamp(view: DataView, offset: number): Timestamp {
  // 48 bits fit a double exactly (< 2^53), so one BigInt conversion suffices.
  const seconds = view.getUint16(offset) * 0x1_0000_0000 + view.getUint32(offset + 2);
  return { seconds: BigInt(seconds), nanoseconds: view.getUint32(offset + 6) };
}

/** IEEE 1588-2008 5.3.3: "The nanosecondsField member is always less than 10^9." */
function nanosecondsValid(view: DataView, offset: number): boolean {
  return view.getUint32(offset + 6) < NANOSECONDS_PER_SECOND;
}

// --- failures ---------------------------------------------------------------------------------

function badTimestamp(view: DataView, messageType: number, field: string, offset: number): DecodeResult {
  const nanoseconds = view.getUint32(offset + 6);
  const detail = `${messageTypeName(messageType)} ${field}.nanoseconds ${nanoseconds} is not below 10^9`;
  return failure("invalid-field", detail, messageType);
}

function firstNibble(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 1).getUint8(0) & 0x0f;
}

function failure(kind: DecodeErrorKind, detail: string, messageType?: number): DecodeResult {
  return messageType === undefined ? { ok: false, error: { kind, detail } } : { ok: false, error: { kind, detail, messageType } };
}
