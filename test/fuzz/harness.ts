// Fuzzing the pure core: datagrams through decode() and, when they decode, through the clock
// tracker's reduce(); control messages through parseControlMessage(). Shared by the suite
// (test/fuzz/fuzz.test.ts, a CI-sized run) and bench/fuzz.ts (the full run, with rates).
//
// Everything comes from one seeded PRNG (test/support/prng.ts), so a seed replays a run exactly:
// a failure names the seed, the case number and the bytes. The tracker sees a made-up local clock
// that advances a little per datagram, jumps past the garbage-collection timeout now and then and
// sometimes steps back (CLOCK_REALTIME does, for interface 5).
//
// The stream mixes:
//   - a well-behaved timing peer (Announce, Sync, Follow_Up in order), so publishing is exercised;
//   - non-peers announcing themselves as the best clock there is (priority1 0, clockClass 6) with
//     Sync/Follow_Up: they must never be published nor sent anything;
//   - mutations of valid Sync / Follow_Up (with Apple-like TLVs) / Announce / Signaling /
//     Delay_Resp / Management encodings: bit flips, truncation, messageLength lies, version and
//     type nibbles, huge TLV lengths, splices of two messages, bad nanoseconds, our own clock id;
//   - plain random bytes.

import { reduce, createTracker, type TrackerEffect, type TrackerState } from "../../src/clock/tracker.ts";
import { publishedRecord } from "../../src/clock/select.ts";
import { dispatchControl } from "../../src/control/dispatch.ts";
import { parseControlMessage, MAX_CONTROL_MESSAGE_BYTES, type ControlErrorKind } from "../../src/control/parse.ts";
import { isInterfaceVersion, traitsOf, type InterfaceVersion } from "../../src/rules/interface-version.ts";
import { parseAddress } from "../../src/rules/ip-address.ts";
import { OwnAddresses } from "../../src/net/host.ts";
import { PtpIngress } from "../../src/net/ptp-ingress.ts";
import { LogRateLimiter } from "../../src/util/rate-limit.ts";
import { decode } from "../../src/ptp/decode.ts";
import { encodeAnnounce, encodeFollowUp, encodeHeader, encodeOrganizationExtensionTlv, encodeSync, encodeTlv } from "../../src/ptp/encode.ts";
import { FLAG_TWO_STEP, type DecodeErrorKind, type DecodeResult, type PtpMessage } from "../../src/ptp/types.ts";
import { createPrng, type Prng } from "../support/prng.ts";
import { trackerOptions } from "../clock/helpers.ts";
import { ptpTimestamp } from "../support/timestamp.ts";

export const S = 1_000_000_000n;
export const MS = 1_000_000n;
const U64_MASK = (1n << 64n) - 1n;

export const OUR_CLOCK_ID = 0x0011_22ff_fe33_4455n;
export const MAX_RECORDS = 32;

