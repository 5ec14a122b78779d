// Message → PTP datagram, IEEE 1588-2008 clause 13. The daemon sends only Announces (to wake a
// silent clock, spec section 7); Sync, Follow_Up and the TLV helpers serve the test-side PTP
// master simulator. Inputs come from our own code, so an out-of-range field is a programmer error
// and throws a RangeError that names the field.

import {
  ControlField,
  HEADER_LENGTH,
  NANOSECONDS_PER_SECOND,
  ORGANIZATION_EXTENSION_HEADER_LENGTH,
  PTP_VERSION,
  TLV_HEADER_LENGTH,
  TlvType,
} from "./constants.ts";
import { MessageType, type ClockQuality, type Timestamp } from "./types.ts";

/** The header fields a sender chooses (IEEE 1588-2008 13.3). The rest follow from the message. */
export interface HeaderFields {
  /** High nibble of octet 0 (majorSdoId in 1588-2019). Default 0; 802.1AS and Apple use 1. */
  transportSpecific?: number;
  domainNumber: number;
  flagField: number;
  /** Integer64 in units of 2^-16 ns. Default 0n. */
  correctionField?: bigint;
  /** sourcePortIdentity.clockIdentity as an unsigned 64-bit integer. */
  clockIdentity: bigint;
  /** sourcePortIdentity.portNumber */
  sourcePortNumber: number;
  sequenceId: number;
  /** Integer8 */
  logMessageInterval: number;
}

/** Encoded TLVs (IEEE 1588-2008 14.1) appended after the body, counted in messageLength. */
export type TlvBytes = Uint8Array | readonly Uint8Array[];

/** IEEE 1588-2008 13.6 */
export interface SyncFields extends HeaderFields {
  originTimestamp: Timestamp;
  tlvs?: TlvBytes;
}

/** IEEE 1588-2008 13.7 */
export interface FollowUpFields extends HeaderFields {
  preciseOriginTimestamp: Timestamp;
  tlvs?: TlvBytes;
}

/** IEEE 1588-2008 13.5 */
export interface AnnounceFields extends HeaderFields {
  originTimestamp: Timestamp;
  /** Integer16 */
  currentUtcOffset: number;
  grandmasterPriority1: number;
  grandmasterClockQuality: ClockQuality;
  grandmasterPriority2: number;
  grandmasterIdentity: bigint;
  stepsRemoved: number;
  timeSource: number;
}

const SYNC_LENGTH = 44;
const FOLLOW_UP_LENGTH = 44;
const ANNOUNCE_LENGTH = 64;
const MAX_MESSAGE_LENGTH = 0xffff;

/** A 64-octet Announce (IEEE 1588-2008 13.5), controlField 5. */
export function encodeAnnounce(fields: AnnounceFields): Uint8Array {
  const bytes = encodeHeader(MessageType.Announce, ControlField.AllOthers, ANNOUNCE_LENGTH, fields);
  const view = viewOf(bytes);
  writeTimestamp(view, 34, "originTimestamp", fields.originTimestamp);
  view.setInt16(44, checkSigned("currentUtcOffset", fields.currentUtcOffset, 16));
  // Octet 46 is reserved (zero).
  view.setUint8(47, checkUnsigned("grandmasterPriority1", fields.grandmasterPriority1, 8));
  writeClockQuality(view, 48, fields.grandmasterClockQuality);
  view.setUint8(52, checkUnsigned("grandmasterPriority2", fields.grandmasterPriority2, 8));
  view.setBigUint64(53, checkBigUnsigned("grandmasterIdentity", fields.grandmasterIdentity, 64));
  view.setUint16(61, checkUnsigned("stepsRemoved", fields.stepsRemoved, 16));
  view.setUint8(63, checkUnsigned("timeSource", fields.timeSource, 8));
  return bytes;
}

