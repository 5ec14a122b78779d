// Properties of the reducer over long random scripts: it never changes its input, the table
// never overflows, only a qualified and valid timing peer is ever master, publishes never repeat.
// For versions 8–10: only the followed clock is ever published or woken, zeros whenever it is
// inactive and its validity has lapsed, and a pending deadline always has its tick.
// Plus a hostile LAN's flood (its cost is measured in bench/tracker.ts).

import { describe, expect, test } from "bun:test";
import type { PublishedMaster } from "../../src/clock/effects.ts";
import { isCandidate } from "../../src/clock/records.ts";
import { publishedRecord } from "../../src/clock/select.ts";
import type { InterfaceVersion } from "../../src/rules/interface-version.ts";
import { createTracker, reduce, type TrackerEffect, type TrackerEvent, type TrackerState } from "../../src/clock/tracker.ts";
import type { PtpMessage } from "../../src/ptp/types.ts";
import { createPrng } from "../support/prng.ts";
import { MS, S, US, announce, deepFreeze, deepRender, followUp, other, sync, trackerOptions } from "./helpers.ts";

const T0 = 1_000n * S;

/** A random but plausible event: 48 addresses, a few of them peers, messages of every kind. */
function randomScript(seed: number, count: number): { event: TrackerEvent; nowNs: bigint }[] {
  const random = createPrng(seed).float;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const addresses = Array.from({ length: 48 }, (_, i) => (i % 5 === 0 ? `fe80::${i.toString(16)}` : `10.0.${i >> 4}.${i & 15}`));
  const sequence = new Map<string, number>();
  const out: { event: TrackerEvent; nowNs: bigint }[] = [];
  let now = T0;
  for (let i = 0; i < count; i++) {
    // Mostly small steps; sometimes minutes pass (GC), sometimes time runs backwards a little.
    const r = random();
    now += r < 0.01 ? 130n * S : r < 0.02 ? -5n * MS : BigInt(Math.floor(random() * 200)) * MS;
    if (random() < 0.02) {
      const peers = Array.from({ length: Math.floor(random() * 5) }, () => pick(addresses));
      out.push({ event: { kind: "timing-peers", addresses: peers }, nowNs: now });
      continue;
    }
    const source = pick(addresses.slice(0, random() < 0.7 ? 8 : 48));
    // Mostly one identity per address; sometimes another.
    const id = BigInt(addresses.indexOf(source) + 1) + (random() < 0.02 ? 0x1000n : 0n);
    const seq = (sequence.get(source) ?? 0) + (random() < 0.9 ? 1 : 0);
    sequence.set(source, seq & 0xffff);
    const offset = BigInt(Math.floor((random() - 0.5) * 4e9));
    let message: PtpMessage;
    const kind = random();
    if (kind < 0.3) {
      message = announce(id, seq, {
        grandmasterPriority1: Math.floor(random() * 256),
        stepsRemoved: random() < 0.05 ? 255 : Math.floor(random() * 3),
        grandmasterIdentity: random() < 0.5 ? id : 0x77n,
      });
    } else if (kind < 0.6) {
      message = sync(id, seq & 0xffff, { twoStep: random() < 0.95, correctionField: BigInt(Math.floor(random() * 1e6)) });
    } else if (kind < 0.95) {
      message = followUp(id, seq & 0xffff, now + offset > 0n ? now + offset : 0n, { correctionField: BigInt(Math.floor(random() * 1e6)) - 500_000n });
    } else {
      message = other(id, seq);
    }
    const receivedAtNs = now - BigInt(Math.floor(random() * 100)) * US;
    out.push({ event: { kind: "ptp", source, message, receivedAtNs }, nowNs: now });
    // Often a Sync's own Follow_Up comes next, as from a real master (a Follow_Up whose Sync did
    // not come is a sample only when its record's Syncs have been quiet for 2 s).
    if (message.kind === "sync" && random() < 0.5) {
      const precise = now + offset > 0n ? now + offset : 0n;
      now += BigInt(Math.floor(random() * 2_000)) * US;
      out.push({ event: { kind: "ptp", source, message: followUp(id, seq & 0xffff, precise), receivedAtNs: now }, nowNs: now });
    }
  }
  return out;
}

