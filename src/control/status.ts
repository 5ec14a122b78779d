// The status exchange on the control port (loopback only): a datagram "STATUS" asks the daemon
// for every clock it tracks; it answers with one JSON datagram. bigints travel as decimal strings.

import type { TrackerSnapshot } from "../clock/tracker.ts";

export const STATUS_REQUEST = "STATUS";

/** A network interface named with --interface, and whether PTP is heard there now. */
export interface PtpInterfaceStatus {
  name: string;
  /** "served": sockets open on it; "waiting": the kernel does not list it; "failed": listed, but its sockets could not be opened. */
  state: "served" | "waiting" | "failed";
  /** Why it failed (null otherwise). */
  problem: string | null;
}

export interface StatusReport {
  nqptp: string;
  interfaceVersion: number;
  shmName: string;
  uptimeS: number;
  /** The --interface names and their state; null when PTP is heard on every interface. */
  ptpInterfaces: PtpInterfaceStatus[] | null;
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
