// --interface: what to open, close or wait for after each look at the kernel's interface list,
// what is said about it, and how the state reads in status (src/net/interface-watch.ts, pure).

import { describe, expect, test } from "bun:test";
import {
  describeInterfaces,
  interfaceStatuses,
  noticeFor,
  slotAfter,
  watchInterfaces,
  type InterfaceChange,
  type InterfaceSlot,
  type ListedInterface,
} from "../../src/net/interface-watch.ts";

const eth0 = (index = 2): ListedInterface => ({ name: "eth0", index });
const wlan0 = (index = 3): ListedInterface => ({ name: "wlan0", index });
const slots = (entries: [string, InterfaceSlot][]) => new Map(entries);

describe("watchInterfaces", () => {
  const rows: [string, string[], Map<string, InterfaceSlot>, ListedInterface[], InterfaceChange[]][] = [
    [
      "first look, both there: open both, in the order named",
      ["wlan0", "eth0"],
      slots([]),
      [eth0(), wlan0()],
      [
        { kind: "open", name: "wlan0", index: 3, why: "start" },
        { kind: "open", name: "eth0", index: 2, why: "start" },
      ],
    ],
    [
      "first look, one missing: wait for it",
      ["eth0", "wlan0"],
      slots([]),
      [eth0(), { name: "docker0", index: 9 }],
      [
        { kind: "open", name: "eth0", index: 2, why: "start" },
        { kind: "wait", name: "wlan0", why: "start" },
      ],
    ],
    ["still missing: nothing", ["wlan0"], slots([["wlan0", { state: "waiting" }]]), [eth0()], []],
    [
      "it appeared: open it",
      ["wlan0"],
      slots([["wlan0", { state: "waiting" }]]),
      [eth0(), wlan0()],
      [{ kind: "open", name: "wlan0", index: 3, why: "appeared" }],
    ],
    ["served on the same index: nothing", ["eth0"], slots([["eth0", { state: "served", index: 2 }]]), [eth0(2)], []],
    [
      "served, now gone: close it and wait",
      ["eth0"],
      slots([["eth0", { state: "served", index: 2 }]]),
      [wlan0()],
      [
        { kind: "close", name: "eth0", index: 2, why: "gone" },
        { kind: "wait", name: "eth0", why: "gone" },
      ],
    ],
    [
      "served, now listed with another index (re-created): close the old sockets, open new ones",
      ["eth0"],
      slots([["eth0", { state: "served", index: 2 }]]),
      [eth0(7)],
      [
        { kind: "close", name: "eth0", index: 2, why: "re-created" },
        { kind: "open", name: "eth0", index: 7, why: "re-created" },
      ],
    ],
    [
      "failed on the same index: try again",
      ["eth0"],
      slots([["eth0", { state: "failed", index: 2, problem: "in use" }]]),
      [eth0(2)],
      [{ kind: "open", name: "eth0", index: 2, why: "retry" }],
    ],
    [
      "failed, now re-created: open (nothing was open to close)",
      ["eth0"],
      slots([["eth0", { state: "failed", index: 2, problem: "in use" }]]),
      [eth0(8)],
      [{ kind: "open", name: "eth0", index: 8, why: "re-created" }],
    ],
    [
      "failed, now gone: wait (nothing to close)",
      ["eth0"],
      slots([["eth0", { state: "failed", index: 2, problem: "in use" }]]),
      [],
      [{ kind: "wait", name: "eth0", why: "gone" }],
    ],
    [
      "interfaces not named are never opened",
      ["eth0"],
      slots([["eth0", { state: "served", index: 2 }]]),
      [eth0(), wlan0(), { name: "docker0", index: 9 }],
      [],
    ],
  ];
  test.each(rows)("%s", (_name, named, before, listed, changes) => {
    expect(watchInterfaces(named, before, listed)).toEqual(changes);
  });
});

