// Interface versions 8, 9, 10 (spec sections 6 and 7): following the clock Shairport Sync names,
// play commands, the validity window and its tick, smoothing as published, waking. Whole
// scenarios through the reducer, no sockets.

import { describe, expect, test } from "bun:test";
import {
  DEFAULT_FOLLOW_RULES,
  notFollowing,
  playBegin,
  playEnd,
  scheduleTick,
  startFollowing,
  validityDeadline,
  type FollowState,
} from "../../src/clock/client-follow.ts";
import { classicSequenceFilter } from "../../src/clock/offset/classic-sequence.ts";
import { idleTrack } from "../../src/clock/offset/sequence-seam.ts";
import { createTracker, snapshot } from "../../src/clock/tracker.ts";
import { isInterfaceVersion } from "../../src/rules/interface-version.ts";
import { FollowScenario, MS, S, Scenario, US, SimMaster, announce, followUp, other, sync, trackerOptions } from "./helpers.ts";

const T0 = 1_000n * S;
const CLASSIC = idleTrack(classicSequenceFilter());
const A = 0xaaaa_aaff_feaa_aaaan; // the followed clock's own identity (header)
const GM = 0x6666_66ff_fe66_6666n; // the grandmaster it announces
const GM2 = 0x7777_77ff_fe77_7777n;
const IP = "10.0.0.5";

function master(ip = IP, clockId = A, grandmasterIdentity = GM, offsetNs = 500n * S): SimMaster {
  return new SimMaster(ip, clockId, offsetNs, { grandmasterIdentity });
}

/** One Sync/Follow_Up round at local time `at` (the Follow_Up 1 ms later). */
function roundAt(sc: FollowScenario, m: SimMaster, at: bigint) {
  sc.at(at);
  return m.round(sc);
}

describe("interface versions", () => {
  test("5, 6, 8, 9, 10 are served; others are refused", () => {
    expect([4, 5, 6, 7, 8, 9, 10, 11].filter(isInterfaceVersion)).toEqual([5, 6, 8, 9, 10]);
    for (const v of [8, 9, 10] as const) {
      const state = createTracker(trackerOptions({ ourClockIdentity: 1n, interfaceVersion: v }));
      expect([...state.clients!.keys()]).toEqual(["/nqptp"]);
      expect(state.clients!.get("/nqptp")!.follow).toEqual(notFollowing(state.config.idleSequenceTrack));
      expect(state.config.idleSequenceTrack.name).toBe("classic");
      expect(state.selection).toBeNull();
    }
    for (const v of [5, 6] as const) {
      const state = createTracker(trackerOptions({ ourClockIdentity: 1n, interfaceVersion: v }));
      expect(state.clients).toBeNull();
      expect(state.selection).toEqual({ master: null });
    }
    expect(() => createTracker(trackerOptions({ ourClockIdentity: 1n, interfaceVersion: 7 as never }))).toThrow("is not one of 5, 6, 8, 9, 10");
  });
});

describe("T then B", () => {
  test("publishes the followed clock with its grandmasterIdentity as clock id, not the header clock id", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    expect(sc.last).toEqual([
      { kind: "log", level: "info", message: "following 10.0.0.5" },
      { kind: "schedule-tick", delayMs: 5_000 },
    ]);
    sc.advance(100n * MS).playBegin();
    expect(sc.last).toEqual([{ kind: "log", level: "info", message: "play began: clock active" }]);
    m.announce(sc);
    expect(sc.publishes()).toEqual([]);
    roundAt(sc, m, T0 + S);
    expect(sc.lastPublishes()).toEqual([{ clockId: GM, ip: IP, localTimeNs: T0 + S, offsetNs: 500n * S, masterStartTimeNs: T0 + S }]);
    expect(sc.lastPublish()?.clockId).not.toBe(A);
    // The next sample, 2 µs higher, within the first second: taken whole.
    m.offsetNs = 500n * S + 2_000n;
    roundAt(sc, m, T0 + 1_125n * MS);
    expect(sc.lastPublishes()).toEqual([
      { clockId: GM, ip: IP, localTimeNs: T0 + 1_125n * MS, offsetNs: 500n * S + 2_000n, masterStartTimeNs: T0 + S },
    ]);
    const snap = snapshot(sc.state, T0 + 1_200n * MS);
    expect(snap.follow).toEqual({
      ip: IP,
      active: true,
      validForNs: 3_800n * MS,
      sequenceStartNs: T0 + S,
      grandmasterIdentity: GM,
      restartPending: false,
    });
    expect(snap.peers).toEqual([IP]);
    expect(snap.records.map((r) => [r.ip, r.isMaster, r.isTimingPeer])).toEqual([[IP, true, true]]);
    // Never a tick while active.
    expect(sc.ticks()).toEqual([5_000]);
  });

  test("samples before the first Announce are smoothed; the record is published when the Announce comes", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    roundAt(sc, m, T0 + 100n * MS);
    m.offsetNs = 500n * S + 10n;
    roundAt(sc, m, T0 + 225n * MS);
    expect(sc.publishes()).toEqual([]); // no grandmasterIdentity yet
    sc.at(T0 + 300n * MS);
    m.announce(sc);
    expect(sc.lastPublishes()).toEqual([
      { clockId: GM, ip: IP, localTimeNs: T0 + 225n * MS, offsetNs: 500n * S + 10n, masterStartTimeNs: T0 + 100n * MS },
    ]);
  });

  test("no qualification needed: one Announce is enough", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    roundAt(sc, m, T0 + 100n * MS);
    expect(sc.state.records.get(IP)?.qualification.qualified).toBe(false);
    expect(sc.lastPublish()?.clockId).toBe(GM);
  });
});

