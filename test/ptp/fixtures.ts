// PTP datagrams written out octet by octet, each with the message decode() must produce.
// Real ones come from test/fixtures/ptp4l-master-unicast.pcap (ptp4l 3.1.1 as master, plus two
// wake-up Announces from an nqptp-like daemon); `frame` is the Wireshark frame number and the
// tests check the bytes below against that frame. Apple-style ones are synthetic: their layout is
// modelled on what AirPlay senders send (transportSpecific 1, unicast, non-zero correctionField,
// organization extension TLVs after the Follow_Up body), their values are made up.

import type { AnnounceMessage, DelayRespMessage, FollowUpMessage, OtherMessage, PtpMessage, SyncMessage } from "../../src/ptp/types.ts";

export interface Fixture<M extends PtpMessage = PtpMessage> {
  name: string;
  /** Frame number in test/fixtures/ptp4l-master-unicast.pcap, or undefined when synthetic. */
  frame?: number;
  bytes: Uint8Array;
  expected: M;
}

/** Hex octets with `//` comments and any whitespace, as in the fixtures below. */
export function hex(annotated: string): Uint8Array {
  const digits = annotated.replace(/\/\/[^\n]*/g, "").replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`not whole hex octets: ${digits}`);
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** ptp4l's clock: EUI-64 of MAC da:4a:61:6d:5c:71. */
const PTP4L_CLOCK = 0xda4a61fffe6d5c71n;
/** The clock that asked ptp4l for unicast (a second ptp4l, clock id made up by it). */
const UNICAST_CLIENT_CLOCK = 0x020000fffe000027n;
/** The nqptp-like daemon at 10.77.0.2: EUI-64 of MAC 32:1a:18:58:33:8a. */
const WAKER_CLOCK = 0x321a18fffe58338an;
/** A made-up Apple-like clock identity. */
const APPLE_CLOCK = 0xa483e7fffe1b2c3dn;

// --- from the capture ----------------------------------------------------------------------------

export const ptp4lAnnounce: Fixture<AnnounceMessage> = {
  name: "ptp4l Announce, multicast",
  frame: 7,
  bytes: hex(`
    0b                       // transportSpecific 0 | messageType 0xB Announce
    02                       // minorVersionPTP 0 | versionPTP 2
    00 40                    // messageLength 64
    00                       // domainNumber 0
    00                       // reserved (minorSdoId in 1588-2019)
    00 00                    // flagField: none (multicast)
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved (messageTypeSpecific)
    da 4a 61 ff fe 6d 5c 71  // sourcePortIdentity.clockIdentity
    00 01                    // sourcePortIdentity.portNumber 1
    00 00                    // sequenceId 0
    05                       // controlField 5 (all others)
    00                       // logMessageInterval 0 (1 s)
    00 00 00 00 00 00        // originTimestamp.seconds 0 (ptp4l leaves it zero)
    00 00 00 00              // originTimestamp.nanoseconds 0
    00 25                    // currentUtcOffset 37
    00                       // reserved
    01                       // grandmasterPriority1 1
    f8                       // grandmasterClockQuality.clockClass 248 (default)
    fe                       // grandmasterClockQuality.clockAccuracy 0xFE (unknown)
    ff ff                    // grandmasterClockQuality.offsetScaledLogVariance 0xFFFF
    80                       // grandmasterPriority2 128
    da 4a 61 ff fe 6d 5c 71  // grandmasterIdentity (itself)
    00 00                    // stepsRemoved 0
    a0                       // timeSource 0xA0 INTERNAL_OSCILLATOR
  `),
  expected: {
    kind: "announce",
    header: {
      transportSpecific: 0,
      messageType: 0xb,
      versionPTP: 2,
      messageLength: 64,
      domainNumber: 0,
      flagField: 0x0000,
      correctionField: 0n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 0,
      controlField: 5,
      logMessageInterval: 0,
    },
    originTimestamp: { seconds: 0n, nanoseconds: 0 },
    currentUtcOffset: 37,
    grandmasterPriority1: 1,
    grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
    grandmasterPriority2: 128,
    grandmasterIdentity: PTP4L_CLOCK,
    stepsRemoved: 0,
    timeSource: 0xa0,
  },
};