/** The timing peer (5, 6) and followed clock (8–10). */
export const PEER_IP = "10.0.0.1";
export const PEER_CLOCK_ID = 0x00aa_bbff_fecc_dd01n;
/** master time − local time of the well-behaved peer. */
export const PEER_OFFSET_NS = 1_234_567_890_123n;
/** Other addresses that speak: far more than the table holds. IPv4 and IPv6 text. */
export const NON_PEERS: readonly string[] = [
  ...Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}`),
  ...Array.from({ length: 20 }, (_, i) => `fe80::${(i + 1).toString(16)}`),
  "0.0.0.0",
  "::",
  "255.255.255.255",
  "",
];

/** Every kind the decoder declares: the type checker holds this to exactly src/ptp/types.ts's union. */
const DECODE_ERROR_KINDS: Record<DecodeErrorKind, true> = {
  truncated: true,
  "unsupported-version": true,
  "length-mismatch": true,
  "invalid-field": true,
};

export interface FuzzFailure {
  seed: number;
  caseIndex: number;
  what: string;
  detail: string;
  hex?: string;
}

export interface PtpFuzzOptions {
  seed: number;
  count: number;
  /** Tracker interface versions to drive in parallel (each gets every datagram that decodes). */
  versions: readonly number[];
  /** Stop collecting after this many failures. */
  maxFailures?: number;
  /** Every this many cases, the expensive invariants (whole-table scans, purity checks). */
  deepCheckEvery?: number;
}

export interface PtpFuzzResult {
  seed: number;
  cases: number;
  /** "random", "valid-peer", "valid-rogue", "mutated:<mutation>" → count. */
  sources: Record<string, number>;
  /** "ok:<kind>" or "error:<kind>" → count. */
  outcomes: Record<string, number>;
  /** Per version: effects by kind, publishes of the peer, the largest table, states. */
  trackers: Record<
    string,
    {
      reduced: number;
      effects: Record<string, number>;
      maxRecords: number;
      maxLogLimitKeys: number;
      maxSamples: number;
      publishedPeer: number;
      publishedNull: number;
      overflowEpisodes: number;
      finalRecords: number;
    }
  >;
  /** Simulated time covered. */
  simulatedSeconds: number;
  failures: FuzzFailure[];
  elapsedMs: number;
}

// ---------------------------------------------------------------------------------------------
// Valid encodings to start from

function appleFollowUpTlvs(random: Prng): Uint8Array[] {
  // Apple's Follow_Ups carry 802.1AS-style organization extensions (OUI 00:80:C2, subtype 1),
  // plus one of Apple's own (OUI 00:0D:93).
  return [encodeOrganizationExtensionTlv(0x0080c2, 1, random.bytes(20)), encodeOrganizationExtensionTlv(0x000d93, 4, random.bytes(32))];
}

export interface Templates {
  sync(clockIdentity: bigint, sequenceId: number): Uint8Array;
  followUp(clockIdentity: bigint, sequenceId: number, preciseOriginNs: bigint, tlvs: boolean): Uint8Array;
  announce(clockIdentity: bigint, sequenceId: number, best: boolean): Uint8Array;
  signaling(clockIdentity: bigint, sequenceId: number): Uint8Array;
  delayResp(clockIdentity: bigint, sequenceId: number): Uint8Array;
  management(clockIdentity: bigint, sequenceId: number): Uint8Array;
}

export function templates(random: Prng): Templates {
  const common = (clockIdentity: bigint, sequenceId: number) => ({
    transportSpecific: 1,
    domainNumber: 0,
    clockIdentity,
    sourcePortNumber: 1,
    sequenceId: sequenceId & 0xffff,
    logMessageInterval: -3,
  });
  return {
    sync: (id, seq) => encodeSync({ ...common(id, seq), flagField: FLAG_TWO_STEP, originTimestamp: { seconds: 0n, nanoseconds: 0 } }),
    followUp: (id, seq, precise, tlvs) =>
      encodeFollowUp({
        ...common(id, seq),
        flagField: 0,
        preciseOriginTimestamp: ptpTimestamp(precise),
        ...(tlvs ? { tlvs: appleFollowUpTlvs(random) } : {}),
      }),
    announce: (id, seq, best) =>
      encodeAnnounce({
        ...common(id, seq),
        flagField: 0x0408,
        logMessageInterval: 0,
        originTimestamp: { seconds: 1_700_000_000n, nanoseconds: 5 },
        currentUtcOffset: 37,
        grandmasterPriority1: best ? 0 : 248,
        grandmasterClockQuality: best
          ? { clockClass: 6, clockAccuracy: 0x20, offsetScaledLogVariance: 0x4e5d }
          : { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
        grandmasterPriority2: best ? 0 : 248,
        grandmasterIdentity: id,
        stepsRemoved: 0,
        timeSource: 0xa0,
      }),
    signaling: (id, seq) => {
      // 13.12: targetPortIdentity (10 octets) then TLVs; here a REQUEST_UNICAST_TRANSMISSION.
      const tlv = encodeTlv(0x0004, new Uint8Array([0xb0, 0x00, 0x00, 0x00, 0x00, 0x3c]));
      const bytes = encodeHeader(0xc, 5, 44 + tlv.byteLength, { ...common(id, seq), flagField: 0x0400, logMessageInterval: 0x7f });
      bytes.fill(0xff, 34, 44);
      bytes.set(tlv, 44);
      return bytes;
    },
    delayResp: (id, seq) => {
      const bytes = encodeHeader(0x9, 3, 54, { ...common(id, seq), flagField: 0 });
      bytes.set(random.bytes(10), 44);
      new DataView(bytes.buffer).setUint32(40, 123_456_789);
      return bytes;
    },
    management: (id, seq) => {
      // 15.4.1: targetPortIdentity, startingBoundaryHops, boundaryHops, actionField, reserved; a
      // GET of the DEFAULT_DATA_SET (management TLV, id 0x2000).
      const tlv = encodeTlv(0x0001, new Uint8Array([0x20, 0x00]));
      const bytes = encodeHeader(0xd, 4, 48 + tlv.byteLength, { ...common(id, seq), flagField: 0 });
      bytes.fill(0xff, 34, 44);
      bytes.set(tlv, 48);
      return bytes;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING_U16 = [0, 1, 33, 34, 35, 43, 44, 45, 53, 54, 63, 64, 65, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_U8 = [0, 1, 2, 0x0f, 0x10, 0x12, 0x7f, 0x80, 0xfe, 0xff];

function copyOf(bytes: Uint8Array, length = bytes.byteLength): Uint8Array {
  const out = new Uint8Array(length);
  out.set(bytes.subarray(0, Math.min(length, bytes.byteLength)));
  return out;
}

function setU16(bytes: Uint8Array, at: number, value: number): void {
  if (at + 1 < bytes.byteLength) {
    bytes[at] = (value >>> 8) & 0xff;
    bytes[at + 1] = value & 0xff;
  }
}

type Mutation = (random: Prng, bytes: Uint8Array, other: Uint8Array) => Uint8Array;

export const MUTATIONS: Record<string, Mutation> = {
  "bit-flips": (random, bytes) => {
    const out = copyOf(bytes);
    const flips = random.int(1, 8);
    for (let i = 0; i < flips && out.byteLength > 0; i++) out[random.int(0, out.byteLength - 1)]! ^= 1 << random.int(0, 7);
    return out;
  },
  "interesting-byte": (random, bytes) => {
    const out = copyOf(bytes);
    if (out.byteLength > 0) out[random.int(0, out.byteLength - 1)] = random.pick(INTERESTING_U8);
    return out;
  },
  truncate: (random, bytes) => copyOf(bytes, random.int(0, bytes.byteLength)),
  extend: (random, bytes) => {
    const out = copyOf(bytes, bytes.byteLength + random.int(1, 200));
    out.set(random.bytes(out.byteLength - bytes.byteLength), bytes.byteLength);
    return out;
  },
  "length-lie": (random, bytes) => {
    const out = copyOf(bytes);
    const choice = random.int(0, 3);
    const value =
      choice === 0
        ? random.pick(INTERESTING_U16)
        : choice === 1
          ? out.byteLength + random.int(-12, 12)
          : choice === 2
            ? random.int(0, 0xffff)
            : out.byteLength;
    const lie = Math.max(0, Math.min(0xffff, value));
    setU16(out, 2, lie);
    // Sometimes the datagram is cut to agree with the lie, or padded to it.
    if (random.int(0, 3) === 0) return copyOf(out, Math.min(lie, 1500));
    return out;
  },
  "version-nibble": (random, bytes) => {
    const out = copyOf(bytes);
    if (out.byteLength > 1) out[1] = (random.int(0, 15) << 4) | random.int(0, 15);
    return out;
  },
  "type-nibble": (random, bytes) => {
    const out = copyOf(bytes);
    if (out.byteLength > 0) out[0] = (out[0]! & 0xf0) | random.int(0, 15);
    return out;
  },
  "huge-tlv-length": (random, bytes) => {
    // A TLV header right after the body whose lengthField runs far past the datagram.
    const at = random.pick([44, 48, 54, 64]);
    const out = copyOf(bytes, Math.max(bytes.byteLength, at + 4 + random.int(0, 8)));
    setU16(out, at, random.pick([0x0003, 0x0001, 0x0004, 0xffff, random.int(0, 0xffff)]));
    setU16(out, at + 2, random.pick([0xffff, 0xfffe, 0x8000, out.byteLength, random.int(0, 0xffff)]));
    if (random.int(0, 1) === 0) setU16(out, 2, out.byteLength);
    return out;
  },
  splice: (random, bytes, other) => {
    const cut = random.int(0, bytes.byteLength);
    const from = random.int(0, other.byteLength);
    const out = new Uint8Array(cut + other.byteLength - from);
    out.set(bytes.subarray(0, cut));
    out.set(other.subarray(from), cut);
    return out;
  },
  "bad-nanoseconds": (random, bytes) => {
    const out = copyOf(bytes);
    if (out.byteLength >= 44) new DataView(out.buffer).setUint32(40, random.pick([999_999_999, 1_000_000_000, 0xffff_ffff, random.u32()]));
    return out;
  },
  "field-extremes": (random, bytes) => {
    // correctionField, timestamps, sequenceId, stepsRemoved, logMessageInterval at their limits.
    const out = copyOf(bytes);
    const view = new DataView(out.buffer);
    const at = random.pick([8, 30, 33, 34, 44, 47, 48, 52, 53, 61]);
    if (at + 8 <= out.byteLength) {
      if (at === 8 || at === 53) view.setBigUint64(at, random.pick([0n, U64_MASK, 1n << 63n, (1n << 63n) - 1n, BigInt(random.u32()) << 32n]));
      else view.setUint16(at, random.pick(INTERESTING_U16));
    }
    return out;
  },
  "our-clock-id": (_random, bytes) => {
    const out = copyOf(bytes);
    if (out.byteLength >= 28) new DataView(out.buffer).setBigUint64(20, OUR_CLOCK_ID);
    return out;
  },
  stacked: (random, bytes, other) => {
    let out = bytes;
    const n = random.int(2, 4);
    for (let i = 0; i < n; i++) out = MUTATIONS[random.pick(STACKABLE)]!(random, out, other);
    return out;
  },
};
const STACKABLE = Object.keys(MUTATIONS).filter((m) => m !== "stacked");
const MUTATION_NAMES = Object.keys(MUTATIONS);

// ---------------------------------------------------------------------------------------------
// The run

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 256)).toString("hex") + (bytes.byteLength > 256 ? "…" : "");
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

interface Driven {
  version: number;
  state: TrackerState;
  stats: PtpFuzzResult["trackers"][string];
  overflowWasActive: boolean;
}

/**
 * What the daemon does with a datagram that arrived on the general port from `source` (port 320):
 * its PTP ingress (src/net/ptp-ingress.ts) checks and decodes it, and only a decoded message
 * reaches the reducer. No host address is "ours" here.
 */
export function shellStep(state: TrackerState, bytes: Uint8Array, source: string, nowNs: bigint): { state: TrackerState; effects: TrackerEffect[] } {
  let step: { state: TrackerState; effects: TrackerEffect[] } = { state, effects: [] };
  toReducer = (from, message, receivedAtNs) => {
    step = reduce(state, { kind: "ptp", source: from, message, receivedAtNs }, nowNs);
  };
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  ingress.onDatagram({ role: "general", data, port: 320, address: source, receivedAtNs: nowNs, kernelStamp: false });
  return step;
}

let toReducer: (source: string, message: PtpMessage, receivedAtNs: bigint) => void = () => {};
const ingress = new PtpIngress({
  eventPort: 319,
  generalPort: 320,
  log: { debug: () => {} },
  limiter: new LogRateLimiter(60_000),
  own: new OwnAddresses(() => new Set()),
  onMessage: (source, message, receivedAtNs) => toReducer(source, message, receivedAtNs),
});

export function runPtpFuzz(options: PtpFuzzOptions): PtpFuzzResult {
  const { seed, count } = options;
  const maxFailures = options.maxFailures ?? 20;
  const deepCheckEvery = options.deepCheckEvery ?? 997;
  const random = createPrng(seed);
  const t = templates(random);
  const failures: FuzzFailure[] = [];
  const sources: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  const fail = (caseIndex: number, what: string, detail: string, bytes?: Uint8Array) => {
    if (failures.length < maxFailures) failures.push({ seed, caseIndex, what, detail, ...(bytes ? { hex: hex(bytes) } : {}) });
  };

  // Local clock: starts at an ordinary CLOCK_REALTIME value.
  const T0 = 1_700_000_000n * S;
  let now = T0;

  const driven: Driven[] = [];
  for (const version of options.versions) {
    if (!isInterfaceVersion(version)) throw new Error(`the tracker does not serve interface ${version}`);
    let state = createTracker(trackerOptions({ interfaceVersion: version, ourClockIdentity: OUR_CLOCK_ID }));
    if (traitsOf(version).followsOneClock) {
      state = reduce(state, { kind: "follow", address: PEER_IP }, now).state;
      if (traitsOf(version).hasPlayCommands) state = reduce(state, { kind: "play-begin" }, now).state;
    } else {
      state = reduce(state, { kind: "timing-peers", addresses: [PEER_IP, "10.0.0.2"] }, now).state;
    }
    driven.push({
      version,
      state,
      overflowWasActive: false,
      stats: {
        reduced: 0,
        effects: {},
        maxRecords: state.records.size,
        maxLogLimitKeys: 0,
        maxSamples: 0,
        publishedPeer: 0,
        publishedNull: 0,
        overflowEpisodes: 0,
        finalRecords: 0,
      },
    });
  }
  const peersOf = (d: Driven): readonly string[] => d.state.peers;

  // Well-behaved peer: Announce every 8th step of its own, Sync+Follow_Up otherwise.
  let peerSeq = 0;
  let peerAnnounceSeq = 0;
  let peerStep = 0;
  const rogueSeq = new Map<string, number>();
  const corpus: Uint8Array[] = [];

  const started = performance.now();
  for (let i = 0; i < count; i++) {
    // The local clock: mostly forward by up to 2 ms; sometimes a GC-sized leap; rarely a step back.
    const roll = random.u32() % 10_000;
    if (roll === 0) now += 121n * S + BigInt(random.int(0, 5000)) * MS;
    else if (roll === 1) now -= BigInt(random.int(1, 2000)) * MS;
    else now += BigInt(random.int(0, 2_000_000));

    let bytes: Uint8Array;
    let source: string;
    let origin: string;
    const kind = random.int(0, 99);
    if (kind < 12) {
      // The peer: Announce, Sync, Follow_Up in order, with a constant offset.
      origin = "valid-peer";
      source = PEER_IP;
      const phase = peerStep++ % 17;
      if (phase === 0) bytes = t.announce(PEER_CLOCK_ID, peerAnnounceSeq++, false);
      else if (phase % 2 === 1) bytes = t.sync(PEER_CLOCK_ID, peerSeq);
      else bytes = t.followUp(PEER_CLOCK_ID, peerSeq++, now + PEER_OFFSET_NS, random.int(0, 1) === 0);
    } else if (kind < 27) {
      // A rogue that is not a peer, claiming to be the best clock there is.
      origin = "valid-rogue";
      source = random.pick(NON_PEERS);
      const id = 0x0066_0000_0000_0000n | BigInt(NON_PEERS.indexOf(source) + 1);
      const seq = rogueSeq.get(source) ?? 0;
      rogueSeq.set(source, seq + 1);
      const phase = seq % 3;
      bytes =
        phase === 0 ? t.announce(id, seq, true) : phase === 1 ? t.sync(id, seq) : t.followUp(id, seq - 1, now + BigInt(random.u32()) * MS, true);
    } else if (kind < 32) {
      origin = "random";
      source = random.pick(NON_PEERS);
      bytes = random.bytes(random.pick([0, 1, 33, 34, 44, 64, random.int(0, 1500)]));
    } else {
      // A mutation of a valid encoding, from anyone (the peer included).
      source = random.int(0, 9) === 0 ? PEER_IP : random.pick(NON_PEERS);
      const id = source === PEER_IP ? PEER_CLOCK_ID : BigInt(random.u32());
      const seq = random.int(0, 0xffff);
      const base = random.int(0, 9);
      const valid =
        base <= 2
          ? t.sync(id, seq)
          : base <= 5
            ? t.followUp(id, seq, now + PEER_OFFSET_NS, random.int(0, 1) === 0)
            : base <= 7
              ? t.announce(id, seq, random.int(0, 1) === 0)
              : base === 8
                ? t.signaling(id, seq)
                : random.int(0, 1) === 0
                  ? t.delayResp(id, seq)
                  : t.management(id, seq);
      if (corpus.length < 64) corpus.push(valid);
      else corpus[random.int(0, 63)] = valid;
      const mutation = random.pick(MUTATION_NAMES);
      origin = `mutated:${mutation}`;
      bytes = MUTATIONS[mutation]!(random, valid, random.pick(corpus));
    }
    bump(sources, origin);

    // ---- decode: total, never throws ----
    let result: DecodeResult;
    try {
      result = decode(bytes);
    } catch (error) {
      fail(i, "decode threw", String((error as Error)?.stack ?? error), bytes);
      continue;
    }
    if (result.ok) {
      const m = result.message;
      bump(outcomes, `ok:${m.kind}`);
      const h = m.header;
      if (h.versionPTP !== 2 || h.messageLength < 34 || h.messageLength > bytes.byteLength) {
        fail(i, "decoded header out of range", `versionPTP ${h.versionPTP}, messageLength ${h.messageLength}, datagram ${bytes.byteLength}`, bytes);
      }
      const stamp =
        m.kind === "sync" || m.kind === "announce"
          ? m.originTimestamp
          : m.kind === "follow-up"
            ? m.preciseOriginTimestamp
            : m.kind === "delay-resp"
              ? m.receiveTimestamp
              : null;
      if (stamp && !(stamp.nanoseconds >= 0 && stamp.nanoseconds < 1e9 && stamp.seconds >= 0n && stamp.seconds < 1n << 48n)) {
        fail(i, "decoded timestamp out of range", JSON.stringify({ s: String(stamp.seconds), ns: stamp.nanoseconds }), bytes);
      }
    } else {
      bump(outcomes, `error:${result.error.kind}`);
      if (!Object.hasOwn(DECODE_ERROR_KINDS, result.error.kind) || typeof result.error.detail !== "string") {
        fail(i, "unknown decode error", JSON.stringify(result.error), bytes);
      }
    }

    // ---- purity and trailing octets, on a sample ----
    if (i % deepCheckEvery === 0) {
      const before = hex(bytes);
      const again = decode(bytes);
      if (hex(bytes) !== before) fail(i, "decode changed its input", before, bytes);
      if (!Bun.deepEquals(again, result)) fail(i, "decode is not deterministic", "", bytes);
      if (result.ok) {
        // Octets after messageLength are ignored: padding must not change the message.
        const padded = copyOf(bytes, bytes.byteLength + 17);
        const r2 = decode(padded);
        if (!r2.ok || !Bun.deepEquals(r2.message, result.message))
          fail(i, "trailing octets changed the verdict", JSON.stringify(r2.ok ? "ok" : r2.error), bytes);
      }
    }

    // ---- the tracker, as the shell drives it ----
    for (const d of driven) {
      const before = d.state;
      let step: ReturnType<typeof shellStep>;
      try {
        step = shellStep(d.state, bytes, source, now);
      } catch (error) {
        fail(i, `reduce threw (interface ${d.version})`, String((error as Error)?.stack ?? error), bytes);
        continue;
      }
      if (!result.ok) {
        if (step.state !== before || step.effects.length > 0) fail(i, "a rejected datagram changed the state", "", bytes);
        continue;
      }
      d.stats.reduced++;
      d.state = step.state;
      const s = d.state;
      if (s.records.size > MAX_RECORDS) fail(i, `records table exceeds ${MAX_RECORDS} (interface ${d.version})`, String(s.records.size), bytes);
      if (s.records.size > d.stats.maxRecords) d.stats.maxRecords = s.records.size;
      if (s.overflow.active && !d.overflowWasActive) d.stats.overflowEpisodes++;
      d.overflowWasActive = s.overflow.active;
      for (const effect of step.effects) {
        bump(d.stats.effects, effect.kind);
        if (effect.kind === "publish") {
          if (effect.master === null) d.stats.publishedNull++;
          else if (!peersOf(d).includes(effect.master.ip)) {
            fail(i, `a non-peer was published (interface ${d.version})`, `${effect.master.ip} (peers ${peersOf(d).join(",")})`, bytes);
          } else d.stats.publishedPeer++;
        } else if (effect.kind === "send-announce" && !peersOf(d).includes(effect.to)) {
          fail(i, `an Announce was sent to a non-peer (interface ${d.version})`, effect.to, bytes);
        }
      }
      // The published record is always a peer's (the state's own view, not just the effects).
      const regions = s.selection !== null ? [publishedRecord(s.selection.master)] : [...s.clients!.values()].map((c) => c.published);
      for (const published of regions) {
        if (published !== null && !peersOf(d).includes(published.ip)) {
          fail(i, `a region's published record is a non-peer (interface ${d.version})`, published.ip, bytes);
        }
      }
      if (i % deepCheckEvery === 0) {
        if (s.logLimits.size > d.stats.maxLogLimitKeys) d.stats.maxLogLimitKeys = s.logLimits.size;
        for (const r of s.records.values()) {
          if (r.samples.length > d.stats.maxSamples) d.stats.maxSamples = r.samples.length;
          if (r.samples.length > s.config.sampleRingSize) fail(i, "a sample ring overflowed", `${r.ip}: ${r.samples.length}`);
        }
        if (s.logLimits.size > 64) fail(i, "the log limiter's keys keep growing", String(s.logLimits.size));
      }
    }
  }
  for (const d of driven) d.stats.finalRecords = d.state.records.size;

  return {
    seed,
    cases: count,
    sources,
    outcomes,
    trackers: Object.fromEntries(driven.map((d) => [`v${d.version}`, d.stats])),
    simulatedSeconds: Number((now - T0) / MS) / 1000,
    failures,
    elapsedMs: performance.now() - started,
  };
}

