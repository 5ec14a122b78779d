// Offset smoothing of interface versions 8–10 (spec section 6): scripted sample sequences with
// exact expected outputs. Every number below is worked out by hand from the rules:
//   first period (age ≤ 1 s): rise → offset, fall → previous
//   after: rise → previous + jitter/16, fall → previous + max(jitter, −2.5 ms)/256
// with division truncating toward zero.

import { describe, expect, test } from "bun:test";
import {
  SMOOTHING_IDLE,
  classicSequenceFilter,
  smoothOffset,
  startsSequence,
  type SmoothingOutcome,
  type SmoothingState,
} from "../../../src/clock/offset/classic-sequence.ts";
import { idleTrack } from "../../../src/clock/offset/sequence-seam.ts";
import { MS, S } from "../helpers.ts";

/**
 * The state smoothOffset is given after a restart was asked for (the seam's `restarted()` makes
 * it: the filter's idle state with the restart phase "drop-next", whatever came before).
 */
const requestRestart = (_state: SmoothingState): SmoothingState => ({ ...SMOOTHING_IDLE, restart: "drop-next" });

const T0 = 5_000n * S;
const O = 7n * S; // a base offset
const GM_A = 0xaaaa_aaff_feaa_aaaan;
const GM_B = 0xbbbb_bbff_febb_bbbbn;
const U64 = 2n ** 64n;

interface Row {
  outcome: SmoothingOutcome;
  /** The smoothed offset as a signed number (the u64 is checked separately). */
  smoothed: bigint | null;
  start: bigint | null;
}

/**
 * Feeds [local time, signed offset, grandmaster] samples; returns one row per sample. `restartAt`
 * requests a restart before the sample with that index.
 */
function script(
  samples: readonly (readonly [bigint, bigint, bigint | null])[],
  from: SmoothingState = SMOOTHING_IDLE,
  restartAt: readonly number[] = [],
): { rows: Row[]; state: SmoothingState } {
  let state = from;
  const rows: Row[] = [];
  samples.forEach(([localTimeNs, offset, grandmasterIdentity], i) => {
    if (restartAt.includes(i)) state = requestRestart(state);
    const step = smoothOffset(state, { localTimeNs, offsetNs: BigInt.asUintN(64, offset), grandmasterIdentity });
    state = step.state;
    const s = state.sequence;
    if (s !== null) {
      expect(s.smoothedNs).toBeGreaterThanOrEqual(0n);
      expect(s.smoothedNs).toBeLessThan(U64);
      expect(s.localTimeNs).toBe(localTimeNs);
    }
    rows.push({ outcome: step.outcome, smoothed: s === null ? null : BigInt.asIntN(64, s.smoothedNs), start: s?.startNs ?? null });
  });
  return { rows, state };
}

const row = (outcome: SmoothingOutcome, smoothed: bigint | null, start: bigint | null): Row => ({ outcome, smoothed, start });

describe("the first second of a sequence", () => {
  test("rises are taken, falls ignored; exactly 1 s old is still the first second", () => {
    const { rows } = script([
      [T0, O, GM_A],
      [T0 + 125n * MS, O + 1_000n, GM_A],
      [T0 + 250n * MS, O + 500n, GM_A], // fall: ignored
      [T0 + 375n * MS, O - 40n * MS, GM_A], // a big fall: ignored too
      [T0 + S, O + 3_000n, GM_A], // age exactly 1 s: rise taken whole
      [T0 + S, O + 2_000n, GM_A], // age exactly 1 s: fall ignored
      [T0 + S + 1n, O + 3_016n, GM_A], // 1 ns later: 3000 + 16/16
    ]);
    expect(rows).toEqual([
      row("STARTED", O, T0),
      row("ROSE_TAKEN", O + 1_000n, T0),
      row("FALL_IGNORED", O + 1_000n, T0),
      row("FALL_IGNORED", O + 1_000n, T0),
      row("ROSE_TAKEN", O + 3_000n, T0),
      row("FALL_IGNORED", O + 3_000n, T0),
      row("ROSE_SMOOTHED", O + 3_001n, T0),
    ]);
  });
});

