// The cost of the libc calls on the publishing path: the full memory barrier the version 10
// region needs twice per update (mfence / dmb ish, called through bun:ffi), and clock_gettime
// of each local clock (through clockGettimeNs in src/sys/posix.ts). Best of 7 rounds. Then how
// far realtimeNs() (src/time/clocks.ts) lies from the Date.now() just before it: the same clock,
// so within Date.now()'s millisecond (test/sys/libc.test.ts checks it lies between two of them;
// Date.now() comes from a float of seconds and can be a fraction of a microsecond ahead).
//
//   node_modules/.bin/bun bench/libc.ts [calls per round = 1000000]
//   → libc: fullMemoryBarrier 17.2 ns/call, clock_gettime CLOCK_REALTIME 68.7 ns, CLOCK_MONOTONIC_RAW 66.9 ns (best of 7 × 1000000)
//     libc: realtimeNs() − the Date.now() before it: min -0.165 µs, median 0.502 ms, max 1.000 ms (100000 pairs)

import { fullMemoryBarrier, prepareFullMemoryBarrier } from "../src/sys/libc.ts";
import { CLOCK_MONOTONIC_RAW, CLOCK_REALTIME } from "../src/sys/linux.ts";
import { clockGettimeNs } from "../src/sys/posix.ts";
import { realtimeNs } from "../src/time/clocks.ts";

const CALLS = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = 7; // the machines are shared and noisy: the best round is the least disturbed

function nsPerCall(call: () => unknown): number {
  call(); // warm up (and build the barrier page)
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    const start = Bun.nanoseconds();
    for (let i = 0; i < CALLS; i++) call();
    best = Math.min(best, (Bun.nanoseconds() - start) / CALLS);
  }
  return best;
}

prepareFullMemoryBarrier();
const barrier = nsPerCall(fullMemoryBarrier);
const realtime = nsPerCall(() => clockGettimeNs(CLOCK_REALTIME));
const raw = nsPerCall(() => clockGettimeNs(CLOCK_MONOTONIC_RAW));
console.log(
  `libc: fullMemoryBarrier ${barrier.toFixed(1)} ns/call, clock_gettime CLOCK_REALTIME ${realtime.toFixed(1)} ns, ` +
    `CLOCK_MONOTONIC_RAW ${raw.toFixed(1)} ns (best of ${ROUNDS} × ${CALLS})`,
);

// realtimeNs() − Date.now() read just before it, over 100,000 pairs.
const gaps: number[] = [];
for (let i = 0; i < 100_000; i++) {
  const js = Date.now();
  gaps.push(Number(realtimeNs() - BigInt(js) * 1_000_000n) / 1e6);
}
gaps.sort((a, b) => a - b);
console.log(
  `libc: realtimeNs() − the Date.now() before it: min ${(gaps[0]! * 1e3).toFixed(3)} µs, median ${gaps[gaps.length >> 1]!.toFixed(3)} ms, ` +
    `max ${gaps.at(-1)!.toFixed(3)} ms (${gaps.length} pairs)`,
);
