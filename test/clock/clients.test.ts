// Several clients on one daemon (spec section 11, interfaces 8-10): each names its region in its
// control messages and follows its own clock with its own play state and filter; the clock
// table, and so the samples, are shared. Whole scenarios through the reducer.

import { describe, expect, test } from "bun:test";
import type { PublishedMaster, TrackerEffect } from "../../src/clock/effects.ts";
import { snapshot } from "../../src/clock/tracker.ts";
import { FollowScenario, MS, S, SimMaster, type PublishEffect } from "./helpers.ts";

const T0 = 1_000n * S;
const MAIN = "/nqptp";
const KITCHEN = "/nqptp-kitchen";
const LIVING = "10.0.0.5";
const KITCHEN_IP = "10.0.0.6";
const GM_A = 0x6666_66ff_fe66_6666n;
const GM_B = 0x7777_77ff_fe77_7777n;

function publishesTo(effects: TrackerEffect[], client: string): (PublishedMaster | null)[] {
  return effects.filter((e): e is PublishEffect => e.kind === "publish" && e.client === client).map((e) => e.master);
}

/** Two masters and a 10-version scenario; `rounds` Sync/Follow_Up pairs of both, 125 ms apart. */
function twoRooms() {
  const sc = new FollowScenario({ interfaceVersion: 10 }, T0);
  const a = new SimMaster(LIVING, 0xaaaa_aaff_feaa_aaaan, 500n * S, { grandmasterIdentity: GM_A });
  const b = new SimMaster(KITCHEN_IP, 0xbbbb_bbff_febb_bbbbn, 900n * S, { grandmasterIdentity: GM_B });
  const rounds = (n: number) => {
    for (let i = 0; i < n; i++) {
      sc.advance(125n * MS);
      a.round(sc);
      b.round(sc);
    }
  };
  return { sc, a, b, rounds };
}

describe("two clients, two clocks", () => {
  test("each region gets its own clock's record; T from one leaves the other exactly as it was", () => {
    const { sc, a, b, rounds } = twoRooms();
    sc.dispatch({ kind: "follow", client: MAIN, address: LIVING });
    sc.dispatch({ kind: "play-begin", client: MAIN });
    sc.dispatch({ kind: "follow", client: KITCHEN, address: KITCHEN_IP });
    sc.dispatch({ kind: "play-begin", client: KITCHEN });
    a.announce(sc);
    b.announce(sc);
    const from = sc.effects.length;
    rounds(16);
    const effects = sc.effects.slice(from);
    const main = publishesTo(effects, MAIN).filter((m) => m !== null);
    const kitchen = publishesTo(effects, KITCHEN).filter((m) => m !== null);
    expect(main.length).toBeGreaterThan(10);
    expect(kitchen.length).toBeGreaterThan(10);
    expect(new Set(main.map((m) => m!.clockId))).toEqual(new Set([GM_A]));
    expect(new Set(kitchen.map((m) => m!.clockId))).toEqual(new Set([GM_B]));
    expect(sc.state.peers).toEqual([LIVING, KITCHEN_IP]);

    const kitchenBefore = sc.state.clients!.get(KITCHEN)!;
    const kitchenRecord = sc.state.records.get(KITCHEN_IP);
    // The living room leaves: "/nqptp T". Its region zeros; nothing happens to the kitchen's.
    const stop = sc.advance(10n * MS).dispatch({ kind: "follow", client: MAIN, address: null });
    expect(publishesTo(stop, MAIN)).toEqual([null]);
    expect(publishesTo(stop, KITCHEN)).toEqual([]);
    expect(sc.state.clients!.get(KITCHEN)).toBe(kitchenBefore);
    // Only the clocks no other client follows were forgotten.
    expect([...sc.state.records.keys()]).toEqual([KITCHEN_IP]);
    expect(sc.state.records.get(KITCHEN_IP)).toBe(kitchenRecord);
    expect(sc.state.peers).toEqual([KITCHEN_IP]);
    // The kitchen goes on from where it was: same sequence, same mastership start time.
    const start = kitchenBefore.published!.masterStartTimeNs;
    const later = sc.effects.length;
    rounds(4);
    const next = publishesTo(sc.effects.slice(later), KITCHEN);
    expect(next.length).toBe(4);
    for (const m of next) expect(m!.masterStartTimeNs).toBe(start);
    expect(publishesTo(sc.effects.slice(later), MAIN)).toEqual([]);
  });

  test("E from one client lapses only its region, 2.25 s later; one tick timer serves both", () => {
    const { sc, a, b, rounds } = twoRooms();
    sc.dispatch({ kind: "follow", client: MAIN, address: LIVING });
    sc.dispatch({ kind: "follow", client: KITCHEN, address: KITCHEN_IP });
    sc.dispatch({ kind: "play-begin", client: MAIN });
    sc.dispatch({ kind: "play-begin", client: KITCHEN });
    a.announce(sc);
    b.announce(sc);
    rounds(2);
    sc.advance(10n * S); // past both 5 s windows of T: only play keeps them published
    rounds(1);
    const ended = sc.dispatch({ kind: "play-end", client: KITCHEN });
    expect(ended).toContainEqual({ kind: "schedule-tick", delayMs: 2_250 });
    rounds(2);
    sc.advance(2_250n * MS);
    const tick = sc.tick();
    expect(publishesTo(tick, KITCHEN)).toEqual([null]);
    expect(publishesTo(tick, MAIN)).toEqual([]);
    expect(sc.state.clients!.get(MAIN)!.published).not.toBeNull();
    expect(sc.logs("info")).toContain(`${KITCHEN}: play ended: clock valid for 2.25 s more`);
  });
});

