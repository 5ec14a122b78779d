// The local clocks the shm fields are expressed in, read with clock_gettime(2).
// Not Bun.nanoseconds() or performance.now(): those follow CLOCK_MONOTONIC, which NTP slews
// (by ~150 ppm on some machines), while Shairport Sync reads CLOCK_MONOTONIC_RAW.

import type { LocalClock } from "../rules/interface-version.ts";
import { clockGettimeNs } from "../sys/posix.ts";
import { CLOCK_MONOTONIC_RAW, CLOCK_REALTIME } from "../sys/linux.ts";

export type { LocalClock } from "../rules/interface-version.ts";

/** CLOCK_REALTIME in ns since the Unix epoch. */
export function realtimeNs(): bigint {
  return clockGettimeNs(CLOCK_REALTIME);
}

/** CLOCK_MONOTONIC_RAW in ns (since boot, not slewed by NTP). */
export function monotonicRawNs(): bigint {
  return clockGettimeNs(CLOCK_MONOTONIC_RAW);
}

export function readClock(clock: LocalClock): bigint {
  return clockGettimeNs(clock === "realtime" ? CLOCK_REALTIME : CLOCK_MONOTONIC_RAW);
}
