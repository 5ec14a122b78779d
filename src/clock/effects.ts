// What the clock tracker asks the shell to do. The tracker never touches sockets, shared memory
// or the logger itself: it returns these, and the shell carries them out in order.

import type { AnnounceFields as EncoderAnnounceFields } from "../ptp/encode.ts";

/**
 * The master record as the shared-memory interface wants it (spec section 8). All values are
 * nanoseconds of the interface's local clock or u64 differences of them (offset = master time −
 * local time, modulo 2^64).
 */
export interface PublishedMaster {
  /**
   * Versions 5, 6: the master's clockIdentity, from the header of its messages. Versions 8–10:
   * the followed clock's grandmasterIdentity, from its Announce (Shairport Sync compares it
   * with the sender's timeline id).
   */
  clockId: bigint;
  /** Normalised IP text of the master. */
  ip: string;
  /** Local time of the sample the offset belongs to. */
  localTimeNs: bigint;
  /** master time − local time, u64 (a negative offset wraps to 2^64 − x). */
  offsetNs: bigint;
  /** Local time at which this clock became master (8–10: its smoothing sequence began). */
  masterStartTimeNs: bigint;
}

/**
 * An Announce to send (to wake a silent clock, spec section 7): what the encoder takes
 * (src/ptp/encode.ts), with transportSpecific always chosen — copied from the target's own
 * messages (0 for 1588 defaults, 1 for 802.1AS-style senders). correctionField stays 0.
 */
export type AnnounceToSend = Omit<EncoderAnnounceFields, "transportSpecific" | "correctionField"> & {
  transportSpecific: number;
};

export type LogLevel = "debug" | "info" | "warn";

export type TrackerEffect =
  /**
   * What the region of client `client` (its shm name) should hold now: the master changed, its
   * estimate changed, or there is no master any more (null: zeros). Interfaces 5 and 6 have one
   * client, the --shm-name region; 8-10 one per name that has spoken on the control port.
   */
  | { kind: "publish"; client: string; master: PublishedMaster | null }
  /** Send this Announce from our general port (320) to `to`'s general port, after delayMs. */
  | { kind: "send-announce"; to: string; delayMs: number; announce: AnnounceToSend }
  | { kind: "log"; level: LogLevel; message: string }
  /**
   * Versions 8–10: dispatch a "tick" event in delayMs (a validity deadline is pending). The shell
   * keeps ONE such timer: a new schedule-tick replaces the one outstanding. Emitted only while a
   * deadline is pending, so an idle daemon has no timer.
   */
  | { kind: "schedule-tick"; delayMs: number };

export function samePublishedMaster(a: PublishedMaster | null, b: PublishedMaster | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.clockId === b.clockId &&
    a.ip === b.ip &&
    a.localTimeNs === b.localTimeNs &&
    a.offsetNs === b.offsetNs &&
    a.masterStartTimeNs === b.masterStartTimeNs
  );
}
