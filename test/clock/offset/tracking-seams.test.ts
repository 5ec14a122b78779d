// The tracking filter behind the tracker's two seams (clock/offset/tracking-seams.ts): a drifting
// master through the whole reducer, for interfaces 10 (one client following it) and 5 (the BMC's
// master), with the sequence rules every filter keeps.

import { describe, expect, test } from "bun:test";
import type { PublishedMaster } from "../../../src/clock/effects.ts";
import { FollowScenario, MS, S, Scenario, SimMaster, type PublishEffect } from "../helpers.ts";
import { createPrng } from "../../support/prng.ts";

const T0 = 1_000n * S;
const IP = "10.0.0.5";
const GM = 0x6666_66ff_fe66_6666n;
const GM2 = 0x7777_77ff_fe77_7777n;
const BASE = 500n * S;

/** The master's true offset at local time t: BASE + ppm·(t − T0). */
const truth = (t: bigint, ppm: number) => BASE + BigInt(Math.round(ppm * Number(t - T0) * 1e-6));

function published(effects: { kind: string }[]): PublishedMaster[] {
  return effects.filter((e): e is PublishEffect => e.kind === "publish").flatMap((e) => (e.master === null ? [] : [e.master]));
}

/** 8 Hz Sync/Follow_Up for `seconds`, each Sync late by 100 µs plus exponential jitter (mean `jitterUs`). */
function run(sc: Scenario, m: SimMaster, seconds: number, ppm: number, jitterUs: number, seed = 1) {
  const random = createPrng(seed).float;
  const out: PublishedMaster[] = [];
  for (let i = 0; i < seconds * 8; i++) {
    sc.advance(125n * MS);
    m.offsetNs = truth(sc.now, ppm);
    const delay = 100_000n + BigInt(Math.round(-Math.log(1 - random()) * jitterUs * 1000));
    out.push(...published(m.round(sc, delay)));
  }
  return out;
}

/** Error of a published record against the truth at its local time, in µs. */
const errorUs = (p: PublishedMaster, ppm: number) => Number(BigInt.asIntN(64, p.offsetNs - truth(p.localTimeNs, ppm))) / 1000;

describe("interface 10, tracking", () => {
  test("a −50 ppm master with jitter: the published offset stays at the path minimum; mastership starts once", () => {
    const sc = new FollowScenario({ interfaceVersion: 10, offsetFilter: "tracking" }, T0);
    const m = new SimMaster(IP, 0xaaaa_aaff_feaa_aaaan, BASE, { grandmasterIdentity: GM });
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    const all = run(sc, m, 40, -50, 500);
    expect(all.length).toBeGreaterThan(300);
    const steady = all.slice(-160); // the last 20 s
    const errors = steady.map((p) => errorUs(p, -50)).sort((a, b) => a - b);
    // The path minimum is 100 µs (every sample is late by at least that): the estimate rests there.
    expect(errors[Math.floor(errors.length / 2)]!).toBeGreaterThan(-130);
    expect(errors[Math.floor(errors.length / 2)]!).toBeLessThan(-80);
    expect(errors[0]!).toBeGreaterThan(-200);
    expect(errors.at(-1)!).toBeLessThan(-50);
    expect(new Set(all.map((p) => p.masterStartTimeNs)).size).toBe(1);
    expect(new Set(all.map((p) => p.clockId))).toEqual(new Set([GM]));
  });

  test("classic, on the same input, lags the drift by far more (the reason for tracking)", () => {
    const sc = new FollowScenario({ interfaceVersion: 10, offsetFilter: "classic" }, T0);
    const m = new SimMaster(IP, 0xaaaa_aaff_feaa_aaaan, BASE, { grandmasterIdentity: GM });
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    const steady = run(sc, m, 40, -50, 500).slice(-160);
    const worst = Math.max(...steady.map((p) => errorUs(p, -50)));
    expect(worst).toBeGreaterThan(300);
  });

  test("B after a lapse drops one sample and starts a new sequence; a new grandmaster starts one too", () => {
    const sc = new FollowScenario({ interfaceVersion: 10, offsetFilter: "tracking" }, T0);
    const m = new SimMaster(IP, 0xaaaa_aaff_feaa_aaaan, BASE, { grandmasterIdentity: GM });
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    const first = run(sc, m, 3, 20, 50);
    const start = first[0]!.masterStartTimeNs;
    sc.playEnd();
    sc.advance(6n * S);
    sc.tick();
    expect(sc.published).toBeNull();
    sc.playBegin();
    expect(sc.followState!.filter.restart).toBe("drop-next");
    sc.advance(125n * MS);
    m.offsetNs = truth(sc.now, 20);
    expect(published(m.round(sc))).toEqual([]); // dropped
    expect(sc.logs("debug")).toContain(`filter restart: dropped a sample of ${IP}`);
    const again = run(sc, m, 2, 20, 50);
    expect(again[0]!.masterStartTimeNs).toBeGreaterThan(start);
    expect(Math.abs(errorUs(again.at(-1)!, 20))).toBeLessThan(200);

    m.announceOptions = { grandmasterIdentity: GM2 };
    m.announce(sc);
    const changed = run(sc, m, 1, 20, 50);
    expect(changed[0]!.clockId).toBe(GM2);
    expect(changed[0]!.masterStartTimeNs).toBeGreaterThan(again[0]!.masterStartTimeNs);
    expect(sc.logs("info").some((l) => l.includes("changed to 0x777777fffe777777: new sequence"))).toBe(true);
  });
});

