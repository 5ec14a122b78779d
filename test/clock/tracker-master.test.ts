// Whole scenarios of master selection and publishing (spec section 5), no sockets.

import { describe, expect, test } from "bun:test";
import { snapshot } from "../../src/clock/tracker.ts";
import { MS, S, Scenario, SimMaster, US, announce, followUp, sync } from "./helpers.ts";

const A = 0xaaaa_aaff_feaa_aaaan;
const B = 0xbbbb_bbff_febb_bbbbn;
const C = 0xcccc_ccff_fecc_ccccn;
const T0 = 1_000n * S;

describe("a master appears", () => {
  test("2 Announces + a Sync/Follow_Up pair: published with the exact offset", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    expect(sc.logs("info")).toEqual(["timing peer list: 10.0.0.5"]);

    sc.at(T0).ptp("10.0.0.5", announce(A, 0));
    // Sync received at 1000.010 s with 5 ns of correction; Follow_Up 1 ms later.
    // preciseOriginTimestamp 1234567 s + 123 ns.
    sc.at(T0 + 10n * MS).ptp("10.0.0.5", sync(A, 0, { correctionField: 5n * 65536n }));
    sc.at(T0 + 11n * MS).ptp("10.0.0.5", followUp(A, 0, 1_234_567_000_000_123n));
    // Valid but not yet qualified (one Announce): nothing published.
    expect(sc.publishes()).toEqual([]);

    sc.at(T0 + S).ptp("10.0.0.5", announce(A, 1));
    // 1_234_567_000_000_123 + 5 − 1_000_010_000_000
    const offset = 1_233_566_990_000_128n;
    expect(sc.last).toContainEqual({
      kind: "publish",
      client: "/nqptp",
      master: { clockId: A, ip: "10.0.0.5", localTimeNs: 1_000_010_000_000n, offsetNs: offset, masterStartTimeNs: 1_000_010_000_000n },
    });
    expect(sc.logs("info")).toContain("new master 0xaaaaaafffeaaaaaa at 10.0.0.5");

    // The next pair, 1.125 s later, from a perfect clock: same offset, new local time.
    sc.at(T0 + 1_135n * MS).ptp("10.0.0.5", sync(A, 1, { correctionField: 5n * 65536n }));
    sc.at(T0 + 1_136n * MS).ptp("10.0.0.5", followUp(A, 1, 1_234_567_000_000_123n + 1_125n * MS));
    expect(sc.last).toEqual([
      {
        kind: "publish",
        client: "/nqptp",
        master: { clockId: A, ip: "10.0.0.5", localTimeNs: 1_001_135_000_000n, offsetNs: offset, masterStartTimeNs: 1_000_010_000_000n },
      },
    ]);

    const snap = snapshot(sc.state, T0 + 2n * S);
    expect(snap.records).toEqual([
      {
        ip: "10.0.0.5",
        clockId: A,
        isTimingPeer: true,
        qualified: true,
        valid: true,
        isMaster: true,
        followedBy: [],
        lastHeardAgoNs: 2n * S - 1_136n * MS,
        latestOffsetNs: offset,
        sampleCount: 2,
        grandmasterIdentity: A,
        grandmasterPriority1: 248,
      },
    ]);
    expect(snap.master?.offsetNs).toBe(offset);
  });

  test("Follow_Up before its Sync: the Sync's receipt time is used", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const m = new SimMaster("10.0.0.5", A, 500n * S);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    m.round(sc);
    expect(sc.lastPublish()?.offsetNs).toBe(500n * S);
    // Round 2 delivered Follow_Up first (received at +2 ms), then Sync (received at +1 ms).
    const syncRx = sc.now + 125n * MS;
    const precise = syncRx + 500n * S + 7n; // the master ran 7 ns ahead this time
    sc.at(syncRx + 2n * MS).ptp("10.0.0.5", followUp(A, 1, precise));
    expect(sc.last).toEqual([]);
    sc.at(syncRx + 3n * MS).ptp("10.0.0.5", sync(A, 1), syncRx);
    expect(sc.last).toEqual([
      { kind: "publish", client: "/nqptp", master: expect.objectContaining({ localTimeNs: syncRx, offsetNs: 500n * S + 7n }) },
    ]);
  });

  test("no Sync at all (Follow_Up only): published from a Follow_Up's receipt 2 s into the run (its third, at 1 Hz)", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    sc.ptp("10.0.0.5", announce(A, 0));
    sc.advance(S).ptp("10.0.0.5", announce(A, 1));
    const fuRx = sc.now + 50n * MS;
    // A master at 1 Hz whose Syncs never reach us, announcing as it goes.
    const fu = (k: number) => {
      const rx = fuRx + BigInt(k) * S;
      sc.at(rx).ptp("10.0.0.5", followUp(A, k, rx + 42n * S, { correctionField: 3n * 65536n }));
      sc.ptp("10.0.0.5", announce(A, 2 + k));
    };
    // Each waits for its Sync (which may be on its way through the event port's reader thread);
    // those whose Sync did not come are dropped until the run is 2 s old (their
    // receipt may be a batch's, late).
    for (const k of [0, 1, 2]) {
      fu(k);
      expect(sc.last.filter((e) => e.kind === "publish")).toEqual([]);
    }
    sc.at(fuRx + 3n * S).ptp("10.0.0.5", followUp(A, 3, fuRx + 3n * S + 42n * S, { correctionField: 3n * 65536n }));
    const third = fuRx + 2n * S;
    expect(sc.last).toContainEqual({
      kind: "publish",
      client: "/nqptp",
      master: { clockId: A, ip: "10.0.0.5", localTimeNs: third, offsetNs: 42n * S + 3n, masterStartTimeNs: third },
    });
  });

  test("a master behind the local clock is published as a wrapped u64 offset", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const m = new SimMaster("10.0.0.5", A, -3n * S - 250n);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    m.round(sc);
    expect(sc.lastPublish()?.offsetNs).toBe(2n ** 64n - 3n * S - 250n);
    // And a rise through zero is a rise.
    m.offsetNs = 1_000n;
    sc.advance(125n * MS);
    m.round(sc);
    expect(sc.lastPublish()?.offsetNs).toBe(1_000n);
  });

  test("look-back on becoming master skips an outlier more than 1.15 s ahead", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const m = new SimMaster("10.0.0.5", A, 9n * S);
    // Samples while the clock is not yet qualified (no Announce): delays 3 ms, 0.2 ms (the
    // best), an outlier 1.5 s ahead, then 2 ms.
    const offsets = [9n * S - 3n * MS, 9n * S - 200n * US, 9n * S + 1_500n * MS, 9n * S - 2n * MS];
    const firstSyncAt = sc.now;
    for (const o of offsets) {
      m.offsetNs = o;
      m.round(sc);
      sc.advance(S);
    }
    expect(sc.publishes()).toEqual([]);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    expect(sc.lastPublish()).toEqual({
      clockId: A,
      ip: "10.0.0.5",
      localTimeNs: firstSyncAt + 3n * S,
      offsetNs: 9n * S - 200n * US,
      masterStartTimeNs: firstSyncAt,
    });
  });

  test("after mastership: a big fall moves the estimate 10 µs, a rise is taken", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const m = new SimMaster("10.0.0.5", A, 2n * S);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    m.round(sc);
    expect(sc.lastPublish()?.offsetNs).toBe(2n * S);
    sc.advance(125n * MS);
    m.round(sc, 5n * MS); // 5 ms of network delay: the sample falls 5 ms
    expect(sc.lastPublish()?.offsetNs).toBe(2n * S - 10n * US);
    sc.advance(125n * MS);
    m.round(sc, 50n * US); // 50 µs below the first: within 1000 ppm of 125 ms of the estimate
    expect(sc.lastPublish()?.offsetNs).toBe(2n * S - 50n * US);
    sc.advance(125n * MS);
    m.offsetNs = 2n * S + 30n * US;
    m.round(sc);
    expect(sc.lastPublish()?.offsetNs).toBe(2n * S + 30n * US);
    expect(sc.lastPublish()?.masterStartTimeNs).toBe(T0 + S);
  });
});