describe("the validity window", () => {
  test("T without B publishes for 5 s; the tick at 5 s zeros; B later restarts smoothing", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    expect(sc.ticks()).toEqual([5_000]);
    m.announce(sc);
    for (let i = 0n; i < 5n; i++) {
      roundAt(sc, m, T0 + i * S + 500n * MS);
      expect(sc.lastPublishes()).toEqual([
        { clockId: GM, ip: IP, localTimeNs: T0 + i * S + 500n * MS, offsetNs: 500n * S, masterStartTimeNs: T0 + 500n * MS },
      ]);
    }
    // Packets do not reschedule the tick.
    expect(sc.ticks()).toEqual([5_000]);
    sc.at(T0 + 5n * S).tick();
    expect(sc.lastPublishes()).toEqual([null]);
    expect(sc.logs("debug")).toContain("clock 10.0.0.5 no longer active or valid: publishing zeros");
    expect(sc.ticks()).toEqual([5_000]);
    roundAt(sc, m, T0 + 5_500n * MS);
    expect(sc.lastPublishes()).toEqual([]);
    expect(snapshot(sc.state, sc.now).follow).toMatchObject({ active: false, validForNs: 0n });

    // B long after: the clock had lapsed. The next sample is dropped, the one after starts over.
    sc.at(T0 + 10n * S).playBegin();
    expect(sc.last).toEqual([{ kind: "log", level: "info", message: "play began: clock active (smoothing restarted)" }]);
    expect(snapshot(sc.state, sc.now).follow?.restartPending).toBe(true);
    roundAt(sc, m, T0 + 10_100n * MS);
    expect(sc.lastPublishes()).toEqual([]);
    expect(sc.logs("debug")).toContain("smoothing restart: dropped a sample of 10.0.0.5");
    m.offsetNs = 500n * S - 3n * MS; // lower: a fresh sequence takes it as is
    roundAt(sc, m, T0 + 10_225n * MS);
    expect(sc.lastPublishes()).toEqual([
      { clockId: GM, ip: IP, localTimeNs: T0 + 10_225n * MS, offsetNs: 500n * S - 3n * MS, masterStartTimeNs: T0 + 10_225n * MS },
    ]);
  });

  test("any event after the deadline zeros too (the tick is not needed for correctness)", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    m.announce(sc);
    roundAt(sc, m, T0 + 500n * MS);
    expect(sc.lastPublish()).not.toBeNull();
    sc.at(T0 + 7n * S).ptp("10.0.0.99", other(0x99n));
    expect(sc.lastPublishes()).toEqual([null]);
  });

  test("E then B within 2.25 s continues the sequence; E then B after 2.25 s restarts it", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    for (let i = 0n; i < 10n; i++) roundAt(sc, m, T0 + i * S + 500n * MS);
    const start = T0 + 500n * MS;
    expect(sc.lastPublish()?.masterStartTimeNs).toBe(start);

    sc.at(T0 + 10n * S).playEnd();
    expect(sc.last).toEqual([
      { kind: "log", level: "info", message: "play ended: clock valid for 2.25 s more" },
      { kind: "schedule-tick", delayMs: 2_250 },
    ]);
    roundAt(sc, m, T0 + 11n * S);
    expect(sc.lastPublish()).toMatchObject({ localTimeNs: T0 + 11n * S, masterStartTimeNs: start });
    sc.at(T0 + 12n * S).playBegin();
    expect(sc.last).toEqual([{ kind: "log", level: "info", message: "play began: clock active" }]);
    // The tick asked for at E comes and finds the clock active: nothing, no new timer.
    sc.at(T0 + 12_250n * MS).tick();
    expect(sc.last).toEqual([]);
    roundAt(sc, m, T0 + 12_500n * MS);
    expect(sc.lastPublish()).toMatchObject({ localTimeNs: T0 + 12_500n * MS, masterStartTimeNs: start });

    sc.at(T0 + 20n * S).playEnd();
    sc.at(T0 + 22_250n * MS).tick();
    expect(sc.lastPublishes()).toEqual([null]);
    sc.at(T0 + 23n * S).playBegin();
    expect(sc.logs("info")).toContain("play began: clock active (smoothing restarted)");
    roundAt(sc, m, T0 + 23_100n * MS);
    expect(sc.lastPublishes()).toEqual([]);
    roundAt(sc, m, T0 + 23_225n * MS);
    expect(sc.lastPublishes()).toEqual([
      { clockId: GM, ip: IP, localTimeNs: T0 + 23_225n * MS, offsetNs: 500n * S, masterStartTimeNs: T0 + 23_225n * MS },
    ]);
  });

  test("B exactly at the end of the validity window counts as expired", () => {
    const sc = new FollowScenario({}, T0);
    sc.follow(IP);
    sc.at(T0 + 5n * S - 1n).playBegin();
    expect(sc.followState?.filter.restart).toBe("none");
    sc.playEnd();
    sc.at(T0 + 5n * S - 1n + 2_250n * MS).playBegin();
    expect(sc.followState?.filter.restart).toBe("drop-next");
  });

  test("E keeps a longer validity granted by T (at least 5 s); E when not active changes nothing", () => {
    const sc = new FollowScenario({}, T0);
    sc.follow(IP);
    sc.playBegin();
    sc.at(T0 + S).playEnd();
    // Still valid until T0 + 5 s, not T0 + 3.25 s: the outstanding tick stands.
    expect(sc.followState?.validUntilNs).toBe(T0 + 5n * S);
    expect(sc.ticks()).toEqual([5_000]);
    const before = sc.followState;
    sc.playEnd();
    expect(sc.followState).toBe(before);
    expect(sc.logs("debug")).toContain("play ended: clock was not active");
  });

  test("P changes nothing", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    roundAt(sc, m, T0 + 100n * MS);
    const follow = sc.followState;
    const published = sc.published;
    sc.advance(S).pause();
    expect(sc.last).toEqual([{ kind: "log", level: "debug", message: "play paused: nothing to do" }]);
    expect(sc.followState).toBe(follow);
    expect(sc.published).toBe(published);
  });
});

