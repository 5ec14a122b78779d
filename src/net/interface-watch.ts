// --interface: which named interfaces to open, close or wait for, decided from what the kernel
// lists now (if_nameindex) and where each one stood at the last look. Pure: the shell
// (interface-bound-sockets.ts) looks every couple of seconds, carries the changes out and says
// what noticeFor() says.
//
// An interface is known by its index: the kernel gives a re-created interface (a USB adapter
// plugged in again, a VPN's tun reconnecting, a veth made anew) a new index under the same name,
// and sockets bound to the old one never hear anything again. An interface that is only down,
// or has no address yet, keeps its index and its sockets: they hear it as soon as it is up.

import type { PtpInterfaceStatus } from "../control/status.ts";

/** An interface the kernel lists now. */
export interface ListedInterface {
  name: string;
  index: number;
}

/** Where a named interface stood at the last look. */
export type InterfaceSlot =
  /** The kernel did not list it. */
  | { state: "waiting" }
  /** Its sockets are open, bound to this index. */
  | { state: "served"; index: number }
  /** Listed with this index, but its sockets could not be opened (tried again at each look). */
  | { state: "failed"; index: number; problem: string };

/** What one look asks for, per named interface, in this order. */
export type InterfaceChange =
  /** Close the sockets bound to `index` (it is gone, or now names another interface). */
  | { kind: "close"; name: string; index: number; why: "gone" | "re-created" }
  /** Open sockets on it. "start": at the first look, where a failure stops the daemon. */
  | { kind: "open"; name: string; index: number; why: "start" | "appeared" | "re-created" | "retry" }
  /** Not listed: wait for it. "start": at the first look; "gone": it was there before. */
  | { kind: "wait"; name: string; why: "start" | "gone" };

/**
 * The changes for each of `named`, from `slots` (absent: the first look) and the kernel's list
 * now. Nothing for an interface that is still served on the same index or still missing.
 */
export function watchInterfaces(
  named: readonly string[],
  slots: ReadonlyMap<string, InterfaceSlot>,
  listed: readonly ListedInterface[],
): InterfaceChange[] {
  const changes: InterfaceChange[] = [];
  for (const name of named) {
    const index = listed.find((i) => i.name === name)?.index;
    const slot = slots.get(name);
    if (slot === undefined) {
      changes.push(index === undefined ? { kind: "wait", name, why: "start" } : { kind: "open", name, index, why: "start" });
    } else if (slot.state === "waiting") {
      if (index !== undefined) changes.push({ kind: "open", name, index, why: "appeared" });
    } else if (index === undefined) {
      if (slot.state === "served") changes.push({ kind: "close", name, index: slot.index, why: "gone" });
      changes.push({ kind: "wait", name, why: "gone" });
    } else if (index !== slot.index) {
      if (slot.state === "served") changes.push({ kind: "close", name, index: slot.index, why: "re-created" });
      changes.push({ kind: "open", name, index, why: "re-created" });
    } else if (slot.state === "failed") {
      changes.push({ kind: "open", name, index, why: "retry" });
    }
  }
  return changes;
}

/** How an open went: null when it worked, else why not. */
export type OpenProblem = string | null;

export interface Notice {
  level: "info" | "warn";
  text: string;
}

/**
 * The log line for a change (null: none). `problem` is how an open went; `before` the slot before
 * the change, so that a failure that repeats at every look is told once, and again only when its
 * reason changes. An open at start-up that works needs no line (the start-up line names the interfaces).
 */
export function noticeFor(change: InterfaceChange, problem: OpenProblem, before: InterfaceSlot | undefined, retryMs: number): Notice | null {
  const name = change.name;
  if (change.kind === "close") return null;
  if (change.kind === "wait") {
    return change.why === "start"
      ? { level: "warn", text: `interface ${name} does not exist: waiting for it (PTP will be heard there once it appears)` }
      : { level: "warn", text: `interface ${name} went away: PTP is not heard there until it comes back` };
  }
  if (problem !== null) {
    if (before?.state === "failed" && before.problem === problem) return null;
    return { level: "warn", text: `cannot hear PTP on interface ${name}: ${problem}; trying again every ${retryMs / 1000} s` };
  }
  switch (change.why) {
    case "start":
      return null;
    case "appeared":
      return { level: "info", text: `interface ${name} appeared: PTP is heard there now` };
    case "re-created":
      return { level: "info", text: `interface ${name} was re-created: PTP is heard there again` };
    case "retry":
      return { level: "info", text: `interface ${name}: PTP is heard there now` };
  }
}

/** The slot after a change was carried out (`problem`: how an open went). */
export function slotAfter(change: InterfaceChange, problem: OpenProblem): InterfaceSlot {
  switch (change.kind) {
    case "close":
    case "wait":
      return { state: "waiting" };
    case "open":
      return problem === null ? { state: "served", index: change.index } : { state: "failed", index: change.index, problem };
  }
}

/** Each named interface's state, in the order named (for status). */
export function interfaceStatuses(named: readonly string[], slots: ReadonlyMap<string, InterfaceSlot>): PtpInterfaceStatus[] {
  return named.map((name) => {
    const slot = slots.get(name) ?? { state: "waiting" };
    return { name, state: slot.state, problem: slot.state === "failed" ? slot.problem : null };
  });
}

/**
 * Where PTP is heard, in a few words, for the start-up line and systemd's STATUS: "interface
 * eth0", "interfaces eth0, wlan0", "interface eth0 (waiting for wlan0)", "no interface yet
 * (waiting for wlan0; cannot use eth1)".
 */
export function describeInterfaces(statuses: readonly PtpInterfaceStatus[]): string {
  const of = (state: PtpInterfaceStatus["state"]) => statuses.filter((s) => s.state === state).map((s) => s.name);
  const served = of("served");
  const notes = [
    ...(of("waiting").length > 0 ? [`waiting for ${of("waiting").join(", ")}`] : []),
    ...(of("failed").length > 0 ? [`cannot use ${of("failed").join(", ")}`] : []),
  ];
  const heard = served.length === 0 ? "no interface yet" : `interface${served.length > 1 ? "s" : ""} ${served.join(", ")}`;
  return notes.length > 0 ? `${heard} (${notes.join("; ")})` : heard;
}