// ---------------------------------------------------------------------------------------------
// Control messages

export interface ControlFuzzOptions {
  seed: number;
  /** Messages per interface version. */
  countPerVersion: number;
  versions: readonly InterfaceVersion[];
  maxFailures?: number;
}

export interface ControlFuzzResult {
  seed: number;
  cases: number;
  /** "<version> ok:<kind>" / "<version> error:<kind>" → count. */
  outcomes: Record<string, number>;
  /** Tracker steps driven by accepted commands; the largest table they produced. */
  trackerSteps: number;
  maxRecords: number;
  /** The most clients (regions) any tracker held (interfaces 8-10). */
  maxClients: number;
  failures: FuzzFailure[];
  elapsedMs: number;
}

/** Every kind the parser declares: the type checker holds this to exactly src/control/parse.ts's union. */
const CONTROL_ERROR_KINDS: Record<ControlErrorKind, true> = {
  "too-long": true,
  empty: true,
  "not-text": true,
  "unknown-command": true,
  "unexpected-arguments": true,
  "wrong-form": true,
};

const utf8 = new TextEncoder();

/**
 * The client name rule of spec section 11, stated on its own (not src/rules/shm-name.ts's code, so
 * that a wrong rule there is caught, not only a missing call): "/" first and no other "/", 2 to 63
 * bytes of UTF-8, printable (no control or format character), no spaces; and not "/." or "/..",
 * which shm_open would take for /dev/shm itself or its parent.
 */
