// Fuzzing the pure core at a size that fits CI (bench/fuzz.ts runs the full million).
// Seeded: FUZZ_SEED=<n> replays a run; a failure prints the seed, the case and the bytes.
//
//   bun test test/fuzz                      # the fixed CI seeds
//   FUZZ_SEED=12345 bun test test/fuzz      # another seed (both runs use it)

import { describe, expect, test } from "bun:test";
import { INTERFACE_VERSIONS, traitsOf } from "../../src/rules/interface-version.ts";
import { createTracker, reduce, type TrackerState } from "../../src/clock/tracker.ts";
import { decode } from "../../src/ptp/decode.ts";
import { formatFailures, OUR_CLOCK_ID, PEER_IP, runControlFuzz, runPtpFuzz, S, settledHeap, shellStep, templates } from "./harness.ts";
import { createPrng } from "../support/prng.ts";
import { trackerOptions } from "../clock/helpers.ts";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x5eed_0005;
const PTP_CASES = 300_000;
const CONTROL_CASES_PER_VERSION = 20_000;
/** Heap growth allowed across a run, after a full collection (the tables are bounded). */
const HEAP_BOUND = 16 * 1024 * 1024;

const TRACKER_VERSIONS = INTERFACE_VERSIONS;

function report(what: string, seed: number, failures: Parameters<typeof formatFailures>[0]): string {
  return failures.length === 0 ? "" : `${what} failed (replay with FUZZ_SEED=${seed}):\n${formatFailures(failures)}`;
}

describe("fuzz", () => {
  test(`${PTP_CASES} random and mutated datagrams through decode and reduce (interfaces ${TRACKER_VERSIONS.join(", ")})`, () => {
    const heapBefore = settledHeap();
    const result = runPtpFuzz({ seed: SEED, count: PTP_CASES, versions: TRACKER_VERSIONS });
    const heapAfter = settledHeap();
    console.log(
      `ptp fuzz seed ${SEED}: ${result.cases} cases in ${(result.elapsedMs / 1000).toFixed(1)} s, ` +
        `${result.simulatedSeconds.toFixed(0)} s simulated; outcomes ${JSON.stringify(result.outcomes)}; ` +
        `heap ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB`,
    );
    expect(report("ptp fuzz", SEED, result.failures)).toBe("");

    // Every verdict happened, so the mutations reach every check of the decoder.
    for (const kind of [
      "ok:sync",
      "ok:follow-up",
      "ok:announce",
      "ok:other",
      "ok:delay-resp",
      "error:truncated",
      "error:unsupported-version",
      "error:length-mismatch",
      "error:invalid-field",
    ]) {
      expect(result.outcomes[kind] ?? 0).toBeGreaterThan(100);
    }
    for (const [version, t] of Object.entries(result.trackers)) {
      // The table filled (overflow exercised) and never went past its bound.
      expect({ version, maxRecords: t.maxRecords }).toEqual({ version, maxRecords: 32 });
      expect(t.overflowEpisodes).toBeGreaterThan(0);
      // The timing peer got through the noise and was published; nobody else ever was.
      expect(t.publishedPeer).toBeGreaterThan(100);
      expect(t.maxSamples).toBeLessThanOrEqual(47);
      expect(t.maxLogLimitKeys).toBeLessThan(64);
      // Log effects stay within the limiter's budget: 5 per key per 10 s of simulated time.
      expect(t.effects.log ?? 0).toBeLessThan((result.simulatedSeconds / 10 + 1) * 5 * 20);
    }
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
  });

  test(`${CONTROL_CASES_PER_VERSION} control messages per interface version through parseControlMessage`, () => {
    const heapBefore = settledHeap();
    const result = runControlFuzz({ seed: SEED + 1, countPerVersion: CONTROL_CASES_PER_VERSION, versions: INTERFACE_VERSIONS });
    const heapAfter = settledHeap();
    console.log(
      `control fuzz seed ${SEED + 1}: ${result.cases} messages in ${(result.elapsedMs / 1000).toFixed(1)} s, ` +
        `${result.trackerSteps} tracker steps; heap ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB`,
    );
    expect(report("control fuzz", SEED + 1, result.failures)).toBe("");
    expect(result.maxRecords).toBeLessThanOrEqual(32);
    // Clients by name (8-10): several were served, never more than the bound; hostile names none.
    expect(result.maxClients).toBeGreaterThan(1);
    expect(result.maxClients).toBeLessThanOrEqual(8);
    for (const version of [8, 9, 10]) expect(result.outcomes[`v${version} dispatch:ignore`] ?? 0).toBeGreaterThan(100);
    for (const version of INTERFACE_VERSIONS) {
      for (const kind of ["ok:timing-peers", "error:too-long", "error:empty", "error:not-text", "error:unknown-command", "error:wrong-form"]) {
        expect({ key: `v${version} ${kind}`, seen: (result.outcomes[`v${version} ${kind}`] ?? 0) > 0 }).toEqual({
          key: `v${version} ${kind}`,
          seen: true,
        });
      }
    }
    expect(heapAfter - heapBefore).toBeLessThan(HEAP_BOUND);
  });

  test("a rejected datagram is never applied: the state object stays the same reference", () => {
    const random = createPrng(SEED + 2);
    const t = templates(random);
    const state = createTracker(trackerOptions({ interfaceVersion: 5, ourClockIdentity: OUR_CLOCK_ID }));
    const valid = t.followUp(7n, 1, 1_000n, true);
    const broken = [valid.subarray(0, 33), valid.subarray(0, 43), Uint8Array.of(...valid.subarray(0, 1), 0x03, ...valid.subarray(2))];
    for (const bytes of broken) {
      expect(decode(bytes).ok).toBe(false);
      const step = shellStep(state, bytes, "10.0.1.1", 1_000_000n);
      expect(step.state).toBe(state);
      expect(step.effects).toEqual([]);
    }
  });

  test("the same seed gives the same run", () => {
    const a = runPtpFuzz({ seed: SEED, count: 5_000, versions: [5] });
    const b = runPtpFuzz({ seed: SEED, count: 5_000, versions: [5] });
    expect(b.outcomes).toEqual(a.outcomes);
    expect(b.trackers).toEqual(a.trackers);
  });
});