describe("T alone, and a new T", () => {
  test("T alone stops timing: zeros, records forgotten, inactive, validity cleared", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    roundAt(sc, m, T0 + 100n * MS);
    expect(sc.lastPublish()).not.toBeNull();
    sc.at(T0 + S).follow(null);
    expect(sc.last).toEqual([
      { kind: "log", level: "info", message: "timing stopped" },
      { kind: "publish", client: "/nqptp", master: null },
    ]);
    expect(sc.state.records.size).toBe(0);
    expect(sc.state.peers).toEqual([]);
    expect(snapshot(sc.state, sc.now).follow).toEqual({
      ip: null,
      active: false,
      validForNs: null,
      sequenceStartNs: null,
      grandmasterIdentity: null,
      restartPending: false,
    });
    // The clock goes on sending: a non-peer now, never published, never woken.
    for (let i = 0n; i < 5n; i++) {
      sc.at(T0 + (2n + i) * S);
      m.announce(sc);
      roundAt(sc, m, T0 + (2n + i) * S + 100n * MS);
    }
    expect(sc.publishes().slice(-1)).toEqual([null]);
    expect(sc.sends().length).toBe(2); // the first-Announce wake while it was followed
  });

  test("a second T to another address forgets the first clock and follows the new one only", () => {
    const sc = new FollowScenario({}, T0);
    const first = master();
    const second = master("10.0.0.6", 0xbbbbn, GM2, 200n * S);
    sc.follow(IP);
    sc.playBegin();
    first.announce(sc);
    roundAt(sc, first, T0 + 100n * MS);
    expect(sc.lastPublish()?.ip).toBe(IP);

    sc.at(T0 + S).follow("10.0.0.6");
    expect(sc.lastPublishes()).toEqual([null]); // nothing known of the new clock yet
    expect([...sc.state.records.keys()]).toEqual(["10.0.0.6"]);
    expect(sc.state.peers).toEqual(["10.0.0.6"]);
    expect(sc.followState?.active).toBe(true); // play goes on
    sc.clear();
    first.announce(sc);
    roundAt(sc, first, T0 + 1_100n * MS);
    expect(sc.publishes()).toEqual([]);
    expect(sc.state.records.get(IP)?.isTimingPeer).toBe(false);
    second.announce(sc);
    roundAt(sc, second, T0 + 1_200n * MS);
    expect(sc.publishes()).toEqual([
      { clockId: GM2, ip: "10.0.0.6", localTimeNs: T0 + 1_200n * MS, offsetNs: 200n * S, masterStartTimeNs: T0 + 1_200n * MS },
    ]);
  });

  test("T again to the same address starts its record and smoothing over", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    roundAt(sc, m, T0 + 100n * MS);
    sc.at(T0 + 3n * S).follow(IP);
    expect(sc.lastPublishes()).toEqual([null]);
    m.announce(sc);
    roundAt(sc, m, T0 + 3_100n * MS);
    expect(sc.lastPublish()?.masterStartTimeNs).toBe(T0 + 3_100n * MS);
  });

  test("B before any T: active; T then publishes from its first sample (no sample dropped)", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.playBegin();
    expect(sc.logs("info")).toEqual(["play began: clock active (smoothing restarted)"]);
    sc.follow(IP);
    expect(sc.ticks()).toEqual([]); // active: no deadline
    m.announce(sc);
    roundAt(sc, m, T0 + 100n * MS);
    expect(sc.lastPublish()?.masterStartTimeNs).toBe(T0 + 100n * MS);
  });
});