describe("reducer properties", () => {
  test("reduce never changes its input state (deep-frozen, and compared)", () => {
    let state: TrackerState = createTracker(trackerOptions({ maxRecords: 12 }));
    for (const { event, nowNs } of randomScript(1, 3_000)) {
      const before = JSON.stringify(deepRender(state));
      deepFreeze(state);
      const step = reduce(state, event, nowNs);
      expect(JSON.stringify(deepRender(state))).toBe(before);
      state = step.state;
    }
  });

  for (const seed of [2, 3, 4, 5]) {
    test(`invariants over a random script (seed ${seed})`, () => {
      const maxRecords = seed === 2 ? 32 : 8;
      let state: TrackerState = createTracker(trackerOptions({ maxRecords }));
      let published: PublishedMaster | null = null;
      let publishes = 0;
      for (const { event, nowNs } of randomScript(seed, 20_000)) {
        const step = reduce(state, event, nowNs);
        state = step.state;
        expect(state.records.size).toBeLessThanOrEqual(maxRecords);
        for (const peer of state.peers) expect(state.records.get(peer)?.isTimingPeer).toBe(true);
        for (const record of state.records.values()) {
          expect(record.samples.length).toBeLessThanOrEqual(47);
          expect(record.isTimingPeer).toBe(state.peers.includes(record.ip));
        }
        const master = state.selection!.master;
        if (master !== null) {
          const record = state.records.get(master.ip);
          expect(record).toBeDefined();
          expect(isCandidate(record!)).toBe(true);
          expect(record!.clockIdentity).toBe(master.clockId);
        }
        for (const effect of step.effects) {
          if (effect.kind === "publish") {
            expect(effect.master).not.toEqual(published);
            published = effect.master;
            publishes++;
            if (effect.master !== null) {
              expect(state.peers).toContain(effect.master.ip);
              expect(effect.master.offsetNs).toBeGreaterThanOrEqual(0n);
              expect(effect.master.offsetNs).toBeLessThan(2n ** 64n);
            }
          }
          if (effect.kind === "send-announce") expect(state.peers).toContain(effect.to);
        }
        expect(publishedRecord(state.selection!.master)).toEqual(published);
      }
      // The script is not degenerate: masters came and went.
      expect(publishes).toBeGreaterThan(10);
    });
  }
});