describe("noticeFor and slotAfter", () => {
  const open = (why: "start" | "appeared" | "re-created" | "retry"): InterfaceChange => ({ kind: "open", name: "wlan0", index: 3, why });

  test("waiting is said once, when the waiting begins", () => {
    expect(noticeFor({ kind: "wait", name: "wlan0", why: "start" }, null, undefined, 2000)).toEqual({
      level: "warn",
      text: "interface wlan0 does not exist: waiting for it (PTP will be heard there once it appears)",
    });
    expect(noticeFor({ kind: "wait", name: "wlan0", why: "gone" }, null, { state: "served", index: 3 }, 2000)).toEqual({
      level: "warn",
      text: "interface wlan0 went away: PTP is not heard there until it comes back",
    });
    expect(noticeFor({ kind: "close", name: "wlan0", index: 3, why: "gone" }, null, { state: "served", index: 3 }, 2000)).toBeNull();
  });

  test("an open that works: silent at start-up (the start-up line names the interfaces), said afterwards", () => {
    expect(noticeFor(open("start"), null, undefined, 2000)).toBeNull();
    expect(noticeFor(open("appeared"), null, { state: "waiting" }, 2000)).toEqual({
      level: "info",
      text: "interface wlan0 appeared: PTP is heard there now",
    });
    expect(noticeFor(open("re-created"), null, { state: "served", index: 1 }, 2000)).toEqual({
      level: "info",
      text: "interface wlan0 was re-created: PTP is heard there again",
    });
    expect(noticeFor(open("retry"), null, { state: "failed", index: 3, problem: "x" }, 2000)).toEqual({
      level: "info",
      text: "interface wlan0: PTP is heard there now",
    });
  });

  test("a failure is said once per reason, with how often it is tried again", () => {
    const failed = { level: "warn" as const, text: "cannot hear PTP on interface wlan0: port in use; trying again every 2 s" };
    expect(noticeFor(open("appeared"), "port in use", { state: "waiting" }, 2000)).toEqual(failed);
    expect(noticeFor(open("retry"), "port in use", { state: "failed", index: 3, problem: "port in use" }, 2000)).toBeNull();
    expect(noticeFor(open("retry"), "permission denied", { state: "failed", index: 3, problem: "port in use" }, 2000)?.text).toBe(
      "cannot hear PTP on interface wlan0: permission denied; trying again every 2 s",
    );
  });

  test("the slot after each change", () => {
    expect(slotAfter(open("appeared"), null)).toEqual({ state: "served", index: 3 });
    expect(slotAfter(open("appeared"), "in use")).toEqual({ state: "failed", index: 3, problem: "in use" });
    expect(slotAfter({ kind: "close", name: "wlan0", index: 3, why: "gone" }, null)).toEqual({ state: "waiting" });
    expect(slotAfter({ kind: "wait", name: "wlan0", why: "start" }, null)).toEqual({ state: "waiting" });
  });
});

describe("statuses and their summary", () => {
  const state = slots([
    ["eth0", { state: "served", index: 2 }],
    ["eth1", { state: "failed", index: 4, problem: "the port is already in use" }],
  ]);

  test("every named interface in the order named; one never looked at is waiting", () => {
    expect(interfaceStatuses(["eth0", "wlan0", "eth1"], state)).toEqual([
      { name: "eth0", state: "served", problem: null },
      { name: "wlan0", state: "waiting", problem: null },
      { name: "eth1", state: "failed", problem: "the port is already in use" },
    ]);
  });

  test.each([
    [["eth0"], "interface eth0"],
    [["eth0", "eth0b"], "interfaces eth0, eth0b"],
    [["eth0", "wlan0"], "interface eth0 (waiting for wlan0)"],
    [["wlan0", "eth1"], "no interface yet (waiting for wlan0; cannot use eth1)"],
  ])("%j reads %j", (named, text) => {
    const all = new Map(state).set("eth0b", { state: "served", index: 5 });
    expect(describeInterfaces(interfaceStatuses(named, all))).toBe(text);
  });
});