function isClientName(name: string): boolean {
  const bytes = utf8.encode(name);
  if (bytes.length < 2 || bytes.length > 63) return false;
  if (bytes[0] !== 0x2f || bytes.indexOf(0x2f, 1) !== -1) return false;
  if (name === "/." || name === "/..") return false;
  for (const char of name) {
    const code = char.codePointAt(0)!;
    if (code <= 0x20 || (code >= 0x7f && code <= 0xa0)) return false; // C0, space, DEL, C1, no-break space
    if (/^[\s\p{General_Category=Format}\p{General_Category=Line_Separator}\p{General_Category=Paragraph_Separator}]$/u.test(char)) return false;
  }
  return true;
}
const encoder = new TextEncoder();

function randomAddress(random: Prng): string {
  switch (random.int(0, 9)) {
    case 0:
      return `${random.int(0, 300)}.${random.int(0, 300)}.${random.int(0, 300)}.${random.int(0, 300)}`;
    case 1:
      return `fe80::${random.int(0, 0xffff).toString(16)}%eth${random.int(0, 3)}`;
    case 2:
      return `::ffff:10.0.${random.int(0, 255)}.${random.int(0, 255)}`;
    case 3:
      return `${random.int(0, 0xffff).toString(16)}:${random.int(0, 0xffff).toString(16)}::${random.int(0, 0xffff).toString(16)}`;
    case 4:
      return random.pick(["localhost", "1.2.3", "1.2.3.4.5", "01.2.3.4", ":::", "1::2::3", "[::1]", "%", "::1%", "0x7f.1", "1.2.3.4/24"]);
    case 5:
      return String.fromCharCode(...Array.from({ length: random.int(1, 12) }, () => random.int(33, 126)));
    default:
      return `10.0.${random.int(0, 3)}.${random.int(0, 255)}`;
  }
}