describe("version 8 (no B/E/P)", () => {
  test("active whenever a clock is followed: never lapses, no tick; T alone zeros", () => {
    const sc = new FollowScenario({ interfaceVersion: 8 }, T0);
    const m = master();
    sc.follow(IP);
    expect(sc.last).toEqual([{ kind: "log", level: "info", message: "following 10.0.0.5" }]);
    m.announce(sc);
    for (let i = 0n; i < 60n; i++) {
      roundAt(sc, m, T0 + i * S + 100n * MS);
      expect(sc.lastPublish()?.localTimeNs).toBe(T0 + i * S + 100n * MS);
    }
    expect(sc.followState?.active).toBe(true);
    expect(sc.ticks()).toEqual([]);
    // A play command reaching a version 8 tracker (the parser never makes one) is ignored.
    const follow = sc.followState;
    sc.playEnd();
    sc.playBegin();
    expect(sc.followState).toBe(follow);
    expect(sc.logs("debug")).toContain('"E" ignored: interface version 8 has no play commands');
    sc.follow(null);
    expect(sc.lastPublishes()).toEqual([null]);
    expect(sc.followState?.active).toBe(false);
  });

  test("version 10 behaves as 9", () => {
    const sc = new FollowScenario({ interfaceVersion: 10 }, T0);
    sc.follow(IP);
    expect(sc.ticks()).toEqual([5_000]);
    sc.playBegin();
    expect(sc.followState?.active).toBe(true);
  });
});

describe("grandmaster", () => {
  test("a change of grandmaster starts a new sequence; the old id stays published until its first sample", () => {
    const sc = new FollowScenario({}, T0);
    const m = master();
    sc.follow(IP);
    sc.playBegin();
    m.announce(sc);
    for (const t of [500n, 1_500n, 2_500n]) roundAt(sc, m, T0 + t * MS);
    expect(sc.lastPublish()).toMatchObject({ clockId: GM, masterStartTimeNs: T0 + 500n * MS });
    m.announceOptions = { grandmasterIdentity: GM2 };
    sc.at(T0 + 3n * S);
    m.announce(sc);
    expect(sc.lastPublishes()).toEqual([]);
    m.offsetNs = 400n * S;
    roundAt(sc, m, T0 + 3_500n * MS);
    expect(sc.logs("info")).toContain("grandmaster of 10.0.0.5 changed to 0x777777fffe777777: new smoothing sequence");
    expect(sc.lastPublishes()).toEqual([
      { clockId: GM2, ip: IP, localTimeNs: T0 + 3_500n * MS, offsetNs: 400n * S, masterStartTimeNs: T0 + 3_500n * MS },
    ]);
  });
});

