// PTP message shapes, IEEE 1588-2008 clause 13. Field names follow the standard.
// These are the decoder's output and the clock tracker's input; both sides import from here.

/** IEEE 1588-2008 13.3.2.2, Table 19 */
export const MessageType = {
  Sync: 0x0,
  DelayReq: 0x1,
  PdelayReq: 0x2,
  PdelayResp: 0x3,
  FollowUp: 0x8,
  DelayResp: 0x9,
  PdelayRespFollowUp: 0xa,
  Announce: 0xb,
  Signaling: 0xc,
  Management: 0xd,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

/** IEEE 1588-2008 13.3.2.6, Table 20: flagField bit 0x0200 of octet 0 is twoStepFlag. */
export const FLAG_TWO_STEP = 0x0200;

/** IEEE 1588-2008 5.3.3 */
export interface Timestamp {
  /** UInteger48 */
  seconds: bigint;
  /** UInteger32, < 10^9 */
  nanoseconds: number;
}

/** IEEE 1588-2008 13.3, common header (34 octets). */
export interface Header {
  transportSpecific: number;
  messageType: number;
  versionPTP: number;
  messageLength: number;
  domainNumber: number;
  flagField: number;
  /** Integer64, units of 2^-16 ns */
  correctionField: bigint;
  /** sourcePortIdentity.clockIdentity as an unsigned 64-bit integer (octets in network order). */
  clockIdentity: bigint;
  /** sourcePortIdentity.portNumber */
  sourcePortNumber: number;
  sequenceId: number;
  controlField: number;
  /** Integer8 */
  logMessageInterval: number;
}

/** IEEE 1588-2008 5.3.7 */
export interface ClockQuality {
  clockClass: number;
  clockAccuracy: number;
  offsetScaledLogVariance: number;
}

export interface SyncMessage {
  kind: "sync";
  header: Header;
  originTimestamp: Timestamp;
}

export interface FollowUpMessage {
  kind: "follow-up";
  header: Header;
  preciseOriginTimestamp: Timestamp;
  /** Octets after the 44-byte body and within messageLength (Apple appends TLVs). */
  tlvLength: number;
}

export interface AnnounceMessage {
  kind: "announce";
  header: Header;
  originTimestamp: Timestamp;
  currentUtcOffset: number;
  grandmasterPriority1: number;
  grandmasterClockQuality: ClockQuality;
  grandmasterPriority2: number;
  grandmasterIdentity: bigint;
  stepsRemoved: number;
  timeSource: number;
}

export interface DelayRespMessage {
  kind: "delay-resp";
  header: Header;
  receiveTimestamp: Timestamp;
  requestingClockIdentity: bigint;
  requestingPortNumber: number;
}

/** Recognised and counted, not used: Delay_Req, Pdelay_*, Signaling, Management, reserved types. */
export interface OtherMessage {
  kind: "other";
  header: Header;
}

export type PtpMessage = SyncMessage | FollowUpMessage | AnnounceMessage | DelayRespMessage | OtherMessage;

export type DecodeErrorKind =
  /** Fewer than 34 octets, or fewer than the message type's body needs. */
  | "truncated"
  /** versionPTP (low nibble of octet 1) is not 2. */
  | "unsupported-version"
  /** messageLength is larger than the datagram, or smaller than the header. */
  | "length-mismatch"
  /** A field is outside its range (e.g. nanoseconds >= 10^9). */
  | "invalid-field";

export interface DecodeError {
  kind: DecodeErrorKind;
  /** Human-readable detail for logs; tests assert kind, never this text. */
  detail: string;
  /** messageType nibble when the header was long enough to read it. */
  messageType?: number;
}

export type DecodeResult = { ok: true; message: PtpMessage } | { ok: false; error: DecodeError };