export const ptp4lSyncUnicast: Fixture<SyncMessage> = {
  name: "ptp4l Sync, unicast, two-step",
  frame: 8,
  bytes: hex(`
    00                       // transportSpecific 0 | messageType 0x0 Sync
    02                       // minorVersionPTP 0 | versionPTP 2
    00 2c                    // messageLength 44
    00                       // domainNumber 0
    00                       // reserved
    06 00                    // flagField: unicastFlag 0x0400 | twoStepFlag 0x0200
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    da 4a 61 ff fe 6d 5c 71  // sourcePortIdentity.clockIdentity
    00 01                    // sourcePortIdentity.portNumber 1
    00 00                    // sequenceId 0
    00                       // controlField 0 (Sync)
    7f                       // logMessageInterval 0x7F (unicast: not meaningful, 13.3.2.11)
    00 00 00 00 00 00        // originTimestamp.seconds 0 (two-step: the time is in the Follow_Up)
    00 00 00 00              // originTimestamp.nanoseconds 0
  `),
  expected: {
    kind: "sync",
    header: {
      transportSpecific: 0,
      messageType: 0x0,
      versionPTP: 2,
      messageLength: 44,
      domainNumber: 0,
      flagField: 0x0600,
      correctionField: 0n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 0,
      controlField: 0,
      logMessageInterval: 127,
    },
    originTimestamp: { seconds: 0n, nanoseconds: 0 },
  },
};

export const ptp4lSyncMulticast: Fixture<SyncMessage> = {
  name: "ptp4l Sync, multicast, two-step",
  frame: 13,
  bytes: hex(`
    00 02 00 2c 00 00        // Sync, versionPTP 2, messageLength 44, domain 0, reserved
    02 00                    // flagField: twoStepFlag only
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    da 4a 61 ff fe 6d 5c 71  // clockIdentity
    00 01                    // portNumber 1
    00 01                    // sequenceId 1 (ptp4l numbers unicast and multicast from one counter)
    00                       // controlField 0
    fd                       // logMessageInterval -3 (8 Hz)
    00 00 00 00 00 00 00 00 00 00  // originTimestamp 0
  `),
  expected: {
    kind: "sync",
    header: {
      transportSpecific: 0,
      messageType: 0x0,
      versionPTP: 2,
      messageLength: 44,
      domainNumber: 0,
      flagField: 0x0200,
      correctionField: 0n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 1,
      controlField: 0,
      logMessageInterval: -3,
    },
    originTimestamp: { seconds: 0n, nanoseconds: 0 },
  },
};

export const ptp4lFollowUp: Fixture<FollowUpMessage> = {
  name: "ptp4l Follow_Up, unicast",
  frame: 9,
  bytes: hex(`
    08                       // transportSpecific 0 | messageType 0x8 Follow_Up
    02                       // versionPTP 2
    00 2c                    // messageLength 44: no TLVs
    00                       // domainNumber 0
    00                       // reserved
    04 00                    // flagField: unicastFlag
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    da 4a 61 ff fe 6d 5c 71  // clockIdentity
    00 01                    // portNumber 1
    00 00                    // sequenceId 0: pairs with the Sync of frame 8
    02                       // controlField 2 (Follow_Up)
    fd                       // logMessageInterval -3
    00 00 6b 05 09 77        // preciseOriginTimestamp.seconds 1795492215
    30 10 85 ce              // preciseOriginTimestamp.nanoseconds 806389198
  `),
  expected: {
    kind: "follow-up",
    header: {
      transportSpecific: 0,
      messageType: 0x8,
      versionPTP: 2,
      messageLength: 44,
      domainNumber: 0,
      flagField: 0x0400,
      correctionField: 0n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 0,
      controlField: 2,
      logMessageInterval: -3,
    },
    preciseOriginTimestamp: { seconds: 1795492215n, nanoseconds: 806389198 },
    tlvLength: 0,
  },
};

