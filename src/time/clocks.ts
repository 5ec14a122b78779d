// The local clocks the shm fields are expressed in, read with clock_gettime(2).
// Not Bun.nanoseconds() or performance.now(): those follow CLOCK_MONOTONIC, which NTP slews
// (by ~150 ppm on some machines), while Shairport Sync reads CLOCK_MONOTONIC_RAW.

import { allocateNative, errno, describeErrno, libc } from "../sys/libc.ts";
import { SysError } from "../sys/errors.ts";
import { CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, TIMESPEC_BYTES } from "../sys/linux.ts";

/** Interface version 5 uses CLOCK_REALTIME; 6, 8, 9 and 10 use CLOCK_MONOTONIC_RAW. */
export type LocalClock = "realtime" | "monotonic-raw";

// One struct timespec { i64 tv_sec; i64 tv_nsec; } for all reads, allocated once.
const timespecMemory = allocateNative(TIMESPEC_BYTES);
const timespec = new BigInt64Array(timespecMemory.buffer);

function read(clockId: number): bigint {
  if (libc.clock_gettime(clockId, timespecMemory.address) !== 0) {
    const e = errno();
    throw new SysError("clock_gettime", e, { subject: String(clockId), description: describeErrno(e) });
  }
  return (timespec[0] as bigint) * 1_000_000_000n + (timespec[1] as bigint);
}

/** CLOCK_REALTIME in ns since the Unix epoch. */
export function realtimeNs(): bigint {
  return read(CLOCK_REALTIME);
}

/** CLOCK_MONOTONIC_RAW in ns (since boot, not slewed by NTP). */
export function monotonicRawNs(): bigint {
  return read(CLOCK_MONOTONIC_RAW);
}

export function readClock(clock: LocalClock): bigint {
  return clock === "realtime" ? read(CLOCK_REALTIME) : read(CLOCK_MONOTONIC_RAW);
}
