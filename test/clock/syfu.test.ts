import { describe, expect, test } from "bun:test";
import { SYFU_IDLE, syfuOnFollowUp, syfuOnSync, type OffsetSample, type SyfuStep } from "../../src/clock/syfu.ts";
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

  test("no Sync ever seen: each Follow_Up waits; from the third in a row the one before is used alone (own time and correction)", () => {
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    expect(a.outcome).toBe("WAITING_FOR_SYNC");
    expect(a.samples).toEqual([]);
    // The first two whose Sync did not come are dropped.
    const b = syfuOnFollowUp(a.state, followUp(ID, 11, PRECISE + 125n * MS, { correctionField: FU_CORR }), FU_RX + 125n * MS);
    expect(b.outcome).toBe("WAITING_FOR_SYNC");
    expect(b.samples).toEqual([]);
    expect(b.state.aloneRun).toBe(1);
    const c = syfuOnFollowUp(b.state, followUp(ID, 12, PRECISE + 250n * MS, { correctionField: FU_CORR }), FU_RX + 250n * MS);
    expect(c.samples).toEqual([]);
    const d = syfuOnFollowUp(c.state, followUp(ID, 13, PRECISE + 375n * MS), FU_RX + 375n * MS);
    expect(d.samples).toEqual([{ localTimeNs: FU_RX + 250n * MS, offsetNs: ALONE_OFFSET, preciseOriginNs: PRECISE + 250n * MS, paired: false }]);
    const e = syfuOnFollowUp(d.state, followUp(ID, 14, PRECISE + 500n * MS), FU_RX + 500n * MS);
    expect(e.samples).toEqual([
      { localTimeNs: FU_RX + 375n * MS, offsetNs: PRECISE - SYNC_RX - 2n * MS, preciseOriginNs: PRECISE + 375n * MS, paired: false },
    ]);
    expect(e.state.aloneRun).toBe(4);
  });

  test("Sync lost: the waiting Follow_Up is dropped when the next Sync comes, which pairs and ends the run", () => {
    const a = syfuOnFollowUp(SYFU_IDLE, followUp(ID, 10, PRECISE, { correctionField: FU_CORR }), FU_RX);
    expect(a.samples).toEqual([]);
    const nextSyncRx = SYNC_RX + 125n * MS;
    const b = syfuOnSync(a.state, sync(ID, 11), nextSyncRx);
    expect(b.samples).toEqual([]);
    expect(b.state.aloneRun).toBe(1);
    const c = syfuOnFollowUp(b.state, followUp(ID, 11, PRECISE + 125n * MS), nextSyncRx + MS);
    expect(c.outcome).toBe("PAIRED");
    expect(c.samples).toEqual([
      { localTimeNs: nextSyncRx, offsetNs: PRECISE + 125n * MS - nextSyncRx, preciseOriginNs: PRECISE + 125n * MS, paired: true },
    ]);
    expect(c.state).toEqual(SYFU_IDLE);
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

  test("a longer hold-up: four Follow_Ups in one batch (one stamp), then their late Syncs: none is used alone, the next round pairs", () => {
    const batchStamp = FU_RX + 375n * MS;
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    const take = (step: SyfuStep) => {
      state = step.state;
      samples.push(...step.samples);
    };
    // 0, 1 and 2 carry 3's stamp: each is shown lost by the next, stamped the same.
    for (const k of [0, 1, 2, 3]) take(syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * 125n * MS), batchStamp));
    // Sync 0 (from the reader thread, its own stamp) shows 3's Sync lost; 3 is stamped after it.
    for (const k of [0, 1, 2, 3]) take(syfuOnSync(state, sync(ID, k), SYNC_RX + BigInt(k) * 125n * MS));
    expect(samples).toEqual([]);
    take(syfuOnSync(state, sync(ID, 4), SYNC_RX + 500n * MS));
    take(syfuOnFollowUp(state, followUp(ID, 4, PRECISE + 500n * MS), FU_RX + 500n * MS));
    expect(samples).toEqual([{ localTimeNs: SYNC_RX + 500n * MS, offsetNs: PRECISE - SYNC_RX, preciseOriginNs: PRECISE + 500n * MS, paired: true }]);
  });

  test("however long the run, a Follow_Up is not used alone when stamped no earlier than the half that shows its Sync lost", () => {
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    for (const k of [0, 1, 2, 3]) {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * 125n * MS), FU_RX + BigInt(k) * 125n * MS);
      state = step.state;
      samples.push(...step.samples);
    }
    expect(samples.map((x) => x.preciseOriginNs)).toEqual([PRECISE + 250n * MS]); // 0 and 1 dropped, 2 used when 3 came
    const stamp3 = FU_RX + 375n * MS;
    // A Follow_Up of the same stamp (a batch), or a Sync received before 3's stamp: 3 is not used.
    expect(syfuOnFollowUp(state, followUp(ID, 4, PRECISE + 500n * MS), stamp3).samples).toEqual([]);
    expect(syfuOnSync(state, sync(ID, 9), stamp3 - 1n).samples).toEqual([]);
    // Received after it, 3 is used.
    expect(syfuOnSync(state, sync(ID, 9), stamp3 + 1n).samples.map((x) => x.localTimeNs)).toEqual([stamp3]);
    expect(syfuOnSync(state, sync(ID, 9), stamp3 + 1n).state.aloneRun).toBe(4);
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

  test("a run of lost Syncs that pairs again starts counting afresh: two more lost are dropped again", () => {
    let state = SYFU_IDLE;
    const samples: OffsetSample[] = [];
    const f = (k: number) => {
      const step = syfuOnFollowUp(state, followUp(ID, k, PRECISE + BigInt(k) * 125n * MS), FU_RX + BigInt(k) * 125n * MS);
      state = step.state;
      samples.push(...step.samples);
    };
    const s = (k: number) => {
      const step = syfuOnSync(state, sync(ID, k), SYNC_RX + BigInt(k) * 125n * MS);
      state = step.state;
      samples.push(...step.samples);
    };
    for (const k of [0, 1, 2, 3]) f(k); // no Syncs: 0 and 1 dropped, 2 used when 3 comes
    s(4);
    f(4); // pairs; 3 (lost) used alone first, as the run was long
    f(5);
    f(6); // 5 lost: dropped (a new run)
    s(7);
    f(7);
    expect(samples.map((x) => [Number((x.preciseOriginNs - PRECISE) / (125n * MS)), x.paired])).toEqual([
      [2, false],
      [3, false],
      [4, true],
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
    expect(b.state).toEqual(SYFU_IDLE);
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