export const ptp4lSignalingGrant: Fixture<OtherMessage> = {
  name: "ptp4l Signaling, GRANT_UNICAST_TRANSMISSION",
  frame: 2,
  bytes: hex(`
    0c                       // transportSpecific 0 | messageType 0xC Signaling
    02                       // versionPTP 2
    00 38                    // messageLength 56 = 44 + one 12-octet TLV
    00 00                    // domainNumber 0, reserved
    04 00                    // flagField: unicastFlag
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    da 4a 61 ff fe 6d 5c 71  // clockIdentity
    00 01                    // portNumber 1
    00 00                    // sequenceId 0
    05                       // controlField 5
    7f                       // logMessageInterval 0x7F
    02 00 00 ff fe 00 00 27  // targetPortIdentity.clockIdentity (the client)
    00 01                    // targetPortIdentity.portNumber 1
    00 05                    // tlvType GRANT_UNICAST_TRANSMISSION (16.1.4.2)
    00 08                    // lengthField 8
    b0                       // messageType Announce | reserved
    00                       // logInterMessagePeriod 0
    00 00 00 3c              // durationField 60 s
    00                       // reserved
    01                       // renewalInvited
  `),
  expected: {
    kind: "other",
    header: {
      transportSpecific: 0,
      messageType: 0xc,
      versionPTP: 2,
      messageLength: 56,
      domainNumber: 0,
      flagField: 0x0400,
      correctionField: 0n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 0,
      controlField: 5,
      logMessageInterval: 127,
    },
  },
};

export const signalingRequest: Fixture<OtherMessage> = {
  name: "Signaling, REQUEST_UNICAST_TRANSMISSION ×2 (client → ptp4l)",
  frame: 1,
  bytes: hex(`
    0c 02                    // Signaling, versionPTP 2
    00 40                    // messageLength 64 = 44 + two 10-octet TLVs
    00 00                    // domainNumber 0, reserved
    04 00                    // flagField: unicastFlag
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    02 00 00 ff fe 00 00 27  // clockIdentity (the client)
    00 01                    // portNumber 1
    00 01                    // sequenceId 1
    05 7f                    // controlField 5, logMessageInterval 0x7F
    ff ff ff ff ff ff ff ff  // targetPortIdentity.clockIdentity: all ones = any clock
    ff ff                    // targetPortIdentity.portNumber: all ones = any port
    00 04 00 06              // REQUEST_UNICAST_TRANSMISSION (16.1.4.1), lengthField 6
    b0 00 00 00 00 3c        //   Announce, logInterMessagePeriod 0, durationField 60 s
    00 04 00 06              // REQUEST_UNICAST_TRANSMISSION, lengthField 6
    00 fd 00 00 00 3c        //   Sync, logInterMessagePeriod -3, durationField 60 s
  `),
  expected: {
    kind: "other",
    header: {
      transportSpecific: 0,
      messageType: 0xc,
      versionPTP: 2,
      messageLength: 64,
      domainNumber: 0,
      flagField: 0x0400,
      correctionField: 0n,
      clockIdentity: UNICAST_CLIENT_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 1,
      controlField: 5,
      logMessageInterval: 127,
    },
  },
};

export const wakeUpAnnounce: Fixture<AnnounceMessage> = {
  name: "wake-up Announce sent to ptp4l by an nqptp-like daemon",
  frame: 42,
  bytes: hex(`
    1b                       // transportSpecific 1 (not the default profile's 0) | messageType Announce
    02                       // versionPTP 2
    00 40                    // messageLength 64
    00 00                    // domainNumber 0, reserved
    04 08                    // flagField: unicastFlag | ptpTimescale
    00 00 00 00 00 00 00 00  // correctionField 0
    00 00 00 00              // reserved
    32 1a 18 ff fe 58 33 8a  // clockIdentity (EUI-64 of the sender's MAC)
    80 08                    // portNumber 0x8008
    00 00                    // sequenceId 0
    05                       // controlField 5
    fe                       // logMessageInterval -2 (250 ms, Apple's Announce rate)
    00 00 00 00 00 00        // originTimestamp.seconds 0
    00 00 00 00              // originTimestamp.nanoseconds 0
    00 25                    // currentUtcOffset 37
    00                       // reserved
    f8                       // grandmasterPriority1 248
    f8                       // clockClass 248
    fe                       // clockAccuracy 0xFE
    43 6a                    // offsetScaledLogVariance 0x436A (17258)
    f8                       // grandmasterPriority2 248
    32 1a 18 ff fe 58 33 8a  // grandmasterIdentity (itself)
    00 00                    // stepsRemoved 0
    a0                       // timeSource INTERNAL_OSCILLATOR
  `),
  expected: {
    kind: "announce",
    header: {
      transportSpecific: 1,
      messageType: 0xb,
      versionPTP: 2,
      messageLength: 64,
      domainNumber: 0,
      flagField: 0x0408,
      correctionField: 0n,
      clockIdentity: WAKER_CLOCK,
      sourcePortNumber: 0x8008,
      sequenceId: 0,
      controlField: 5,
      logMessageInterval: -2,
    },
    originTimestamp: { seconds: 0n, nanoseconds: 0 },
    currentUtcOffset: 37,
    grandmasterPriority1: 248,
    grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0x436a },
    grandmasterPriority2: 248,
    grandmasterIdentity: WAKER_CLOCK,
    stepsRemoved: 0,
    timeSource: 0xa0,
  },
};