describe("a spoofer using the timing peer's address", () => {
  // Whoever can send from the followed clock's address with ever new clock identities restarts
  // its record each time. The waking Announces we send back must stay rate-limited all the same:
  // otherwise every spoofed Announce is answered with two (a reflector aimed at the real clock).
  for (const version of TRACKER_VERSIONS) {
    test(`interface ${version}: Announces with changing clock identities are not answered one for one`, () => {
      const random = createPrng(SEED + 3);
      const t = templates(random);
      const T0 = 1_700_000_000n * S;
      let state: TrackerState = createTracker(trackerOptions({ interfaceVersion: version, ourClockIdentity: OUR_CLOCK_ID }));
      if (traitsOf(version).followsOneClock) {
        state = reduce(state, { kind: "follow", address: PEER_IP }, T0).state;
        if (traitsOf(version).hasPlayCommands) state = reduce(state, { kind: "play-begin" }, T0).state;
      } else state = reduce(state, { kind: "timing-peers", addresses: [PEER_IP] }, T0).state;
      // 60 s at 100 Announces/s, each from a new (random) clock identity.
      const sentPerWindow = new Map<bigint, number>();
      for (let i = 0; i < 6000; i++) {
        const now = T0 + BigInt(i) * 10_000_000n;
        const step = shellStep(state, t.announce(BigInt(random.u32()) + 1n, i, false), PEER_IP, now);
        state = step.state;
        const window = (now - T0) / (10n * S);
        const sent = step.effects.filter((e) => e.kind === "send-announce").length;
        sentPerWindow.set(window, (sentPerWindow.get(window) ?? 0) + sent);
      }
      const worst = Math.max(...sentPerWindow.values());
      // The silent-clock rule allows one waking pair per 10 s; the first-Announce wake one more.
      expect(worst).toBeLessThanOrEqual(4);
    });
  }
});
