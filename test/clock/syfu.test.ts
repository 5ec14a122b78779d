import { describe, expect, test } from "bun:test";
import { SYFU_IDLE, syfuOnFollowUp, syfuOnSync, type OffsetSample, type SyfuState, type SyfuStep } from "../../src/clock/syfu.ts";
import { createPrng } from "../support/prng.ts";
import { MS, S, followUp, sync } from "./helpers.ts";

const ID = 0xa1b2_c3ff_fed4_e5f6n;

// Master: preciseOriginTimestamp = 1000.5 s. Local receipt of the Sync: 200.25 s.
// Corrections: Sync 3 ns + 100/65536 ns (truncates to 3), Follow_Up exactly 2 ns.
const PRECISE = 1_000_500_000_000n;
const SYNC_RX = 200_250_000_000n;
const FU_RX = SYNC_RX + 2n * MS;
const SYNC_CORR = 3n * 65536n + 100n;
const FU_CORR = 2n * 65536n;
// 1_000_500_000_000 + 3 + 2 − 200_250_000_000
const PAIRED_OFFSET = 800_250_000_005n;
// Follow_Up alone: 1_000_500_000_000 + 2 − 200_252_000_000
const ALONE_OFFSET = 800_248_000_002n;

describe("Sync/Follow_Up pairing", () => {
  test("Sync then Follow_Up: exact offset with both corrections", () => {
    const a = syfuOnSync(SYFU_IDLE, sync(ID, 10, { correctionField: SYNC_CORR }), SYNC_RX);
    expect(a.outcome).toBe("WAITING_FOR_FOLLOW_UP");
    expect(a.samples).toEqual([]);
    const b = syfuOnFollowUp(a.state, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    expect(b.outcome).toBe("PAIRED");
    expect(b.samples).toEqual([{ localTimeNs: SYNC_RX, offsetNs: PAIRED_OFFSET, preciseOriginNs: PRECISE, paired: true }]);
    expect(b.state.sync).toBeNull();
    expect(b.state.followUp).toBeNull();
  });

  test("Follow_Up then Sync (two ports): the same sample", () => {
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    expect(a.outcome).toBe("WAITING_FOR_SYNC");
    expect(a.samples).toEqual([]);
    const b = syfuOnSync(a.state, sync(ID, 10, { correctionField: SYNC_CORR }), SYNC_RX);
    expect(b.outcome).toBe("PAIRED");
    expect(b.samples).toEqual([{ localTimeNs: SYNC_RX, offsetNs: PAIRED_OFFSET, preciseOriginNs: PRECISE, paired: true }]);
  });

  test("no Sync ever seen: each Follow_Up waits; used alone (own time and correction) 2 s into the run: the third, at 1 Hz", () => {
    // A sender at 1 Hz whose Syncs never reach us.
    const f = (state: SyfuState, k: number, corr = FU_CORR) =>
      syfuOnFollowUp(state, followUp(ID, 10 + k, PRECISE + BigInt(k) * S, { correctionField: corr }), FU_RX + BigInt(k) * S);
    const a = f(SYFU_IDLE, 0);
    expect(a.outcome).toBe("WAITING_FOR_SYNC");
    expect(a.samples).toEqual([]);
    const b = f(a.state, 1);
    expect(b.outcome).toBe("WAITING_FOR_SYNC");
    expect(b.samples).toEqual([]); // the first of the run
    expect(b.state.aloneSinceNs).toBe(FU_RX);
    const c = f(b.state, 2);
    expect(c.samples).toEqual([]); // the second, 1 s into the run
    const d = f(c.state, 3, 0n);
    expect(d.samples).toEqual([{ localTimeNs: FU_RX + 2n * S, offsetNs: ALONE_OFFSET, preciseOriginNs: PRECISE + 2n * S, paired: false }]);
    const e = f(d.state, 4);
    expect(e.samples).toEqual([
      { localTimeNs: FU_RX + 3n * S, offsetNs: PRECISE - SYNC_RX - 2n * MS, preciseOriginNs: PRECISE + 3n * S, paired: false },
    ]);
    expect(e.state.aloneSinceNs).toBe(FU_RX);
  });

  test("at 8 Hz with no Sync ever seen: the first sample alone is the first Follow_Up received 2 s after the run began", () => {
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    for (let k = 0; k <= 20; k++) {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * 125n * MS), FU_RX + BigInt(k) * 125n * MS);
      state = step.state;
      samples.push(...step.samples);
    }
    expect(samples[0]!.localTimeNs).toBe(FU_RX + 2n * S); // Follow_Up 16
    expect(samples.length).toBe(4); // 16, 17, 18, 19 (20 still waits)
  });

  test("Sync lost: the waiting Follow_Up is dropped when the next Sync comes, which pairs and ends the run", () => {
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    expect(a.samples).toEqual([]);
    const nextSyncRx = SYNC_RX + 125n * MS;
    const b = syfuOnSync(a.state, sync(ID, 11), nextSyncRx);
    expect(b.samples).toEqual([]);
    expect(b.state.aloneSinceNs).toBe(FU_RX);
    const c = syfuOnFollowUp(b.state, followUp(ID, 11, PRECISE + 125n * MS), nextSyncRx + MS);
    expect(c.outcome).toBe("PAIRED");
    expect(c.samples).toEqual([
      { localTimeNs: nextSyncRx, offsetNs: PRECISE + 125n * MS - nextSyncRx, preciseOriginNs: PRECISE + 125n * MS, paired: true },
    ]);
    expect(c.state).toEqual({ ...SYFU_IDLE, lastSyncAtNs: nextSyncRx });
  });

  test("a held-up event loop: Follow_Ups n and n+1 in one batch (both stamped at n+1's arrival), then their Syncs: no sample a sync interval late", () => {
    // What an emulated arm64 did once at the start of following: Follow_Up 10 was then used alone
    // with Follow_Up 11's stamp, 125 ms after its Sync, and published as the first sample.
    const batchStamp = FU_RX + 125n * MS;
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), batchStamp);
    const b = syfuOnFollowUp(a.state, followUp(ID, 11, PRECISE + 125n * MS, { correctionField: FU_CORR }), batchStamp);
    expect(b.samples).toEqual([]);
    const c = syfuOnSync(b.state, sync(ID, 10, { correctionField: SYNC_CORR }), SYNC_RX);
    expect(c.samples).toEqual([]);
    const d = syfuOnSync(c.state, sync(ID, 11, { correctionField: SYNC_CORR }), SYNC_RX + 125n * MS);
    const e = syfuOnFollowUp(d.state, followUp(ID, 11, PRECISE + 125n * MS, { correctionField: FU_CORR }), FU_RX + 125n * MS);
    // (Follow_Up 11 came once only; here it is the next round's, to show pairing goes on.)
    expect([...c.samples, ...d.samples, ...e.samples]).toEqual([
      { localTimeNs: SYNC_RX + 125n * MS, offsetNs: PAIRED_OFFSET, preciseOriginNs: PRECISE + 125n * MS, paired: true },
    ]);
  });

  test("a longer hold-up, in batches that each end with an Announce: no Follow_Up is used alone while the Syncs come, in either order", () => {
    // Four rounds held up 500 ms. The general port was read in two batches, each stamped at its
    // last datagram (an Announce): Follow_Ups 0 and 1 at 200 ms, 2 and 3 at 450 ms. The Syncs,
    // each with its own stamp, reach the core before all of them, between the batches, or after.
    const fu = (k: number) => ({ kind: "fu" as const, k, at: FU_RX + (k < 2 ? 200n : 450n) * MS });
    const sy = (k: number) => ({ kind: "sync" as const, k, at: SYNC_RX + BigInt(k) * 125n * MS });
    const orders = [
      [sy(0), sy(1), sy(2), sy(3), fu(0), fu(1), fu(2), fu(3)],
      [fu(0), fu(1), sy(0), sy(1), sy(2), sy(3), fu(2), fu(3)],
      [fu(0), fu(1), fu(2), fu(3), sy(0), sy(1), sy(2), sy(3)],
      [fu(0), sy(0), fu(1), sy(1), fu(2), sy(2), fu(3), sy(3)],
    ];
    for (const order of orders) {
      let state = SYFU_IDLE;
      const samples: OffsetSample[] = [];
      const live = [
        ...order,
        sy(4),
        { kind: "fu" as const, k: 4, at: FU_RX + 500n * MS },
        sy(5),
        { kind: "fu" as const, k: 5, at: FU_RX + 625n * MS },
      ];
      for (const half of live) {
        const step =
          half.kind === "sync"
            ? syfuOnSync(state, sync(ID, half.k), half.at)
            : syfuOnFollowUp(state, followUp(ID, half.k, PRECISE + BigInt(half.k) * 125n * MS), half.at);
        state = step.state;
        samples.push(...step.samples);
      }
      // Only pairs: a paired sample's time is its Sync's own, so exact; nothing alone.
      expect(samples.every((x) => x.paired)).toBe(true);
      expect(samples.every((x) => x.offsetNs === PRECISE - SYNC_RX)).toBe(true);
      expect(samples.length).toBeGreaterThanOrEqual(2);
    }
  });

  test("a Follow_Up alone is not used when stamped no earlier than the half that shows its Sync lost", () => {
    // 1 Hz, no Syncs: 0 and 1 dropped, 2 used when 3 came.
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    for (const k of [0, 1, 2, 3]) {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * S), FU_RX + BigInt(k) * S);
      state = step.state;
      samples.push(...step.samples);
    }
    expect(samples.map((x) => x.preciseOriginNs)).toEqual([PRECISE + 2n * S]);
    const stamp3 = FU_RX + 3n * S;
    // A Follow_Up of the same stamp (a batch), or a Sync received before 3's stamp: 3 is not used.
    expect(syfuOnFollowUp(state, followUp(ID, 4, PRECISE + 4n * S), stamp3).samples).toEqual([]);
    expect(syfuOnSync(state, sync(ID, 9), stamp3 - 1n).samples).toEqual([]);
    // Received after it, 3 is used.
    expect(syfuOnSync(state, sync(ID, 9), stamp3 + 1n).samples.map((x) => x.localTimeNs)).toEqual([stamp3]);
  });

  test("Syncs that stop: Follow_Ups are used alone again once no Sync came for 2 s", () => {
    let state = syfuOnSync(SYFU_IDLE, sync(ID, 0), SYNC_RX).state;
    state = syfuOnFollowUp(state, followUp(ID, 0, PRECISE), FU_RX).state; // paired
    const samples: OffsetSample[] = [];
    for (let k = 1; k <= 4; k++) {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * S), FU_RX + BigInt(k) * S);
      state = step.state;
      samples.push(...step.samples);
    }
    // 1 (1 s after the Sync) dropped; 2, received 2 s after it, and 3 are used when the next comes.
    expect(samples.map((x) => x.localTimeNs)).toEqual([FU_RX + 2n * S, FU_RX + 3n * S]);
    // 2 s to the ns counts; 1 ns less does not.
    const justLate = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 0, PRECISE), FU_RX);
    const quiet = { ...justLate.state, lastSyncAtNs: FU_RX - 2n * S };
    expect(syfuOnFollowUp(quiet, followUp(ID, 1, PRECISE + S), FU_RX + S).samples.length).toBe(1);
    expect(syfuOnFollowUp({ ...quiet, lastSyncAtNs: FU_RX - 2n * S + 1n }, followUp(ID, 1, PRECISE + S), FU_RX + S).samples).toEqual([]);
  });

  test("Sync lost and the next Follow_Up also first: old one dropped, new one waits for its Sync and pairs", () => {
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    const b = syfuOnFollowUp(a.state, followUp(ID, 11, PRECISE + 125n * MS), FU_RX + 125n * MS);
    expect(b.outcome).toBe("WAITING_FOR_SYNC");
    expect(b.samples).toEqual([]);
    const c = syfuOnSync(b.state, sync(ID, 11), SYNC_RX + 125n * MS);
    expect(c.outcome).toBe("PAIRED");
    expect(c.samples.map((x) => x.offsetNs)).toEqual([PRECISE - SYNC_RX]);
  });

  test("a run that pairs again starts afresh; what counts then is the time since the last Sync", () => {
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    const f = (k: number) => {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * S), FU_RX + BigInt(k) * S);
      state = step.state;
      samples.push(...step.samples);
    };
    const s = (k: number) => {
      const step = syfuOnSync(state, sync(ID, k), SYNC_RX + BigInt(k) * S);
      state = step.state;
      samples.push(...step.samples);
    };
    for (const k of [0, 1, 2, 3]) f(k); // 1 Hz, no Syncs: 0 and 1 dropped, 2 used when 3 comes
    s(4); // 3 used alone (3 s into the run, no Sync before it), then 4 waits
    f(4); // pairs
    expect(state.aloneSinceNs).toBeNull();
    f(5);
    f(6); // 5 lost: dropped (1 s after Sync 4)
    expect(state.aloneSinceNs).toBe(FU_RX + 5n * S);
    s(7); // 6 lost: used (2 s after Sync 4)
    f(7);
    expect(samples.map((x) => [Number((x.preciseOriginNs - PRECISE) / S), x.paired])).toEqual([
      [2, false],
      [3, false],
      [4, true],
      [6, false],
      [7, true],
    ]);
  });

  test("first Follow_Up before the very first Sync: it waits and pairs, with both corrections", () => {
    // Apple-like: 3 ms of correction in all, split between Sync and Follow_Up. The Sync is read
    // by a worker thread and reaches the core 2 ms after its Follow_Up. Before the fix, this
    // Follow_Up was used alone at once: offset 1.5 ms low (no Sync correction) and 2 ms late.
    const syncCorr = 1_500_000n * 65536n;
    const fuCorr = 1_500_000n * 65536n;
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: fuCorr }), FU_RX);
    expect(a.outcome).toBe("WAITING_FOR_SYNC");
    expect(a.samples).toEqual([]);
    const b = syfuOnSync(a.state, sync(ID, 10, { correctionField: syncCorr }), SYNC_RX);
    expect(b.outcome).toBe("PAIRED");
    expect(b.samples).toEqual([{ localTimeNs: SYNC_RX, offsetNs: PRECISE + 3n * MS - SYNC_RX, preciseOriginNs: PRECISE, paired: true }]);
    expect(b.state).toEqual({ ...SYFU_IDLE, lastSyncAtNs: SYNC_RX });
    // The next round pairs normally.
    const c = syfuOnSync(b.state, sync(ID, 11, { correctionField: syncCorr }), SYNC_RX + 125n * MS);
    const d = syfuOnFollowUp(c.state, followUp(ID, 11, PRECISE + 125n * MS, { correctionField: fuCorr }), FU_RX + 125n * MS);
    expect(d.samples).toEqual([
      { localTimeNs: SYNC_RX + 125n * MS, offsetNs: PRECISE + 3n * MS - SYNC_RX, preciseOriginNs: PRECISE + 125n * MS, paired: true },
    ]);
  });

  test("whatever the order of the halves, no sample is ever completed by a Follow_Up whose Sync is still to come", () => {
    // Rounds of Sync k / Follow_Up k in random order (either first), some halves lost. A sample
    // that is not paired must be of a round whose Sync never arrived.
    const next = createPrng(12345).float;
    const out: OffsetSample[] = [];
    const syncArrives = new Set<number>();
    // 100 records, each from its first message on (the first pair is where it went wrong).
    for (let record = 0; record < 100; record++) {
      let state = SYFU_IDLE;
      const take = (step: SyfuStep) => {
        state = step.state;
        out.push(...step.samples);
      };
      for (let k = record * 8; k < record * 8 + 8; k++) {
        const rx = SYNC_RX + BigInt(k) * 125n * MS;
        const precise = PRECISE + BigInt(k) * 125n * MS;
        const loseSync = next() < 0.1;
        const loseFollowUp = next() < 0.05;
        if (!loseSync) syncArrives.add(k);
        const s = () => take(syfuOnSync(state, sync(ID, k, { correctionField: SYNC_CORR }), rx));
        const f = () => take(syfuOnFollowUp(state, followUp(ID, k, precise, { correctionField: FU_CORR }), rx + MS));
        if (next() < 0.5) {
          if (!loseFollowUp) f();
          if (!loseSync) s();
        } else {
          if (!loseSync) s();
          if (!loseFollowUp) f();
        }
      }
    }
    expect(out.length).toBeGreaterThan(600);
    for (const sample of out) {
      const k = Number((sample.preciseOriginNs - PRECISE) / (125n * MS));
      if (sample.paired) {
        expect(sample).toEqual({
          localTimeNs: SYNC_RX + BigInt(k) * 125n * MS,
          offsetNs: PAIRED_OFFSET,
          preciseOriginNs: sample.preciseOriginNs,
          paired: true,
        });
      } else {
        expect(syncArrives.has(k)).toBe(false);
      }
    }
  });

  test("Follow_Up lost: the waiting Sync is replaced by the next", () => {
    const a = syfuOnSync(SYFU_IDLE, sync(ID, 10), SYNC_RX);
    const b = syfuOnSync(a.state, sync(ID, 11), SYNC_RX + 125n * MS);
    expect(b.samples).toEqual([]);
    expect(b.state.sync?.sequenceId).toBe(11);
    const stale = syfuOnFollowUp(b.state, followUp(ID, 10, PRECISE), FU_RX);
    // Follow_Up 10 does not match Sync 11: it waits (Syncs are seen), Sync 11 is dropped.
    expect(stale.outcome).toBe("WAITING_FOR_SYNC");
    expect(stale.state.sync).toBeNull();
  });

  test("halves of different clocks or ports, or more than 1 s apart, do not pair", () => {
    const base = syfuOnSync(SYFU_IDLE, sync(ID, 10), SYNC_RX).state;
    expect(syfuOnFollowUp(base, followUp(ID + 1n, 10, PRECISE), FU_RX).outcome).toBe("WAITING_FOR_SYNC");
    expect(syfuOnFollowUp(base, followUp(ID, 10, PRECISE, { header: { sourcePortNumber: 2 } }), FU_RX).outcome).toBe("WAITING_FOR_SYNC");
    expect(syfuOnFollowUp(base, followUp(ID, 10, PRECISE), SYNC_RX + S + 1n).outcome).toBe("WAITING_FOR_SYNC");
    expect(syfuOnFollowUp(base, followUp(ID, 10, PRECISE), SYNC_RX + S).outcome).toBe("PAIRED");
  });

  test("one-step Syncs are ignored", () => {
    const a = syfuOnSync(SYFU_IDLE, sync(ID, 10, { twoStep: false }), SYNC_RX);
    expect(a.outcome).toBe("IGNORED_ONE_STEP_SYNC");
    expect(a.state).toBe(SYFU_IDLE);
  });

  test("corrections truncate toward zero, each on its own", () => {
    // −1.5 ns and −0.5 ns: −1 + 0 = −1 (flooring would give −3).
    const a = syfuOnSync(SYFU_IDLE, sync(ID, 1, { correctionField: -98304n }), SYNC_RX);
    const b = syfuOnFollowUp(a.state, followUp(ID, 1, PRECISE, { correctionField: -32768n }), FU_RX);
    expect(b.samples[0]!.offsetNs).toBe(PRECISE - 1n - SYNC_RX);
  });

  test("a master behind the local clock gives a wrapped (u64) offset", () => {
    const a = syfuOnSync(SYFU_IDLE, sync(ID, 1), 200n * S);
    const b = syfuOnFollowUp(a.state, followUp(ID, 1, 100n * S), 200n * S + MS);
    expect(b.samples[0]!.offsetNs).toBe(2n ** 64n - 100n * S);
  });
});