// --- synthetic -----------------------------------------------------------------------------------

export const appleSync: Fixture<SyncMessage> = {
  name: "Apple-style Sync, negative correctionField",
  bytes: hex(`
    10                       // transportSpecific 1 | messageType Sync
    02                       // versionPTP 2
    00 2c                    // messageLength 44
    00 00                    // domainNumber 0, reserved
    06 08                    // flagField: unicastFlag | twoStepFlag | ptpTimescale
    ff ff ff ff ff fe 80 00  // correctionField -98304 (-1.5 ns)
    00 00 00 00              // reserved
    a4 83 e7 ff fe 1b 2c 3d  // clockIdentity
    80 05                    // portNumber 0x8005
    12 34                    // sequenceId 0x1234
    00                       // controlField 0
    fd                       // logMessageInterval -3 (8 Hz)
    00 00 00 01 2c 5e        // originTimestamp.seconds 76894
    07 5b cd 10              // originTimestamp.nanoseconds 123456784
  `),
  expected: {
    kind: "sync",
    header: {
      transportSpecific: 1,
      messageType: 0x0,
      versionPTP: 2,
      messageLength: 44,
      domainNumber: 0,
      flagField: 0x0608,
      correctionField: -98304n,
      clockIdentity: APPLE_CLOCK,
      sourcePortNumber: 0x8005,
      sequenceId: 0x1234,
      controlField: 0,
      logMessageInterval: -3,
    },
    originTimestamp: { seconds: 76894n, nanoseconds: 123456784 },
  },
};

export const appleFollowUp: Fixture<FollowUpMessage> = {
  name: "Apple-style Follow_Up with two organization extension TLVs (90 octets)",
  bytes: hex(`
    18                       // transportSpecific 1 | messageType Follow_Up
    02                       // versionPTP 2
    00 5a                    // messageLength 90 = 44 + 32 + 14
    00 00                    // domainNumber 0, reserved
    04 08                    // flagField: unicastFlag | ptpTimescale
    00 00 00 00 01 b2 80 00  // correctionField 28475392 (434.5 ns)
    00 00 00 00              // reserved
    a4 83 e7 ff fe 1b 2c 3d  // clockIdentity
    80 05                    // portNumber 0x8005
    12 34                    // sequenceId 0x1234 (pairs with appleSync)
    02                       // controlField 2
    fd                       // logMessageInterval -3
    00 00 00 01 2c 5e        // preciseOriginTimestamp.seconds 76894
    07 5b cd 15              // preciseOriginTimestamp.nanoseconds 123456789
    // TLV 1, 32 octets: IEEE 802.1AS Follow_Up information TLV (802.1AS-2011 11.4.4.3)
    00 03                    // tlvType ORGANIZATION_EXTENSION
    00 1c                    // lengthField 28
    00 80 c2                 // organizationId 00-80-C2 (IEEE 802.1)
    00 00 01                 // organizationSubType 1
    00 00 00 00              // cumulativeScaledRateOffset 0
    00 00                    // gmTimeBaseIndicator 0
    00 00 00 00 00 00 00 00 00 00 00 00  // lastGmPhaseChange 0
    00 00 00 00              // scaledLastGmFreqChange 0
    // TLV 2, 14 octets: an Apple organization extension (contents made up)
    00 03                    // tlvType ORGANIZATION_EXTENSION
    00 0a                    // lengthField 10
    00 0d 93                 // organizationId 00-0D-93 (Apple)
    00 00 04                 // organizationSubType 4
    00 00 00 01              // dataField
  `),
  expected: {
    kind: "follow-up",
    header: {
      transportSpecific: 1,
      messageType: 0x8,
      versionPTP: 2,
      messageLength: 90,
      domainNumber: 0,
      flagField: 0x0408,
      correctionField: 28475392n,
      clockIdentity: APPLE_CLOCK,
      sourcePortNumber: 0x8005,
      sequenceId: 0x1234,
      controlField: 2,
      logMessageInterval: -3,
    },
    preciseOriginTimestamp: { seconds: 76894n, nanoseconds: 123456789 },
    tlvLength: 46,
  },
};