describe("only the followed clock", () => {
  test("non-followed clocks are never published nor woken, whatever they announce", () => {
    const sc = new FollowScenario({}, T0);
    sc.follow(IP);
    sc.playBegin();
    const intruder = new SimMaster("10.0.0.9", 0x9n, 9n * S, { grandmasterPriority1: 0, grandmasterIdentity: 0x9n });
    for (let i = 0n; i < 20n; i++) {
      sc.at(T0 + i * S);
      intruder.announce(sc);
      // And silent announces from another: 3 in a row would wake a timing peer.
      sc.ptp("10.0.0.10", announce(0x10n, Number(i)));
      roundAt(sc, intruder, T0 + i * S + 100n * MS);
    }
    expect(sc.publishes()).toEqual([]);
    expect(sc.sends()).toEqual([]);
    expect(sc.master).toBeNull();
  });

  test("the table stays bounded and non-peers are collected; the followed record stays", () => {
    const sc = new FollowScenario({ maxRecords: 8 }, T0);
    sc.follow(IP);
    for (let i = 0; i < 40; i++) sc.at(T0 + BigInt(i) * MS).ptp(`10.0.1.${i}`, other(BigInt(i + 100)));
    expect(sc.state.records.size).toBe(8);
    expect(sc.state.records.get(IP)?.isTimingPeer).toBe(true);
    sc.at(T0 + 200n * S).ptp("10.0.2.1", other(0x201n));
    expect([...sc.state.records.keys()].sort()).toEqual([IP, "10.0.2.1"]);
  });
});

describe("waking the followed clock (section 7, versions 8+)", () => {
  const wakeLogs = (sc: Scenario) => sc.logs("info").filter((l) => l.startsWith("waking"));

  test("once at its first Announce; the silent rule still applies after 3 Announces", () => {
    const sc = new FollowScenario({}, T0);
    sc.follow(IP);
    sc.ptp(IP, announce(A, 0));
    expect(sc.sends().map((s) => [s.to, s.delayMs, s.announce.grandmasterPriority1])).toEqual([
      [IP, 0, 247],
      [IP, 150, 249],
    ]);
    expect(wakeLogs(sc)).toEqual(["waking clock 0xaaaaaafffeaaaaaa at 10.0.0.5: its first Announce"]);
    sc.advance(S).ptp(IP, announce(A, 1));
    expect(sc.sends().length).toBe(2);
    sc.advance(S).ptp(IP, announce(A, 2));
    expect(sc.sends().length).toBe(4);
    expect(wakeLogs(sc)[1]).toBe("waking silent clock 0xaaaaaafffeaaaaaa at 10.0.0.5");
  });

  test("version 5 does not wake at a first Announce", () => {
    const sc = new Scenario({}, T0);
    sc.peers(IP);
    sc.ptp(IP, announce(A, 0));
    expect(sc.sends()).toEqual([]);
  });

  test("when its time stands still for 60 s within the first 62 s of the sequence: once", () => {
    const sc = new FollowScenario({ interfaceVersion: 8 }, T0);
    sc.follow(IP);
    sc.ptp(IP, announce(A, 0, { grandmasterIdentity: GM }));
    expect(sc.sends().length).toBe(2);
    sc.clear();
    const frozen = 777n * S;
    const wakesAt: bigint[] = [];
    for (let i = 0; i <= 70; i++) {
      const t = T0 + BigInt(i) * S + 100n * MS;
      sc.at(t).ptp(IP, sync(A, i));
      sc.at(t + MS).ptp(IP, followUp(A, i, frozen));
      if (sc.last.some((e) => e.kind === "send-announce")) wakesAt.push(BigInt(i));
    }
    expect(wakesAt).toEqual([60n]);
    expect(sc.logs("info")).toContain("waking clock 0xaaaaaafffeaaaaaa at 10.0.0.5: its time has not advanced for 60 s");
  });

  test("a stall first noticed after 62 s of mastership wakes nothing", () => {
    const sc = new FollowScenario({ interfaceVersion: 8 }, T0);
    sc.follow(IP);
    sc.ptp(IP, announce(A, 0, { grandmasterIdentity: GM }));
    sc.clear();
    for (let i = 0; i <= 80; i++) {
      const t = T0 + BigInt(i) * S + 100n * MS;
      // Advances for 5 s, then stands still: 60 s of standing still is reached at 65 s.
      const origin = 777n * S + BigInt(Math.min(i, 5)) * S;
      sc.at(t).ptp(IP, sync(A, i));
      sc.at(t + MS).ptp(IP, followUp(A, i, origin));
    }
    expect(sc.sends()).toEqual([]);
  });
});