function validControl(random: Prng, version: InterfaceVersion): string {
  const n = random.pick([0, 1, 1, 2, 3, 40, 200]);
  const addresses = Array.from({ length: n }, () => randomAddress(random)).join(random.pick([" ", "  ", "\t"]));
  const terminator = random.pick(["\0", "\n", "", "\r\n", "\0garbage after nul"]);
  const named = traitsOf(version).controlForm === "named";
  // Sometimes the other generation's form (the wrong --interface-version).
  const useNamed = random.int(0, 9) === 0 ? !named : named;
  // Client names: the usual ones, rooms of one host, and hostile ones that must create nothing.
  const name = random.pick([
    "/nqptp",
    "/nqptp",
    "/shairport-sync",
    "/x",
    `/nqptp-room${random.int(0, 20)}`,
    "/../x",
    "/a/b",
    "/",
    "nqptp",
    `/${"k".repeat(random.int(62, 70))}`,
    "/bad\u0007name",
    "/é".repeat(random.int(20, 40)),
  ]);
  const command = random.pick(["T", "T", "T", "B", "E", "P", "X", "t", ""]);
  const args = command === "T" ? addresses : random.int(0, 4) === 0 ? addresses : "";
  const body = useNamed ? `${name} ${command} ${args}` : `${command} ${args}`;
  return body + terminator;
}

