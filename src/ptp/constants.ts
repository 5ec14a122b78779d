// Wire-format constants of IEEE 1588-2008 used by the decoder and the encoder.
// Message type values and FLAG_TWO_STEP live in ./types.ts with the message shapes.

/** IEEE 1588-2008 13.3.1: the common header is 34 octets. */
export const HEADER_LENGTH = 34;

/** IEEE 1588-2008 13.3.2.3: the only versionPTP this daemon speaks. */
export const PTP_VERSION = 2;

/** IEEE 1588-2008 5.3.3: a Timestamp is UInteger48 seconds + UInteger32 nanoseconds. */
export const TIMESTAMP_LENGTH = 10;
export const NANOSECONDS_PER_SECOND = 1_000_000_000;

/**
 * Octets each message type needs (header + fixed body), IEEE 1588-2008 13.5–13.12 and 15.4.1
 * (Management). Indexed by the messageType nibble; reserved types need only the header.
 */
export const MESSAGE_LENGTH_BY_TYPE: readonly number[] = [
  44, // 0x0 Sync: originTimestamp (13.6)
  44, // 0x1 Delay_Req: originTimestamp (13.6)
  54, // 0x2 Pdelay_Req: originTimestamp + 10 reserved (13.9)
  54, // 0x3 Pdelay_Resp: requestReceiptTimestamp + requestingPortIdentity (13.10)
  34, // 0x4 reserved
  34, // 0x5 reserved
  34, // 0x6 reserved
  34, // 0x7 reserved
  44, // 0x8 Follow_Up: preciseOriginTimestamp (13.7)
  54, // 0x9 Delay_Resp: receiveTimestamp + requestingPortIdentity (13.8)
  54, // 0xA Pdelay_Resp_Follow_Up: responseOriginTimestamp + requestingPortIdentity (13.11)
  64, // 0xB Announce (13.5)
  44, // 0xC Signaling: targetPortIdentity (13.12)
  48, // 0xD Management: targetPortIdentity, boundary hops, actionField (15.4.1)
  34, // 0xE reserved
  34, // 0xF reserved
];

/** IEEE 1588-2008 13.3.2.10: controlField, kept for PTPv1 hardware (2019 says: ignore on receipt). */
export const ControlField = {
  Sync: 0,
  DelayReq: 1,
  FollowUp: 2,
  DelayResp: 3,
  Management: 4,
  AllOthers: 5,
} as const;

/**
 * IEEE 1588-2008 13.3.2.11: logMessageInterval 0x7F for messages where it has no meaning,
 * e.g. unicast Sync and Signaling (ptp4l sends it so; the capture shows it).
 */
export const LOG_MESSAGE_INTERVAL_UNSPECIFIED = 0x7f;

/** IEEE 1588-2008 13.3.2.6, Table 20: flagField bits (octet 0 is the high byte). */
export const Flag = {
  alternateMaster: 0x0100,
  twoStep: 0x0200,
  unicast: 0x0400,
  profileSpecific1: 0x2000,
  profileSpecific2: 0x4000,
  /** Annex K security; reserved in the main text. */
  security: 0x8000,
  leap61: 0x0001,
  leap59: 0x0002,
  currentUtcOffsetValid: 0x0004,
  ptpTimescale: 0x0008,
  timeTraceable: 0x0010,
  frequencyTraceable: 0x0020,
} as const;

/** IEEE 1588-2008 14.1.1: a TLV is tlvType u16, lengthField u16, then lengthField octets. */
export const TLV_HEADER_LENGTH = 4;

/** IEEE 1588-2008 14.1.1: tlvType values (the ones we meet). */
export const TlvType = {
  Management: 0x0001,
  ManagementErrorStatus: 0x0002,
  OrganizationExtension: 0x0003,
  RequestUnicastTransmission: 0x0004,
  GrantUnicastTransmission: 0x0005,
  CancelUnicastTransmission: 0x0006,
  AcknowledgeCancelUnicastTransmission: 0x0007,
  PathTrace: 0x0008,
} as const;

/** IEEE 1588-2008 14.3.2: organizationId (3 octets) and organizationSubType (3 octets). */
export const ORGANIZATION_EXTENSION_HEADER_LENGTH = 6;

/** IEEE 1588-2008 7.6.2.6: timeSource values. */
export const TimeSource = {
  AtomicClock: 0x10,
  Gps: 0x20,
  TerrestrialRadio: 0x30,
  Ptp: 0x40,
  Ntp: 0x50,
  HandSet: 0x60,
  Other: 0x90,
  InternalOscillator: 0xa0,
} as const;
