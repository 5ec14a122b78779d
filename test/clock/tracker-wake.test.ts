// Waking a silent clock (spec section 7).

import { describe, expect, test } from "bun:test";
import { WAKE_IDLE, wakeAnnounces, wakeOnAnnounce } from "../../src/clock/wake.ts";
import { announceDataOf } from "../../src/clock/announce.ts";
import { MS, OUR_CLOCK_ID, S, Scenario, announce, followUp } from "./helpers.ts";

const T0 = 1_000n * S;
const SILENT = 0x5151_51ff_fe51_5151n;

function silentAnnounce(seq: number, priority1 = 128) {
  return announce(SILENT, seq, {
    grandmasterPriority1: priority1,
    grandmasterPriority2: 77,
    grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0x2f, offsetScaledLogVariance: 0x1234 },
    timeSource: 0x90,
    currentUtcOffset: 37,
    header: { domainNumber: 3, logMessageInterval: -2, flagField: 0x0608, transportSpecific: 1 },
  });
}

describe("waking a silent timing peer", () => {
  test("after 3 Announces with no Follow_Up: better now, worse 150 ms later", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.7");
    sc.ptp("10.0.0.7", silentAnnounce(0));
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(1));
    expect(sc.sends()).toEqual([]);
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(2));
    const common = {
      transportSpecific: 1,
      clockIdentity: OUR_CLOCK_ID,
      sourcePortNumber: 1,
      domainNumber: 3,
      logMessageInterval: -2,
      flagField: 0x0408, // theirs without twoStepFlag
      originTimestamp: { seconds: 0n, nanoseconds: 0 },
      currentUtcOffset: 37,
      grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0x2f, offsetScaledLogVariance: 0x1234 },
      grandmasterPriority2: 77,
      grandmasterIdentity: OUR_CLOCK_ID,
      stepsRemoved: 0,
      timeSource: 0x90,
    };
    expect(sc.sends()).toEqual([
      { kind: "send-announce", to: "10.0.0.7", delayMs: 0, announce: { ...common, sequenceId: 0, grandmasterPriority1: 127 } },
      { kind: "send-announce", to: "10.0.0.7", delayMs: 150, announce: { ...common, sequenceId: 1, grandmasterPriority1: 129 } },
    ]);
    expect(sc.logs("info")).toContain("waking silent clock 0x515151fffe515151 at 10.0.0.7");
  });

  test("re-woken at most once per 10 s while silent; our sequenceId goes on", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.7");
    const wakesAt: bigint[] = [];
    for (let i = 0; i < 25; i++) {
      sc.at(T0 + BigInt(i) * S).ptp("10.0.0.7", silentAnnounce(i));
      if (sc.last.some((e) => e.kind === "send-announce")) wakesAt.push(BigInt(i));
    }
    expect(wakesAt).toEqual([2n, 12n, 22n]);
    expect(sc.sends().map((s) => s.announce.sequenceId)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("a Follow_Up resets the count", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.7");
    sc.ptp("10.0.0.7", silentAnnounce(0));
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(1));
    sc.advance(MS).ptp("10.0.0.7", followUp(SILENT, 0, T0));
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(2));
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(3));
    expect(sc.sends()).toEqual([]);
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(4));
    expect(sc.sends().length).toBe(2);
  });

  test("a non-peer is never woken, however long it announces", () => {
    const sc = new Scenario({}, T0);
    sc.peers("10.0.0.8");
    for (let i = 0; i < 30; i++) sc.at(T0 + BigInt(i) * S).ptp("10.0.0.7", silentAnnounce(i));
    expect(sc.sends()).toEqual([]);
    // Named a peer later, its next Announce wakes it.
    sc.peers("10.0.0.7");
    sc.advance(S).ptp("10.0.0.7", silentAnnounce(30));
    expect(sc.sends().map((s) => s.to)).toEqual(["10.0.0.7", "10.0.0.7"]);
  });

  test("priority1 is clamped to 0 and 255", () => {
    const low = wakeAnnounces(announceDataOf(silentAnnounce(0, 0)), OUR_CLOCK_ID, 65535);
    expect(low.map((a) => a.grandmasterPriority1)).toEqual([0, 1]);
    expect(low.map((a) => a.sequenceId)).toEqual([65535, 0]);
    const high = wakeAnnounces(announceDataOf(silentAnnounce(0, 255)), OUR_CLOCK_ID, 0);
    expect(high.map((a) => a.grandmasterPriority1)).toEqual([254, 255]);
  });

  test("a local clock stepped backwards does not silence waking", () => {
    let w = WAKE_IDLE;
    for (const t of [0n, S, 2n * S]) w = wakeOnAnnounce(w, true, T0 + t).state;
    expect(w.lastWakeNs).toBe(T0 + 2n * S);
    expect(wakeOnAnnounce(w, true, T0 + 5n * S).wake).toBe(false);
    expect(wakeOnAnnounce(w, true, T0 - 3_600n * S).wake).toBe(true);
  });
});