/** A Sync (IEEE 1588-2008 13.6), controlField 0, with optional TLVs after the 44-octet body. */
export function encodeSync(fields: SyncFields): Uint8Array {
  return encodeTimestampMessage(MessageType.Sync, ControlField.Sync, SYNC_LENGTH, fields, "originTimestamp", fields.originTimestamp, fields.tlvs);
}

/** A Follow_Up (IEEE 1588-2008 13.7), controlField 2, with optional TLVs after the 44-octet body. */
export function encodeFollowUp(fields: FollowUpFields): Uint8Array {
  return encodeTimestampMessage(
    MessageType.FollowUp,
    ControlField.FollowUp,
    FOLLOW_UP_LENGTH,
    fields,
    "preciseOriginTimestamp",
    fields.preciseOriginTimestamp,
    fields.tlvs,
  );
}

/**
 * A zero-filled message of `messageLength` octets with its 34-octet common header written
 * (IEEE 1588-2008 13.3.1): versionPTP 2, reserved octets zero. The caller writes the body.
 */
export function encodeHeader(messageType: number, controlField: number, messageLength: number, fields: HeaderFields): Uint8Array {
  checkUnsigned("messageType", messageType, 4);
  checkUnsigned("controlField", controlField, 8);
  checkUnsigned("messageLength", messageLength, 16);
  if (messageLength < HEADER_LENGTH) {
    throw new RangeError(`messageLength must be at least ${HEADER_LENGTH}, got ${messageLength}`);
  }
  const transportSpecific = checkUnsigned("transportSpecific", fields.transportSpecific ?? 0, 4);
  const bytes = new Uint8Array(messageLength);
  const view = viewOf(bytes);
  view.setUint8(0, (transportSpecific << 4) | messageType);
  view.setUint8(1, PTP_VERSION); // high nibble: minorVersionPTP 0
  view.setUint16(2, messageLength);
  view.setUint8(4, checkUnsigned("domainNumber", fields.domainNumber, 8));
  view.setUint16(6, checkUnsigned("flagField", fields.flagField, 16));
  view.setBigInt64(8, checkBigSigned("correctionField", fields.correctionField ?? 0n, 64));
  view.setBigUint64(20, checkBigUnsigned("clockIdentity", fields.clockIdentity, 64));
  view.setUint16(28, checkUnsigned("sourcePortNumber", fields.sourcePortNumber, 16));
  view.setUint16(30, checkUnsigned("sequenceId", fields.sequenceId, 16));
  view.setUint8(32, controlField);
  view.setInt8(33, checkSigned("logMessageInterval", fields.logMessageInterval, 8));
  return bytes;
}

/** One TLV (IEEE 1588-2008 14.1.1): tlvType u16, lengthField u16, valueField (even length). */
export function encodeTlv(tlvType: number, valueField: Uint8Array): Uint8Array {
  checkUnsigned("tlvType", tlvType, 16);
  checkUnsigned("lengthField", valueField.byteLength, 16);
  if (valueField.byteLength % 2 !== 0) {
    throw new RangeError(`lengthField must be even (14.1.1), got ${valueField.byteLength}`);
  }
  const bytes = new Uint8Array(TLV_HEADER_LENGTH + valueField.byteLength);
  const view = viewOf(bytes);
  view.setUint16(0, tlvType);
  view.setUint16(2, valueField.byteLength);
  bytes.set(valueField, TLV_HEADER_LENGTH);
  return bytes;
}

/**
 * An ORGANIZATION_EXTENSION TLV (IEEE 1588-2008 14.3.2): organizationId (an OUI, 3 octets),
 * organizationSubType (3 octets), dataField. Apple's Follow_Ups carry these (tlvType 0x0003).
 */