function controlBytes(random: Prng, version: InterfaceVersion, big: Uint8Array): { bytes: Uint8Array; origin: string } {
  const kind = random.int(0, 19);
  if (kind < 9) return { bytes: encoder.encode(validControl(random, version)), origin: "valid" };
  if (kind < 12) {
    const bytes = encoder.encode(validControl(random, version));
    return {
      bytes: MUTATIONS[random.pick(["bit-flips", "interesting-byte", "truncate", "extend", "splice"])]!(random, bytes, bytes),
      origin: "mutated",
    };
  }
  if (kind === 12) return { bytes: random.bytes(random.int(0, 300)), origin: "random" };
  if (kind === 13) {
    // Over-long: up to the largest UDP payload; a view over a preallocated buffer.
    const length = random.pick([MAX_CONTROL_MESSAGE_BYTES, MAX_CONTROL_MESSAGE_BYTES + 1, 9000, 65_507, random.int(4097, 65_507)]);
    return { bytes: big.subarray(0, length), origin: "long" };
  }
  if (kind === 14) {
    // Not UTF-8: lone continuation bytes, overlongs, surrogates, truncated sequences.
    const bad = random.pick([[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff], [0xfe, 0xff]]);
    const text = encoder.encode(validControl(random, version));
    const at = random.int(0, text.byteLength);
    const out = new Uint8Array(text.byteLength + bad.length);
    out.set(text.subarray(0, at));
    out.set(bad, at);
    out.set(text.subarray(at), at + bad.length);
    return { bytes: out, origin: "not-utf8" };
  }
  if (kind === 15) return { bytes: encoder.encode(random.pick(["", "\0", "\n", " ", "\t\t", "\0\0\0", "\r\n", " \0"])), origin: "empty" };
  if (kind === 16) {
    // Control characters, Unicode whitespace and look-alikes.
    const odd = random.pick(["\u0001", "\u001b[2J", "\u007f", "\u00a0", "\u2028", "\ufeff", "Ｔ", "\u200b", "\r", "\v"]);
    return { bytes: encoder.encode(`${odd}${validControl(random, version)}`), origin: "control-chars" };
  }
  if (kind === 17) {
    // As many addresses as fit in 4096 bytes.
    const words: string[] = [];
    let length = 2;
    while (length < MAX_CONTROL_MESSAGE_BYTES - 50) {
      const w = randomAddress(random);
      words.push(w);
      length += w.length + 1;
    }
    const prefix = traitsOf(version).controlForm === "named" ? "/nqptp T " : "T ";
    return { bytes: encoder.encode(`${prefix}${words.join(" ")}\0`), origin: "many-addresses" };
  }
  return { bytes: random.bytes(random.int(1, 64)).map((b) => 32 + (b % 95)), origin: "printable" };
}

