// The cost of the libc calls on the publishing path: the full memory barrier the version 10
// region needs twice per update (mfence / dmb ish, called through bun:ffi), and clock_gettime
// of each local clock (through clockGettimeNs in src/sys/posix.ts). Best of 7 rounds.
//
//   node_modules/.bin/bun bench/libc.ts [calls per round = 1000000]
//   → libc: fullMemoryBarrier 17.2 ns/call, clock_gettime CLOCK_REALTIME 68.7 ns, CLOCK_MONOTONIC_RAW 66.9 ns (best of 7 × 1000000)

import { fullMemoryBarrier, prepareFullMemoryBarrier } from "../src/sys/libc.ts";
import { CLOCK_MONOTONIC_RAW, CLOCK_REALTIME } from "../src/sys/linux.ts";
import { clockGettimeNs } from "../src/sys/posix.ts";

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
