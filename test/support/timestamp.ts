// One ns → PTP timestamp for the tests and benches: what a master puts in originTimestamp and
// preciseOriginTimestamp for a time in nanoseconds (the inverse of src/time/ns.ts's timestampToNs).

import type { Timestamp } from "../../src/ptp/types.ts";
import { NS_PER_SECOND } from "../../src/time/ns.ts";

const LIMIT_NS = (1n << 48n) * NS_PER_SECOND;

/** IEEE 1588-2008 5.3.3: UInteger48 seconds, UInteger32 nanoseconds. A time the wire cannot carry is refused. */
export function ptpTimestamp(ns: bigint): Timestamp {
  if (ns < 0n || ns >= LIMIT_NS) throw new RangeError(`${ns} ns is not a PTP timestamp (0 to 2^48 s)`);
  return { seconds: ns / NS_PER_SECOND, nanoseconds: Number(ns % NS_PER_SECOND) };
}