export function runControlFuzz(options: ControlFuzzOptions): ControlFuzzResult {
  const { seed, countPerVersion } = options;
  const maxFailures = options.maxFailures ?? 20;
  const random = createPrng(seed);
  const failures: FuzzFailure[] = [];
  const outcomes: Record<string, number> = {};
  const big = random.bytes(65_507).map((b) => 32 + (b % 95));
  let trackerSteps = 0;
  let maxRecords = 0;
  let maxClients = 0;
  const fail = (caseIndex: number, what: string, detail: string, bytes?: Uint8Array) => {
    if (failures.length < maxFailures) failures.push({ seed, caseIndex, what, detail, ...(bytes ? { hex: hex(bytes) } : {}) });
  };
  const started = performance.now();
  let caseIndex = 0;
  for (const version of options.versions) {
    // Accepted commands go on into a tracker, as the shell sends them.
    let state = createTracker(trackerOptions({ interfaceVersion: version, ourClockIdentity: OUR_CLOCK_ID }));
    let now = 1_700_000_000n * S;
    for (let i = 0; i < countPerVersion; i++, caseIndex++) {
      now += BigInt(random.int(0, 200)) * MS;
      const { bytes, origin } = controlBytes(random, version, big);
      let parsed: ReturnType<typeof parseControlMessage>;
      try {
        parsed = parseControlMessage(bytes, version);
      } catch (error) {
        fail(caseIndex, `parseControlMessage threw (interface ${version}, ${origin})`, String((error as Error)?.stack ?? error), bytes);
        continue;
      }
      if (!parsed.ok) {
        bump(outcomes, `v${version} error:${parsed.error.kind}`);
        if (!Object.hasOwn(CONTROL_ERROR_KINDS, parsed.error.kind)) fail(caseIndex, "unknown control error kind", parsed.error.kind, bytes);
        if (parsed.error.detail.length > 400)
          fail(caseIndex, "control error detail too long for a log line", String(parsed.error.detail.length), bytes);
        if (bytes.byteLength > MAX_CONTROL_MESSAGE_BYTES && parsed.error.kind !== "too-long")
          fail(caseIndex, "over-long message not refused as too-long", parsed.error.kind, bytes);
        continue;
      }
      const command = parsed.command;
      bump(outcomes, `v${version} ok:${command.kind}`);
      if (bytes.byteLength > MAX_CONTROL_MESSAGE_BYTES) fail(caseIndex, "over-long message accepted", String(bytes.byteLength), bytes);
      if (command.kind === "timing-peers") {
        for (const a of command.addresses) {
          if (parseAddress(a)?.text !== a) fail(caseIndex, "a peer address is not canonical", a, bytes);
        }
        if (new Set(command.addresses).size !== command.addresses.length)
          fail(caseIndex, "duplicate peer addresses", command.addresses.join(" "), bytes);
        for (const s of command.skipped) if (s.length > 80) fail(caseIndex, "a skipped excerpt is longer than 80", s, bytes);
      } else if (!traitsOf(version).hasPlayCommands) {
        fail(caseIndex, `play command accepted by interface ${version}`, command.kind, bytes);
      }
      // The daemon's dispatch (src/control/dispatch.ts), then the reducer.
      const decision = dispatchControl(command, parsed.shmName, traitsOf(version));
      bump(outcomes, `v${version} dispatch:${decision.kind}`);
      if (traitsOf(version).controlForm === "named") {
        // Both ways: no invalid name reaches the tracker, and a valid one is refused for nothing
        // but "T" with only malformed addresses (dispatch's rule: a mistake, not a stop).
        const name = parsed.shmName ?? "";
        const valid = isClientName(name);
        bump(outcomes, `v${version} client-name:${valid ? "valid" : "invalid"}`);
        if (decision.kind === "events" && (!valid || decision.client !== name))
          fail(caseIndex, "an invalid client name was dispatched", `${JSON.stringify(name)} as ${JSON.stringify(decision.client)}`, bytes);
        const onlyMalformed = command.kind === "timing-peers" && command.addresses.length === 0 && command.skipped.length > 0;
        if (decision.kind === "ignore" && valid && !onlyMalformed) fail(caseIndex, "a valid client name was refused", JSON.stringify(name), bytes);
      }
      if (decision.kind === "ignore") continue;
      for (const event of decision.events) {
        try {
          state = reduce(state, event, now).state;
          trackerSteps++;
        } catch (error) {
          fail(caseIndex, `reduce threw on a control event (interface ${version})`, String((error as Error)?.stack ?? error), bytes);
        }
      }
      if (state.records.size > MAX_RECORDS) fail(caseIndex, "records table exceeds 32 after a peer list", String(state.records.size), bytes);
      if (state.peers.length > MAX_RECORDS) fail(caseIndex, "more than 32 timing peers kept", String(state.peers.length), bytes);
      if (state.records.size > maxRecords) maxRecords = state.records.size;
      const clients = state.clients?.size ?? 0;
      if (clients > state.config.maxClients) fail(caseIndex, "more clients than maxClients", String(clients), bytes);
      if (clients > maxClients) maxClients = clients;
    }
  }
  return { seed, cases: caseIndex, outcomes, trackerSteps, maxRecords, maxClients, failures, elapsedMs: performance.now() - started };
}

export function formatFailures(failures: FuzzFailure[]): string {
  return failures
    .map((f) => `seed ${f.seed} case ${f.caseIndex}: ${f.what}${f.detail ? `: ${f.detail}` : ""}${f.hex ? `\n  bytes ${f.hex}` : ""}`)
    .join("\n");
}

/** Heap in use after a full collection, in bytes. */
export function settledHeap(): number {
  Bun.gc(true);
  Bun.gc(true);
  return process.memoryUsage().heapUsed;
}