describe("interface 5, tracking", () => {
  test("the BMC's master: begun from its ring (mastership from the oldest sample), then tracked through drift", () => {
    const sc = new Scenario({ interfaceVersion: 5, offsetFilter: "tracking" }, T0);
    const m = new SimMaster(IP, 0xaaaa_aaff_feaa_aaaan, BASE);
    m.announce(sc);
    const before = run(sc, m, 2, 30, 200); // not a peer yet: samples go to its ring only
    expect(before).toEqual([]);
    const oldest = sc.state.records.get(IP)!.samples[0]!.localTimeNs;
    sc.advance(100n * MS);
    m.announce(sc);
    sc.peers(IP);
    expect(sc.master?.ip).toBe(IP);
    expect(sc.published!.masterStartTimeNs).toBe(oldest);
    const steady = run(sc, m, 30, 30, 200).slice(-80);
    for (const p of steady) {
      expect(p.masterStartTimeNs).toBe(oldest);
      expect(Math.abs(errorUs(p, 30) + 100)).toBeLessThan(60); // within 60 µs of the path minimum
    }
  });
});

describe("timeline evidence reaches the filter through the record", () => {
  /** A followed master on a quiet path whose time steps down by 20 ms after 200 s; `announceChange` changes its Announce then. */
  function stepDown(announceChange: boolean, interfaceVersion: 5 | 10) {
    const sc =
      interfaceVersion === 10
        ? new FollowScenario({ interfaceVersion: 10, offsetFilter: "tracking" }, T0)
        : new Scenario({ interfaceVersion: 5, offsetFilter: "tracking" }, T0);
    const m = new SimMaster(IP, 0xaaaa_aaff_feaa_aaaan, BASE, { grandmasterIdentity: GM });
    if (sc instanceof FollowScenario) {
      sc.follow(IP);
      sc.playBegin();
    } else sc.peers(IP);
    m.announce(sc);
    m.announce(sc);
    const out: PublishedMaster[] = [];
    for (let i = 0; i < 240 * 8; i++) {
      sc.advance(125n * MS);
      const stepped = i >= 200 * 8;
      m.offsetNs = BASE - (stepped ? 20n * MS : 0n);
      if (i % 4 === 0) {
        if (stepped && announceChange) m.announceOptions = { grandmasterIdentity: GM, stepsRemoved: 1 };
        m.announce(sc);
      }
      out.push(...published(m.round(sc, 100_000n)));
    }
    const at = (s: number) => out.findLast((p) => p.localTimeNs <= T0 + BigInt(s * 1e9))!;
    return { sc, at };
  }

  for (const version of [10, 5] as const) {
    test(`interface ${version}: with an Announce that changed (stepsRemoved), a step down is followed within a second`, () => {
      const { at, sc } = stepDown(true, version);
      const err = (s: number) => Number(BigInt.asIntN(64, at(s).offsetNs - (BASE - 20n * MS)));
      expect(Math.abs(err(202))).toBeLessThan(200_000);
      expect(sc.state.records.get(IP)!.timelineEpoch).toBe(1);
    });
    test(`interface ${version}: with the same Announce, it is held (a queue looks the same)`, () => {
      const { at } = stepDown(false, version);
      // 40 s after the step, the estimate still stands where it was (20 ms above the new time).
      const err = Number(BigInt.asIntN(64, at(240).offsetNs - (BASE - 20n * MS)));
      expect(err).toBeGreaterThan(19 * 1_000_000);
    });
  }
});