describe("after the first second", () => {
  const warm = script([
    [T0, O, GM_A],
    [T0 + 2n * S, O, GM_A],
  ]).state;

  test("a step up is followed by 1/16 of the jitter per sample (truncated)", () => {
    const { rows } = script(
      [
        [T0 + 2_125n * MS, O + 1_600n, GM_A], // +1600/16 = +100
        [T0 + 2_250n * MS, O + 115n, GM_A], // jitter 15: 15/16 = 0
        [T0 + 2_375n * MS, O + 1_000_100n, GM_A], // a 1 ms step: +1_000_000/16 = +62_500
        [T0 + 2_500n * MS, O + 1_000_100n, GM_A], // jitter 937_500: /16 = 58_593 (58_593.75)
        [T0 + 2_625n * MS, O + 1_000_100n, GM_A], // jitter 878_907: /16 = 54_931 (54_931.6875)
      ],
      warm,
    );
    expect(rows).toEqual([
      row("ROSE_SMOOTHED", O + 100n, T0),
      row("ROSE_SMOOTHED", O + 100n, T0),
      row("ROSE_SMOOTHED", O + 62_600n, T0),
      row("ROSE_SMOOTHED", O + 121_193n, T0),
      row("ROSE_SMOOTHED", O + 176_124n, T0),
    ]);
  });

  test("a step down beyond 2.5 ms moves 2.5 ms/256 per sample; at 2.5 ms exactly it is not clamped", () => {
    const { rows } = script(
      [
        [T0 + 2_125n * MS, O - 10n * MS, GM_A], // clamped: −2_500_000/256 = −9765 (−9765.625)
        [T0 + 2_250n * MS, O - 10n * MS, GM_A], // again
        [T0 + 2_375n * MS, O - 19_530n - 2_500_000n, GM_A], // jitter exactly −2.5 ms: −9765, not clamped
        [T0 + 2_500n * MS, O - 29_295n - 2_500_001n, GM_A], // 1 ns beyond: clamped, same step
      ],
      warm,
    );
    expect(rows).toEqual([
      row("FALL_CLAMPED", O - 9_765n, T0),
      row("FALL_CLAMPED", O - 19_530n, T0),
      row("FALL_SMOOTHED", O - 29_295n, T0),
      row("FALL_CLAMPED", O - 39_060n, T0),
    ]);
  });

  test("a small step down moves 1/256, truncated toward zero (not floored)", () => {
    const { rows } = script(
      [
        [T0 + 2_125n * MS, O - 1_000n, GM_A], // −1000/256 = −3 (floor would be −4)
        [T0 + 2_250n * MS, O - 258n, GM_A], // jitter −255: −255/256 = 0
        [T0 + 2_375n * MS, O - 259n, GM_A], // jitter −256: −1
        [T0 + 2_500n * MS, O - 4n, GM_A], // jitter +0: +0 (a rise of 0 is a rise)
      ],
      warm,
    );
    expect(rows).toEqual([
      row("FALL_SMOOTHED", O - 3n, T0),
      row("FALL_SMOOTHED", O - 3n, T0),
      row("FALL_SMOOTHED", O - 4n, T0),
      row("ROSE_SMOOTHED", O - 4n, T0),
    ]);
  });
});