describe("a hostile flood", () => {
  test("20k datagrams from 5000 addresses keep the table at its bound and the peer in it", () => {
    const random = createPrng(99).float;
    let state = createTracker(trackerOptions());
    state = reduce(state, { kind: "timing-peers", addresses: ["192.168.1.1"] }, T0).state;
    let now = T0;
    for (let i = 0; i < 20_000; i++) {
      now += 50n * US;
      const n = Math.floor(random() * 5000);
      const source = `10.${n >> 8}.${n & 255}.1`;
      const id = BigInt(n + 1);
      const k = i % 3;
      const message = k === 0 ? announce(id, i & 0xffff) : k === 1 ? sync(id, i & 0xffff) : followUp(id, i & 0xffff, now);
      state = reduce(state, { kind: "ptp", source, message, receivedAtNs: now }, now).state;
      expect(state.records.size).toBeLessThanOrEqual(32);
    }
    expect(state.records.size).toBe(32);
    expect(state.records.has("192.168.1.1")).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Versions 8–10

type ScriptItem = { event: TrackerEvent; nowNs: bigint };

/**
 * The same random traffic, with the control events of versions 8–10 in place of the peer
 * lists: "T ip" (one of the 8 busy addresses), "T", B, E, P, and now and then a peer list (the
 * wrong generation, to be ignored). Control events come about 8 times as often as peer lists did.
 */
function randomFollowScript(seed: number, count: number): ScriptItem[] {
  const random = createPrng(seed * 7919 + 17).float;
  const busy = Array.from({ length: 8 }, (_, i) => (i % 5 === 0 ? `fe80::${i.toString(16)}` : `10.0.${i >> 4}.${i & 15}`));
  const out: ScriptItem[] = [];
  for (const item of randomScript(seed, count)) {
    const n = random();
    if (item.event.kind === "timing-peers" || n < 0.15) {
      const r = random();
      let event: TrackerEvent;
      if (r < 0.3) event = { kind: "follow", address: random() < 0.85 ? busy[Math.floor(random() * busy.length)]! : null };
      else if (r < 0.55) event = { kind: "play-begin" };
      else if (r < 0.8) event = { kind: "play-end" };
      else if (r < 0.9) event = { kind: "pause" };
      else if (r < 0.95)
        event = { kind: "tick" }; // a stray tick must be harmless
      else event = { kind: "timing-peers", addresses: [busy[0]!] };
      out.push({ event, nowNs: item.nowNs });
      if (item.event.kind === "timing-peers") continue;
    }
    out.push(item);
  }
  return out;
}

/**
 * Runs a script as the shell would: one tick timer, replaced by each schedule-tick, firing a
 * "tick" at its time (sometimes 1 ms early) before the next scripted event that comes after it.
 * With `freeze`, each input state is deep-frozen and checked unchanged after the step.
 */
function runWithTimer(
  state: TrackerState,
  script: readonly ScriptItem[],
  seed: number,
  onStep: (event: TrackerEvent, nowNs: bigint, after: TrackerState, effects: TrackerEffect[]) => void,
  freeze = false,
): TrackerState {
  const random = createPrng(seed).float;
  let timerAt: bigint | null = null;
  const step = (event: TrackerEvent, nowNs: bigint) => {
    const rendered = freeze ? JSON.stringify(deepRender(state)) : "";
    if (freeze) deepFreeze(state);
    const result = reduce(state, event, nowNs);
    if (freeze) expect(JSON.stringify(deepRender(state))).toBe(rendered);
    onStep(event, nowNs, result.state, result.effects);
    state = result.state;
    for (const effect of result.effects) {
      if (effect.kind === "schedule-tick") timerAt = nowNs + BigInt(effect.delayMs) * MS - (random() < 0.2 ? MS : 0n);
    }
  };
  for (const { event, nowNs } of script) {
    while (timerAt !== null && timerAt <= nowNs) {
      const at: bigint = timerAt;
      timerAt = null;
      step({ kind: "tick" }, at);
    }
    step(event, nowNs);
  }
  return state;
}

describe("reducer properties, versions 8–10", () => {
  test("reduce never changes its input state (deep-frozen, and compared)", () => {
    let steps = 0;
    const initial = createTracker(trackerOptions({ maxRecords: 12, interfaceVersion: 9 }));
    runWithTimer(initial, randomFollowScript(1, 3_000), 1, () => steps++, true);
    expect(steps).toBeGreaterThan(3_000);
  });

  const cases: [InterfaceVersion, number, number][] = [
    [8, 2, 32],
    [9, 3, 8],
    [9, 4, 32],
    [10, 5, 8],
  ];
  for (const [version, seed, maxRecords] of cases) {
    test(`invariants over a random script (version ${version}, seed ${seed})`, () => {
      let published: PublishedMaster | null = null;
      const counts = { publishes: 0, zeros: 0, ticks: 0, restarts: 0, wakes: 0 };
      // An independent model of spec section 6's play state, from the events alone: what is
      // followed, whether play is on, and until when an inactive clock stays valid.
      const model = { ip: null as string | null, active: false, validUntilNs: null as bigint | null };
      const later = (a: bigint | null, b: bigint) => (a !== null && a > b ? a : b);
      // Every grandmaster each address has announced (the published id must be one of them).
      const announced = new Map<string, Set<bigint>>();
      // Every local time a Sync or Follow_Up from each address was received at.
      const received = new Map<string, Set<bigint>>();
      const initial = createTracker(trackerOptions({ maxRecords, interfaceVersion: version }));
      runWithTimer(initial, randomFollowScript(seed, 20_000), seed, (event, nowNs, state, effects) => {
        const lapsedBefore = !model.active && (model.validUntilNs === null || nowNs >= model.validUntilNs);
        switch (event.kind) {
          case "follow":
            if (event.address === null) Object.assign(model, { ip: null, active: false, validUntilNs: null });
            else Object.assign(model, { ip: event.address, validUntilNs: later(model.validUntilNs, nowNs + 5n * S) });
            if (version === 8) model.active = model.ip !== null;
            break;
          case "play-begin":
            if (version !== 8) {
              if (!model.active && lapsedBefore) counts.restarts++;
              model.active = true;
            }
            break;
          case "play-end":
            if (version !== 8 && model.active) Object.assign(model, { active: false, validUntilNs: later(model.validUntilNs, nowNs + 2_250n * MS) });
            break;
          case "ptp":
            if (event.message.kind === "sync" || event.message.kind === "follow-up") {
              const set = received.get(event.source) ?? new Set<bigint>();
              set.add(event.receivedAtNs);
              received.set(event.source, set);
            }
            if (event.message.kind === "announce") {
              const set = announced.get(event.source) ?? new Set<bigint>();
              set.add(event.message.grandmasterIdentity);
              announced.set(event.source, set);
            }
            break;
          default:
            break;
        }
        const publishable = model.ip !== null && (model.active || (model.validUntilNs !== null && nowNs < model.validUntilNs));
        const client = state.clients!.get("/nqptp")!;
        expect(state.records.size).toBeLessThanOrEqual(maxRecords);
        expect(state.selection).toBeNull();
        expect(client.follow.ip).toBe(model.ip);
        expect(client.follow.active).toBe(model.active);
        // The followed address is the only timing peer, and is in the table.
        expect(state.peers).toEqual(model.ip === null ? [] : [model.ip]);
        for (const record of state.records.values()) expect(record.isTimingPeer).toBe(record.ip === model.ip);
        if (model.ip !== null) expect(state.records.has(model.ip)).toBe(true);
        for (const effect of effects) {
          if (effect.kind === "publish") {
            expect(effect.client).toBe("/nqptp");
            expect(effect.master).not.toEqual(published);
            published = effect.master;
            counts.publishes++;
            if (effect.master === null) counts.zeros++;
            else {
              // Never a clock that is not followed, and only while it is active or valid.
              expect(effect.master.ip).toBe(model.ip!);
              expect(publishable).toBe(true);
              expect(announced.get(model.ip!)?.has(effect.master.clockId)).toBe(true);
              // Dated at the receipt of one of the followed clock's Sync or Follow_Up messages.
              expect(received.get(model.ip!)?.has(effect.master.localTimeNs)).toBe(true);
              expect(effect.master.masterStartTimeNs).toBeLessThanOrEqual(effect.master.localTimeNs);
              expect(effect.master.offsetNs).toBeGreaterThanOrEqual(0n);
              expect(effect.master.offsetNs).toBeLessThan(2n ** 64n);
            }
          }
          if (effect.kind === "send-announce") {
            expect(effect.to).toBe(model.ip!);
            counts.wakes++;
          }
          if (effect.kind === "schedule-tick") {
            expect(effect.delayMs).toBeGreaterThanOrEqual(1);
            counts.ticks++;
          }
        }
        // Zeros whenever inactive with validity lapsed (or not following).
        if (!publishable) expect(client.published).toBeNull();
        expect(client.published).toEqual(published);
        // A pending validity deadline always has a timer set for it.
        if (model.ip !== null && !model.active && model.validUntilNs !== null && nowNs < model.validUntilNs) {
          expect(state.tickDueNs).toBe(model.validUntilNs);
        }
      });
      // The script is not degenerate.
      expect(counts.publishes).toBeGreaterThan(100);
      expect(counts.zeros).toBeGreaterThan(10);
      expect(counts.wakes).toBeGreaterThan(10);
      if (version !== 8) {
        expect(counts.ticks).toBeGreaterThan(10);
        expect(counts.restarts).toBeGreaterThan(5);
      }
    });
  }
});