export function encodeOrganizationExtensionTlv(organizationId: number, organizationSubType: number, dataField: Uint8Array): Uint8Array {
  checkUnsigned("organizationId", organizationId, 24);
  checkUnsigned("organizationSubType", organizationSubType, 24);
  const value = new Uint8Array(ORGANIZATION_EXTENSION_HEADER_LENGTH + dataField.byteLength);
  const view = viewOf(value);
  view.setUint16(0, organizationId >>> 8);
  view.setUint8(2, organizationId & 0xff);
  view.setUint16(3, organizationSubType >>> 8);
  view.setUint8(5, organizationSubType & 0xff);
  value.set(dataField, ORGANIZATION_EXTENSION_HEADER_LENGTH);
  return encodeTlv(TlvType.OrganizationExtension, value);
}

// --- shared pieces ----------------------------------------------------------------------------

function encodeTimestampMessage(
  messageType: number,
  controlField: number,
  bodyLength: number,
  fields: HeaderFields,
  timestampName: string,
  timestamp: Timestamp,
  tlvs: TlvBytes | undefined,
): Uint8Array {
  const parts = tlvs === undefined ? [] : tlvs instanceof Uint8Array ? [tlvs] : tlvs;
  let messageLength = bodyLength;
  for (const part of parts) messageLength += part.byteLength;
  if (messageLength > MAX_MESSAGE_LENGTH) {
    throw new RangeError(`tlvs make messageLength ${messageLength}, more than ${MAX_MESSAGE_LENGTH}`);
  }
  const bytes = encodeHeader(messageType, controlField, messageLength, fields);
  writeTimestamp(viewOf(bytes), 34, timestampName, timestamp);
  let offset = bodyLength;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}

/** IEEE 1588-2008 5.3.3: UInteger48 seconds, UInteger32 nanoseconds < 10^9. */
function writeTimestamp(view: DataView, offset: number, name: string, timestamp: Timestamp): void {
  const seconds = checkBigUnsigned(`${name}.seconds`, timestamp.seconds, 48);
  const nanoseconds = checkUnsigned(`${name}.nanoseconds`, timestamp.nanoseconds, 32);
  if (nanoseconds >= NANOSECONDS_PER_SECOND) {
    throw new RangeError(`${name}.nanoseconds must be below 10^9, got ${nanoseconds}`);
  }
  view.setUint16(offset, Number(seconds >> 32n));
  view.setUint32(offset + 2, Number(seconds & 0xffff_ffffn));
  view.setUint32(offset + 6, nanoseconds);
}

/** IEEE 1588-2008 5.3.7: clockClass u8, clockAccuracy u8, offsetScaledLogVariance u16. */
function writeClockQuality(view: DataView, offset: number, quality: ClockQuality): void {
  const name = "grandmasterClockQuality";
  view.setUint8(offset, checkUnsigned(`${name}.clockClass`, quality.clockClass, 8));
  view.setUint8(offset + 1, checkUnsigned(`${name}.clockAccuracy`, quality.clockAccuracy, 8));
  view.setUint16(offset + 2, checkUnsigned(`${name}.offsetScaledLogVariance`, quality.offsetScaledLogVariance, 16));
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// --- range checks: return the value so a write reads as one line ------------------------------

function checkUnsigned(name: string, value: number, bits: number): number {
  const max = 2 ** bits - 1;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkSigned(name: string, value: number, bits: number): number {
  const min = -(2 ** (bits - 1));
  const max = 2 ** (bits - 1) - 1;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkBigUnsigned(name: string, value: bigint, bits: number): bigint {
  if (typeof value !== "bigint" || value < 0n || value >= 1n << BigInt(bits)) {
    throw new RangeError(`${name} must be a bigint in [0, 2^${bits} - 1], got ${String(value)}`);
  }
  return value;
}

function checkBigSigned(name: string, value: bigint, bits: number): bigint {
  const limit = 1n << BigInt(bits - 1);
  if (typeof value !== "bigint" || value < -limit || value >= limit) {
    throw new RangeError(`${name} must be a bigint in [-2^${bits - 1}, 2^${bits - 1} - 1], got ${String(value)}`);
  }
  return value;
}