describe("two clients, one clock", () => {
  test("they share its samples but not their filters: one client's restart never moves the other's offset", () => {
    const sc = new FollowScenario({ interfaceVersion: 10 }, T0);
    const a = new SimMaster(LIVING, 0xaaaa_aaff_feaa_aaaan, 500n * S, { grandmasterIdentity: GM_A });
    sc.dispatch({ kind: "follow", client: MAIN, address: LIVING });
    sc.dispatch({ kind: "play-begin", client: MAIN });
    a.announce(sc);
    for (let i = 0; i < 24; i++) a.round(sc.advance(125n * MS));
    // The kitchen joins the same clock 3 s later: its own sequence starts at its first sample.
    sc.dispatch({ kind: "follow", client: KITCHEN, address: LIVING });
    sc.dispatch({ kind: "play-begin", client: KITCHEN });
    expect(sc.state.peers).toEqual([LIVING]);
    const samplesBefore = sc.state.records.get(LIVING)!.samples.length;
    expect(samplesBefore).toBeGreaterThan(20); // the kitchen's T did not restart the shared record
    const mainStart = sc.state.clients!.get(MAIN)!.published!.masterStartTimeNs;
    const from = sc.effects.length;
    for (let i = 0; i < 8; i++) a.round(sc.advance(125n * MS), i === 3 ? 3n * MS : 0n); // one late sample
    const main = publishesTo(sc.effects.slice(from), MAIN);
    const kitchen = publishesTo(sc.effects.slice(from), KITCHEN);
    expect(main.length).toBe(8);
    expect(kitchen.length).toBe(8);
    for (const m of main) expect(m!.masterStartTimeNs).toBe(mainStart);
    const kitchenStart = kitchen[0]!.masterStartTimeNs;
    expect(kitchenStart).toBeGreaterThan(mainStart);
    // In the kitchen's first second a fall is ignored and a rise taken; the living room, long past
    // its first second, moves 1/256 of the fall: they differ exactly where their filters do.
    expect(kitchen[3]!.offsetNs).toBe(kitchen[2]!.offsetNs);
    expect(main[3]!.offsetNs).toBeLessThan(main[2]!.offsetNs);

    // The living room stops; the kitchen still follows the clock: its record and samples stay.
    const stop = sc.dispatch({ kind: "follow", client: MAIN, address: null });
    expect(publishesTo(stop, KITCHEN)).toEqual([]);
    expect(sc.state.records.get(LIVING)!.samples.length).toBeGreaterThanOrEqual(samplesBefore);
    expect(sc.state.peers).toEqual([LIVING]);
    const snap = snapshot(sc.state, sc.now);
    expect(snap.records.map((r) => [r.ip, r.followedBy])).toEqual([[LIVING, [KITCHEN]]]);
    expect(snap.clients.map((c) => [c.name, c.follow.ip, c.published === null])).toEqual([
      [MAIN, null, true],
      [KITCHEN, LIVING, false],
    ]);
  });
});

describe("bounded", () => {
  test("at most maxClients clients, the main one included; the next is refused with a warning", () => {
    const sc = new FollowScenario({ interfaceVersion: 10, maxClients: 3 }, T0);
    sc.dispatch({ kind: "follow", client: "/room-1", address: LIVING });
    sc.dispatch({ kind: "follow", client: "/room-2", address: LIVING });
    const refused = sc.dispatch({ kind: "follow", client: "/room-3", address: KITCHEN_IP });
    expect([...sc.state.clients!.keys()]).toEqual([MAIN, "/room-1", "/room-2"]);
    expect(refused).toContainEqual({
      kind: "log",
      level: "warn",
      message: "ignored a control message from client /room-3: 3 clients are served already",
    });
    expect(sc.state.records.has(KITCHEN_IP)).toBe(false);
    // Play commands of an unknown client when full are refused the same way.
    sc.dispatch({ kind: "play-begin", client: "/room-4" });
    expect(sc.state.clients!.has("/room-4")).toBe(false);
  });
});

describe("log lines of several clients", () => {
  test("each client has its own limit: one room's burst of play commands does not hide another room's lines", () => {
    const sc = new FollowScenario({ interfaceVersion: 10 }, T0);
    sc.dispatch({ kind: "follow", client: MAIN, address: LIVING });
    sc.dispatch({ kind: "follow", client: KITCHEN, address: KITCHEN_IP });
    // The living room toggles play ten times within a second: its own limit (5 per 10 s) holds it back …
    for (let i = 0; i < 10; i++) {
      sc.advance(50n * MS).dispatch({ kind: i % 2 === 0 ? "play-begin" : "play-end", client: MAIN });
    }
    const mainLines = sc.logs("info").filter((l) => l.startsWith(`${MAIN}: play`));
    expect(mainLines.length).toBe(5);
    // … and the kitchen's first play line still gets through.
    sc.advance(50n * MS).dispatch({ kind: "play-begin", client: KITCHEN });
    expect(sc.logs("info")).toContain(`${KITCHEN}: play began: clock active`);
  });
});
