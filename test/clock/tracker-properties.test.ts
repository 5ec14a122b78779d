// Properties of the reducer over long random scripts: it never changes its input, the table
// never overflows, only a qualified and valid timing peer is ever master, publishes never repeat.
// Plus a hostile LAN's flood (its cost is measured in bench/tracker.ts).

import { describe, expect, test } from "bun:test";
import type { PublishedMaster } from "../../src/clock/effects.ts";
import { isCandidate } from "../../src/clock/records.ts";
import { createTracker, reduce, type TrackerEvent, type TrackerState } from "../../src/clock/tracker.ts";
import type { PtpMessage } from "../../src/ptp/types.ts";
import { MS, OUR_CLOCK_ID, S, US, announce, deepFreeze, deepRender, followUp, other, prng, sync } from "./helpers.ts";

const T0 = 1_000n * S;

/** A random but plausible event: 48 addresses, a few of them peers, messages of every kind. */
function randomScript(seed: number, count: number): { event: TrackerEvent; nowNs: bigint }[] {
  const random = prng(seed);
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
  }
  return out;
}

describe("reducer properties", () => {
  test("reduce never changes its input state (deep-frozen, and compared)", () => {
    let state: TrackerState = createTracker({ ourClockIdentity: OUR_CLOCK_ID, maxRecords: 12 });
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
      let state: TrackerState = createTracker({ ourClockIdentity: OUR_CLOCK_ID, maxRecords });
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
        if (state.master !== null) {
          const record = state.records.get(state.master.ip);
          expect(record).toBeDefined();
          expect(isCandidate(record!)).toBe(true);
          expect(record!.clockIdentity).toBe(state.master.clockId);
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
        expect(state.published).toEqual(published);
      }
      // The script is not degenerate: masters came and went.
      expect(publishes).toBeGreaterThan(10);
    });
  }
});

describe("a hostile flood", () => {
  test("20k datagrams from 5000 addresses keep the table at its bound and the peer in it", () => {
    const random = prng(99);
    let state = createTracker({ ourClockIdentity: OUR_CLOCK_ID });
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
