// The status exchange on the control port (loopback only): a datagram "STATUS" asks the daemon
// for every clock it tracks; it answers with one JSON datagram. bigints travel as decimal strings.

import type { TrackerSnapshot } from "../clock/tracker.ts";

export const STATUS_REQUEST = "STATUS";

export interface StatusReport {
  nqptp: string;
  interfaceVersion: number;
  shmName: string;
  uptimeS: number;
  snapshot: TrackerSnapshot;
  stats: unknown;
}

/** JSON with bigint values as decimal strings (ids are best read as hex: see formatClockId). */
export function encodeStatusReport(report: StatusReport): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(report, (_key, value) => (typeof value === "bigint" ? value.toString() : value)));
}

/** A status request is exactly "STATUS", optionally ended by NUL or newline. */
export function isStatusRequest(bytes: Uint8Array): boolean {
  if (bytes.byteLength < STATUS_REQUEST.length || bytes.byteLength > STATUS_REQUEST.length + 2) return false;
  const text = new TextDecoder().decode(bytes).replace(/[\0\r\n]+$/, "");
  return text === STATUS_REQUEST;
}