describe("new sequences", () => {
  test("a change of grandmaster starts one: the offset as is (even a fall), start = that sample", () => {
    const { rows } = script([
      [T0, O, GM_A],
      [T0 + 3n * S, O + 16n, GM_A],
      [T0 + 3_125n * MS, O - 5n * MS, GM_B], // new grandmaster: −5 ms taken whole
      [T0 + 3_250n * MS, O - 6n * MS, GM_B], // its first second: fall ignored
      [T0 + 3_375n * MS, O - 4n * MS, GM_B], // rise taken
      [T0 + 3_500n * MS, O, GM_A], // and back
    ]);
    expect(rows).toEqual([
      row("STARTED", O, T0),
      row("ROSE_SMOOTHED", O + 1n, T0),
      row("GRANDMASTER_CHANGED", O - 5n * MS, T0 + 3_125n * MS),
      row("FALL_IGNORED", O - 5n * MS, T0 + 3_125n * MS),
      row("ROSE_TAKEN", O - 4n * MS, T0 + 3_125n * MS),
      row("GRANDMASTER_CHANGED", O, T0 + 3_500n * MS),
    ]);
  });

  test("an unknown grandmaster (no Announce yet) is never a change; the first known one is adopted", () => {
    const { rows, state } = script([
      [T0, O, null],
      [T0 + 125n * MS, O + 10n, null],
      [T0 + 250n * MS, O + 20n, GM_A], // adopted, not a change
      [T0 + 375n * MS, O + 30n, null], // unknown again (the record restarted): no change
      [T0 + 500n * MS, O + 40n, GM_B], // a real change
    ]);
    expect(rows.map((r) => r.outcome)).toEqual(["STARTED", "ROSE_TAKEN", "ROSE_TAKEN", "ROSE_TAKEN", "GRANDMASTER_CHANGED"]);
    expect(state.sequence?.grandmasterIdentity).toBe(GM_B);
    // adoptGrandmaster (the seam's): only a sequence without one adopts.
    const idle = idleTrack(classicSequenceFilter());
    const unknown = idle.sample({ localTimeNs: T0, offsetNs: O, grandmasterIdentity: null }).state;
    expect(unknown.adoptGrandmaster(GM_A).sequence?.grandmasterIdentity).toBe(GM_A);
    const known = unknown.adoptGrandmaster(GM_A);
    expect(known.adoptGrandmaster(GM_B)).toBe(known);
    expect(idle.adoptGrandmaster(GM_A)).toBe(idle);
  });

  test("the seam's restart: the next sample is dropped, the one after starts a sequence, whatever came before", () => {
    let track = idleTrack(classicSequenceFilter());
    track = track.sample({ localTimeNs: T0, offsetNs: O, grandmasterIdentity: GM_A }).state;
    track = track.restarted();
    expect(track.restart).toBe("drop-next");
    expect(track.sequence).toBeNull();
    const dropped = track.sample({ localTimeNs: T0 + S, offsetNs: O + 5n, grandmasterIdentity: GM_A });
    expect(dropped.startedSequence).toBe(false);
    expect(dropped.state.offsetNs).toBeNull();
    const started = dropped.state.sample({ localTimeNs: T0 + 2n * S, offsetNs: O + 7n, grandmasterIdentity: GM_A });
    expect(started.startedSequence).toBe(true);
    expect(started.state.offsetNs).toBe(O + 7n);
    expect(started.state.sequence?.startNs).toBe(T0 + 2n * S);
  });

  test("a requested restart drops one sample and starts a new sequence with the next", () => {
    const { rows } = script(
      [
        [T0, O, GM_A],
        [T0 + 5n * S, O + 32n, GM_A], // +2
        [T0 + 20n * S, O + 9n * MS, GM_A], // dropped (the restart was requested before it)
        [T0 + 20_125n * MS, O - 1n * MS, GM_A], // starts the new sequence, even lower
        [T0 + 20_250n * MS, O - 2n * MS, GM_A], // first second: fall ignored
        [T0 + 22n * S, O - 2n * MS + 2_560n, GM_A], // after: jitter −1 ms + 2560 → /256 = −3896 (−3896.25)
      ],
      SMOOTHING_IDLE,
      [2],
    );
    expect(rows).toEqual([
      row("STARTED", O, T0),
      row("ROSE_SMOOTHED", O + 2n, T0),
      row("DROPPED_FOR_RESTART", null, null),
      row("RESTARTED", O - 1n * MS, T0 + 20_125n * MS),
      row("FALL_IGNORED", O - 1n * MS, T0 + 20_125n * MS),
      row("FALL_SMOOTHED", O - 1n * MS - 3_896n, T0 + 20_125n * MS),
    ]);
  });

  test("a restart before the first sample drops it too; asking twice drops one sample only", () => {
    const twice = requestRestart(requestRestart(SMOOTHING_IDLE));
    const { rows } = script(
      [
        [T0, O, GM_A],
        [T0 + 125n * MS, O + 1n, GM_A],
        [T0 + 250n * MS, O + 2n, GM_A],
      ],
      twice,
    );
    expect(rows.map((r) => r.outcome)).toEqual(["DROPPED_FOR_RESTART", "RESTARTED", "ROSE_TAKEN"]);
    expect(rows[1]!.start).toBe(T0 + 125n * MS);
  });

  test("startsSequence names the outcomes that begin a mastership", () => {
    const all: SmoothingOutcome[] = [
      "STARTED",
      "GRANDMASTER_CHANGED",
      "DROPPED_FOR_RESTART",
      "RESTARTED",
      "ROSE_TAKEN",
      "ROSE_SMOOTHED",
      "FALL_IGNORED",
      "FALL_SMOOTHED",
      "FALL_CLAMPED",
    ];
    expect(all.filter(startsSequence)).toEqual(["STARTED", "GRANDMASTER_CHANGED", "RESTARTED"]);
  });
});

describe("u64 wrap-around", () => {
  test("a negative offset wraps; jitter is the signed difference; smoothing crosses zero both ways", () => {
    const { rows, state } = script([
      [T0, -3n * S, GM_A], // master behind the local clock by 3 s
      [T0 + 125n * MS, -3n * S + 50n, GM_A], // a rise of 50, not a fall of 2^64 − 50
      [T0 + 2n * S, -3n * S + 1_650n, GM_A], // +1600/16 = +100
    ]);
    expect(rows).toEqual([row("STARTED", -3n * S, T0), row("ROSE_TAKEN", -3n * S + 50n, T0), row("ROSE_SMOOTHED", -3n * S + 150n, T0)]);
    expect(state.sequence!.smoothedNs).toBe(U64 - 3n * S + 150n);

    // Around zero: smoothed +100; a sample at −1000 (u64 2^64 − 1000) is a fall of 1100.
    const near = script([
      [T0, 100n, GM_A],
      [T0 + 2n * S, 100n - 1_100n, GM_A], // −1100/256 = −4
      [T0 + 3n * S, -20n * MS, GM_A], // clamped: −9765 → 96 − 9765 = −9669
      [T0 + 4n * S, 20n * MS, GM_A], // rise of 20_009_669: /16 = 1_250_604 → 1_240_935
    ]);
    expect(near.rows.map((r) => [r.outcome, r.smoothed])).toEqual([
      ["STARTED", 100n],
      ["FALL_SMOOTHED", 96n],
      ["FALL_CLAMPED", -9_669n],
      ["ROSE_SMOOTHED", 1_240_935n],
    ]);
  });

  test("the smoothed value itself is stored as a u64", () => {
    const { state } = script([
      [T0, 1n, GM_A],
      [T0 + 2n * S, -20n * MS, GM_A],
    ]);
    expect(state.sequence!.smoothedNs).toBe(U64 + 1n - 9_765n);
  });
});