describe("choosing among timing peers", () => {
  function twoPeers() {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5", "10.0.0.6");
    const a = new SimMaster("10.0.0.5", A, 100n * S, { grandmasterPriority1: 128 });
    const b = new SimMaster("10.0.0.6", B, 200n * S, { grandmasterPriority1: 100 });
    for (let i = 0; i < 2; i++) {
      // B first, so that it is master from the start.
      b.announce(sc);
      a.announce(sc);
      a.round(sc);
      b.round(sc);
      sc.advance(S);
    }
    return { sc, a, b };
  }

  test("the better per BMC wins; a priority1 change switches master", () => {
    const { sc, a } = twoPeers();
    expect(sc.lastPublish()).toMatchObject({ clockId: B, ip: "10.0.0.6", offsetNs: 200n * S });
    expect(sc.publishes().every((p) => p?.clockId === B)).toBe(true);
    // A now announces priority1 50: it is better, and is published.
    a.announceOptions = { grandmasterPriority1: 50 };
    sc.clear();
    a.announce(sc);
    expect(sc.last).toContainEqual({
      kind: "publish",
      client: "/nqptp",
      master: expect.objectContaining({ clockId: A, ip: "10.0.0.5", offsetNs: 100n * S }),
    });
    expect(sc.logs("info")).toEqual(["new master 0xaaaaaafffeaaaaaa at 10.0.0.5"]);
    // Samples of the old master no longer publish anything.
    sc.clear();
    sc.advance(125n * MS);
    new SimMaster("10.0.0.6", B, 200n * S).round(sc);
    expect(sc.publishes()).toEqual([]);
  });

  test("a peer that is not qualified or not valid is not a candidate", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5", "10.0.0.6");
    const a = new SimMaster("10.0.0.5", A, S, { grandmasterPriority1: 200 });
    const b = new SimMaster("10.0.0.6", B, 2n * S, { grandmasterPriority1: 1 });
    a.announce(sc);
    b.announce(sc);
    a.round(sc);
    sc.advance(S);
    a.announce(sc);
    b.announce(sc); // B is qualified but has sent no Follow_Up: not valid
    expect(sc.lastPublish()?.clockId).toBe(A);
    b.round(sc); // now valid: B is better and takes over
    expect(sc.lastPublish()?.clockId).toBe(B);
  });

  test("a non-peer never becomes master, even with priority1 0", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const peer = new SimMaster("10.0.0.5", A, S, { grandmasterPriority1: 250 });
    const rogue = new SimMaster("10.0.0.66", C, 5n * S, { grandmasterPriority1: 0, grandmasterClockQuality: { clockClass: 6 } });
    for (let i = 0; i < 5; i++) {
      rogue.announce(sc);
      rogue.round(sc);
      peer.announce(sc);
      peer.round(sc);
      sc.advance(S);
    }
    expect(sc.publishes().every((p) => p?.clockId === A)).toBe(true);
    const snap = snapshot(sc.state, sc.now);
    const rogueRecord = snap.records.find((r) => r.ip === "10.0.0.66");
    expect(rogueRecord).toMatchObject({ isTimingPeer: false, qualified: true, valid: true, isMaster: false });
    // With no peer at all, still no master.
    sc.clear();
    sc.peers();
    expect(sc.publishes()).toEqual([null]);
    rogue.announce(sc);
    rogue.round(sc);
    expect(sc.publishes()).toEqual([null]);
    // Once Shairport Sync names it, it can be master.
    sc.peers("10.0.0.66");
    expect(sc.lastPublish()?.clockId).toBe(C);
  });

  test("peer list replaced and cleared", () => {
    const { sc } = twoPeers();
    expect(sc.lastPublish()?.clockId).toBe(B);
    sc.clear();
    sc.peers("10.0.0.5"); // B no longer a peer: A takes over
    expect(sc.publishes()).toEqual([expect.objectContaining({ clockId: A, ip: "10.0.0.5" })]);
    sc.clear();
    sc.peers("10.0.0.5"); // the same list again: nothing to publish
    expect(sc.publishes()).toEqual([]);
    sc.peers("10.0.0.6", "10.0.0.5"); // B is back (its record was kept while heard)
    expect(sc.lastPublish()?.clockId).toBe(B);
    sc.clear();
    sc.peers();
    expect(sc.publishes()).toEqual([null]);
    expect(sc.logs("info")).toEqual(["timing peer list cleared", "no master (was 0xbbbbbbfffebbbbbb at 10.0.0.6)"]);
    // Clearing again publishes nothing more.
    sc.clear();
    sc.peers();
    expect(sc.publishes()).toEqual([]);
  });

  test("a master that changes clock identity is dropped until the new clock qualifies", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const m = new SimMaster("10.0.0.5", A, S);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    m.round(sc);
    expect(sc.lastPublish()?.clockId).toBe(A);
    sc.advance(S);
    const n = new SimMaster("10.0.0.5", C, 3n * S);
    n.announce(sc);
    expect(sc.lastPublish()).toBeNull();
    expect(sc.logs("info")).toContain("clock at 10.0.0.5 changed identity 0xaaaaaafffeaaaaaa → 0xccccccfffecccccc: record restarted");
    n.round(sc);
    sc.advance(S);
    n.announce(sc);
    expect(sc.lastPublish()).toMatchObject({ clockId: C, offsetNs: 3n * S });
  });

  test("no duplicate publishes", () => {
    const { sc } = twoPeers();
    const all = sc.publishes();
    for (let i = 1; i < all.length; i++) expect(all[i]).not.toEqual(all[i - 1]);
  });

  test("messages claiming our own clock identity are ignored", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.5");
    const before = sc.state;
    sc.ptp("10.0.0.5", announce(0x0011_22ff_fe33_4455n, 0));
    expect(sc.state.records).toBe(before.records);
  });
});
