// Nanoseconds as bigint, with the 64-bit wrap-around of the shared-memory fields made explicit.
// Every time value in the daemon is a bigint count of nanoseconds of some clock; which clock is
// a matter for the caller (see src/time/clocks.ts).

export const NS_PER_SECOND = 1_000_000_000n;
export const NS_PER_MS = 1_000_000n;
export const NS_PER_US = 1_000n;

const U64_MASK = (1n << 64n) - 1n;

/** Reduce any bigint to its unsigned 64-bit representative (x mod 2^64). */
export function toU64(x: bigint): bigint {
  return x & U64_MASK;
}

/** Interpret an unsigned 64-bit value as two's-complement signed (for logs and comparisons). */
export function toI64(x: bigint): bigint {
  return BigInt.asIntN(64, x);
}

/** (a - b) mod 2^64 */
export function subU64(a: bigint, b: bigint): bigint {
  return (a - b) & U64_MASK;
}

/** A PTP timestamp (IEEE 1588-2008 5.3.3: UInteger48 seconds, UInteger32 nanoseconds) in ns. */
export function timestampToNs(seconds: bigint, nanoseconds: number): bigint {
  return seconds * NS_PER_SECOND + BigInt(nanoseconds);
}

/**
 * A correctionField (IEEE 1588-2008 13.3.2.7: Integer64 in units of 2^-16 ns) in whole ns,
 * truncated toward zero as C's integer division does.
 */
export function correctionToNs(correctionField: bigint): bigint {
  return correctionField / 65536n;
}

/** Signed ns difference as a float of seconds, only for logs. */
export function nsToSecondsForLog(ns: bigint): number {
  return Number(toI64(ns)) / 1e9;
}
