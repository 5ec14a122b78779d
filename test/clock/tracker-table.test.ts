// The clock record table (spec section 4): garbage collection, a full table, the peer list.

import { describe, expect, test } from "bun:test";
import { snapshot } from "../../src/clock/tracker.ts";
import { syncSequenceRestarted } from "../../src/clock/table.ts";
import { MS, S, Scenario, SimMaster, announce, other, sync } from "./helpers.ts";

const T0 = 1_000n * S;
const ips = (sc: Scenario) => [...sc.state.records.keys()].sort();

describe("garbage collection", () => {
  test("a non-peer not heard for 120 s is deleted; a timing peer is kept", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.1");
    sc.ptp("10.0.0.1", announce(0x1n, 0));
    sc.ptp("10.0.0.2", announce(0x2n, 0));
    sc.at(T0 + 119_999n * MS).ptp("10.0.0.3", other(0x3n));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    sc.at(T0 + 120n * S).ptp("10.0.0.3", other(0x3n));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.3"]);
    expect(sc.logs("debug")).toContain("clock record 10.0.0.2 (0x0000000000000002) deleted: not heard for 120 s");
    // Much later, any event sweeps 10.0.0.3 too; the peer stays whatever the silence.
    sc.at(T0 + 1_000n * S).ptp("10.0.0.4", other(0x4n));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.4"]);
    expect(snapshot(sc.state, sc.now).records[0]).toMatchObject({ ip: "10.0.0.1", lastHeardAgoNs: 1_000n * S - 0n });
  });

  test("being heard keeps a non-peer alive", () => {
    const sc = new Scenario({}, T0);
    for (let t = 0n; t <= 300n; t += 60n) sc.at(T0 + t * S).ptp("10.0.0.2", other(0x2n));
    expect(ips(sc)).toEqual(["10.0.0.2"]);
  });

  test("a peer dropped from the list is collected once 120 s unheard (at once if never heard)", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.1", "10.0.0.9"); // 10.0.0.9 never speaks: an inert record
    sc.ptp("10.0.0.1", announce(0x1n, 0));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.9"]);
    expect(snapshot(sc.state, sc.now).records[1]).toMatchObject({ ip: "10.0.0.9", clockId: null, isTimingPeer: true, lastHeardAgoNs: null });
    sc.at(T0 + 100n * S).peers();
    expect(ips(sc)).toEqual(["10.0.0.1"]);
    sc.at(T0 + 119n * S).ptp("10.0.0.5", other(0x5n));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.5"]);
    sc.at(T0 + 120n * S).ptp("10.0.0.5", other(0x5n));
    expect(ips(sc)).toEqual(["10.0.0.5"]);
  });

  test("GC never disturbs the master (a peer)", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.1");
    const m = new SimMaster("10.0.0.1", 0x1n, S);
    m.announce(sc);
    sc.advance(S);
    m.announce(sc);
    m.round(sc);
    sc.clear();
    sc.at(T0 + 500n * S).ptp("10.0.0.2", other(0x2n));
    expect(sc.publishes()).toEqual([]);
    expect(sc.master?.ip).toBe("10.0.0.1");
  });
});

describe("a full table", () => {
  test("40 sources: the table stays ≤ 32, the timing peer is never evicted, one log", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.1");
    const peer = new SimMaster("10.0.0.1", 0x1n, S);
    peer.announce(sc);
    sc.clear();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 40; i++) {
        sc.advance(MS);
        sc.ptp(`10.0.1.${i}`, announce(BigInt(0x100 + i), round));
        expect(sc.state.records.size).toBeLessThanOrEqual(32);
        expect(sc.state.records.has("10.0.0.1")).toBe(true);
      }
    }
    expect(sc.state.records.size).toBe(32);
    const warns = sc.logs("warn");
    expect(warns).toEqual(["clock table full (32): evicted 10.0.1.0"]);
    expect(sc.state.overflow.active).toBe(true);
    // The least recently heard went each time: with 40 sources in turn every newcomer evicts.
    expect(sc.state.overflow.evicted).toBe(200 - 31);
    // The peer still works as master.
    sc.advance(S);
    peer.announce(sc);
    peer.round(sc);
    expect(sc.lastPublish()?.clockId).toBe(0x1n);
    // The flood stops; 120 s later a newcomer finds room: the episode ends with a summary.
    sc.clear();
    sc.advance(121n * S).ptp("10.0.2.1", other(0x999n));
    expect(sc.logs("info")).toEqual(["clock table has room again: 169 evicted, 0 dropped while it was full"]);
    expect(sc.state.overflow.active).toBe(false);
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.2.1"]);
  });

  test("every record a timing peer: the newcomer is dropped, logged once", () => {
    const sc = new Scenario({ maxRecords: 4 }, T0);
    sc.peers("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4");
    sc.clear();
    for (let i = 0; i < 100; i++) sc.advance(MS).ptp(`10.0.9.${i}`, announce(BigInt(0x900 + i), 0));
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    expect(sc.logs("warn")).toEqual(["clock table full (4) of timing peers: dropped 10.0.9.0"]);
    expect(sc.state.overflow).toEqual({ active: true, evicted: 0, dropped: 100 });
  });

  test("a new peer list evicts non-peers to make room for its inert records", () => {
    const sc = new Scenario({ maxRecords: 3 }, T0);
    for (let i = 1; i <= 3; i++) sc.advance(MS).ptp(`10.0.0.${i}`, other(BigInt(i)));
    sc.peers("10.0.0.8", "10.0.0.9");
    expect(ips(sc)).toEqual(["10.0.0.3", "10.0.0.8", "10.0.0.9"]);
  });

  test("a peer list longer than the table: the first maxRecords are kept, with a warning", () => {
    const sc = new Scenario({ maxRecords: 3 }, T0);
    sc.peers("10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5");
    expect(sc.state.peers).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(ips(sc)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(sc.logs("warn")).toEqual(["timing peer list has 5 addresses; keeping the first 3, ignoring 10.0.0.4, 10.0.0.5"]);
  });
});