export const delayResp: Fixture<DelayRespMessage> = {
  name: "Delay_Resp, nanoseconds at the top of the range",
  bytes: hex(`
    09                       // transportSpecific 0 | messageType 0x9 Delay_Resp
    02                       // versionPTP 2
    00 36                    // messageLength 54
    07                       // domainNumber 7
    00                       // reserved
    00 00                    // flagField 0
    00 00 00 00 00 01 20 00  // correctionField 73728 (1.125 ns)
    00 00 00 00              // reserved
    da 4a 61 ff fe 6d 5c 71  // clockIdentity (the master)
    00 01                    // portNumber 1
    ab cd                    // sequenceId 0xABCD (the Delay_Req's)
    03                       // controlField 3 (Delay_Resp)
    00                       // logMessageInterval 0 (logMinDelayReqInterval)
    ff ff ff ff ff ff        // receiveTimestamp.seconds 2^48 - 1
    3b 9a c9 ff              // receiveTimestamp.nanoseconds 999999999
    02 00 00 ff fe 00 00 27  // requestingPortIdentity.clockIdentity
    00 02                    // requestingPortIdentity.portNumber 2
  `),
  expected: {
    kind: "delay-resp",
    header: {
      transportSpecific: 0,
      messageType: 0x9,
      versionPTP: 2,
      messageLength: 54,
      domainNumber: 7,
      flagField: 0,
      correctionField: 73728n,
      clockIdentity: PTP4L_CLOCK,
      sourcePortNumber: 1,
      sequenceId: 0xabcd,
      controlField: 3,
      logMessageInterval: 0,
    },
    receiveTimestamp: { seconds: 0xffff_ffff_ffffn, nanoseconds: 999_999_999 },
    requestingClockIdentity: UNICAST_CLIENT_CLOCK,
    requestingPortNumber: 2,
  },
};

export const delayReq: Fixture<OtherMessage> = {
  name: "Delay_Req (recognised, not used)",
  bytes: hex(`
    01 02 00 2c              // Delay_Req, versionPTP 2, messageLength 44
    00 00 00 00              // domainNumber 0, reserved, flagField 0
    80 00 00 00 00 00 00 00  // correctionField -2^63 (the most negative Integer64)
    00 00 00 00              // reserved
    ff ff ff ff ff ff ff ff  // clockIdentity 2^64 - 1
    ff ff                    // portNumber 65535
    ff ff                    // sequenceId 65535
    01 7f                    // controlField 1, logMessageInterval 0x7F
    00 00 00 00 00 00 00 00 00 00  // originTimestamp 0
  `),
  expected: {
    kind: "other",
    header: {
      transportSpecific: 0,
      messageType: 0x1,
      versionPTP: 2,
      messageLength: 44,
      domainNumber: 0,
      flagField: 0,
      correctionField: -(2n ** 63n),
      clockIdentity: 2n ** 64n - 1n,
      sourcePortNumber: 65535,
      sequenceId: 65535,
      controlField: 1,
      logMessageInterval: 127,
    },
  },
};

export const allFixtures: readonly Fixture[] = [
  ptp4lAnnounce,
  ptp4lSyncUnicast,
  ptp4lSyncMulticast,
  ptp4lFollowUp,
  ptp4lSignalingGrant,
  signalingRequest,
  wakeUpAnnounce,
  appleSync,
  appleFollowUp,
  delayResp,
  delayReq,
];

/** Fixed-body length of each fixture's type (what messageLength may not go below). */
export function bodyLength(fixture: Fixture): number {
  const byType: Record<number, number> = { 0x0: 44, 0x1: 44, 0x8: 44, 0x9: 54, 0xb: 64, 0xc: 44 };
  const length = byType[fixture.expected.header.messageType];
  if (length === undefined) throw new Error(`no body length for ${fixture.name}`);
  return length;
}