describe("the tick", () => {
  test("an early tick asks again for the rest (rounded up); an idle tracker never asks", () => {
    const sc = new FollowScenario({}, T0);
    sc.follow(IP);
    sc.at(T0 + 5n * S - 500n * US).tick();
    expect(sc.last).toEqual([{ kind: "schedule-tick", delayMs: 1 }]);
    sc.at(T0 + 5n * S).tick();
    expect(sc.last).toEqual([]);
    expect(sc.ticks()).toEqual([5_000, 1]);

    const idle = new FollowScenario({}, T0);
    idle.ptp(IP, announce(A, 0));
    idle.tick();
    idle.playBegin();
    idle.follow(IP);
    idle.advance(10n * S).playEnd();
    idle.follow(null);
    idle.tick();
    expect(idle.ticks()).toEqual([2_250]);
  });

  test("scheduleTick: only on a new deadline, or after the timer fired with time left", () => {
    const following = startFollowing(notFollowing(CLASSIC), IP, T0, true, DEFAULT_FOLLOW_RULES);
    const tick = (tickDueNs: bigint | null, state: FollowState, nowNs: bigint, fired: boolean) =>
      scheduleTick(tickDueNs, validityDeadline(state, nowNs), nowNs, fired);
    const first = tick(null, following, T0, false);
    expect(first).toEqual({ tickDueNs: T0 + 5n * S, delayMs: 5_000 });
    expect(tick(first.tickDueNs, following, T0 + S, false).delayMs).toBeNull();
    expect(tick(first.tickDueNs, following, T0 + S + 1n, true).delayMs).toBe(4_000);
    // Active: no deadline; the timer set for T0 + 5 s stays outstanding.
    const active = playBegin(following, T0 + S).state;
    expect(tick(first.tickDueNs, active, T0 + S, false)).toEqual({ tickDueNs: T0 + 5n * S, delayMs: null });
    // E: a new deadline 2.25 s out replaces it...
    const ended = playEnd(active, T0 + 4n * S).state;
    expect(tick(first.tickDueNs, ended, T0 + 4n * S, false).delayMs).toBe(2_250);
    // ...unless T's is later: then the outstanding timer serves.
    const early = playEnd(active, T0 + 2n * S).state;
    expect(early.validUntilNs).toBe(T0 + 5n * S);
    expect(tick(first.tickDueNs, early, T0 + 2n * S, false).delayMs).toBeNull();
    // After it fired, the deadline no longer pending: nothing outstanding, nothing asked.
    expect(tick(first.tickDueNs, early, T0 + 5n * S, true)).toEqual({ tickDueNs: null, delayMs: null });
  });
});

describe("events of the other generation", () => {
  test("version 5 ignores follow and play events; version 9 ignores a timing peer list", () => {
    const v5 = new Scenario({}, T0);
    v5.dispatch({ kind: "follow", address: IP });
    v5.dispatch({ kind: "play-begin" });
    v5.dispatch({ kind: "tick" });
    expect(v5.state.records.size).toBe(0);
    expect(v5.followState).toBeNull();
    expect(v5.logs("warn")).toEqual([
      'ignored a "follow" event: not one of interface version 5',
      'ignored a "play-begin" event: not one of interface version 5',
    ]);
    const v9 = new FollowScenario({}, T0);
    v9.follow(IP);
    v9.peers("10.0.0.8");
    expect(v9.state.peers).toEqual([IP]);
    expect(v9.logs("warn")).toEqual(['ignored a "timing-peers" event: not one of interface version 9']);
  });
});