describe("log lines the LAN can trigger are rate-limited", () => {
  test("new records: at most 5 lines per 10 s, then a count", () => {
    const sc = new Scenario({}, T0);
    for (let i = 0; i < 1_000; i++) sc.advance(MS).ptp(`10.1.${i >> 8}.${i & 255}`, other(BigInt(i + 1)));
    // 1000 events over 1 s: 5 lines, one warning for the full table.
    expect(sc.logs("debug").length).toBe(5);
    expect(sc.logs("warn").length).toBe(1);
    sc.advance(10n * S).ptp("10.2.0.1", other(0x77n));
    const debug = sc.logs("debug");
    expect(debug[debug.length - 1]).toBe("new clock record 10.2.0.1 (995 similar messages suppressed)");
  });

  test("identity changes: a sender alternating identities does not flood", () => {
    const sc = new Scenario({}, T0);
    for (let i = 0; i < 500; i++) sc.advance(MS).ptp("10.0.0.7", announce(BigInt(1 + (i % 2)), i));
    expect(sc.logs("info").length).toBe(5);
  });
});

describe("timeline evidence (a record's timelineEpoch)", () => {
  const epoch = (sc: Scenario, ip = "10.0.0.1") => sc.state.records.get(ip)!.timelineEpoch;

  test("an Announce that changes grandmaster, stepsRemoved, a priority or the UTC offset counts; the same Announce again does not", () => {
    const sc = new Scenario({}, T0);
    sc.ptp("10.0.0.1", announce(0x1n, 0));
    expect(epoch(sc)).toBe(0); // the first Announce is no change
    sc.ptp("10.0.0.1", announce(0x1n, 1));
    expect(epoch(sc)).toBe(0);
    const changes = [
      { grandmasterIdentity: 0x99n },
      { grandmasterIdentity: 0x99n, stepsRemoved: 1 },
      { grandmasterIdentity: 0x99n, stepsRemoved: 1, grandmasterPriority1: 100 },
      { grandmasterIdentity: 0x99n, stepsRemoved: 1, grandmasterPriority1: 100, grandmasterPriority2: 100 },
      { grandmasterIdentity: 0x99n, stepsRemoved: 1, grandmasterPriority1: 100, grandmasterPriority2: 100, currentUtcOffset: 36 },
    ];
    changes.forEach((o, i) => {
      sc.ptp("10.0.0.1", announce(0x1n, 2 + i, o));
      expect(epoch(sc)).toBe(i + 1);
    });
    // A field that says nothing of the timeline (the clock's quality) does not count.
    sc.ptp("10.0.0.1", announce(0x1n, 9, { ...changes[4], grandmasterClockQuality: { clockClass: 6 } }));
    expect(epoch(sc)).toBe(changes.length);
  });

  test("a new clock identity at the address counts, and restarts the record", () => {
    const sc = new Scenario({}, T0);
    sc.ptp("10.0.0.1", announce(0x1n, 0));
    sc.ptp("10.0.0.1", sync(0x1n, 1));
    sc.ptp("10.0.0.1", announce(0x2n, 0));
    expect(epoch(sc)).toBe(1);
    expect(sc.state.records.get("10.0.0.1")!.clockIdentity).toBe(0x2n);
    expect(sc.state.records.get("10.0.0.1")!.lastSyncSequenceId).toBeNull();
  });

  test("a Sync sequence that goes back by more than a reordering counts; moving on, wrapping, or a small step back does not", () => {
    const sc = new Scenario({}, T0);
    const seqs: [number, number][] = [
      [100, 0],
      [101, 0],
      [140, 0], // lost Syncs: forward
      [130, 0], // back by 10: reordering, not a restart
      [0, 1], // back by 130: the sender restarted
      [1, 1],
    ];
    for (const [seq, expected] of seqs) {
      sc.ptp("10.0.0.1", sync(0x1n, seq));
      expect(epoch(sc)).toBe(expected);
    }
    sc.ptp("10.0.0.1", sync(0x1n, 65530)); // 1 → 65530: back by 7 through the wrap: reordering
    expect(epoch(sc)).toBe(1);
    sc.ptp("10.0.0.1", sync(0x1n, 5)); // 65530 → 5: forward through the wrap
    expect(epoch(sc)).toBe(1);
  });

  test("syncSequenceRestarted: a table", () => {
    const rows: [number, number, boolean][] = [
      [10, 11, false],
      [10, 10, false],
      [10, 0, false],
      [100, 0, true],
      [65535, 0, false],
      [0, 65535, false],
      [0, 65519, true],
      [30000, 0, true],
      [40000, 0, false], // 0 is 25536 ahead of 40000 through the wrap: forward
    ];
    for (const [last, next, restarted] of rows) expect([last, next, syncSequenceRestarted(last, next)]).toEqual([last, next, restarted]);
  });
});
