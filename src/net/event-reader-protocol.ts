// What the main thread and the event-port reader Worker say to each other (event-reader.ts on
// the main thread, event-reader-loop.ts in the Worker). Plain data: it crosses postMessage.

import type { LocalClock } from "../time/clocks.ts";

/** Main → Worker, once: the sockets to read and how. */
export interface EventReaderStart {
  kind: "event-reader-start";
  /** Bound, non-blocking UDP sockets with SO_TIMESTAMPNS. Whoever owns them closes them (OWNER). */
  fds: number[];
  /** An eventfd the main thread owns: when it becomes readable the Worker closes the sockets and stops. */
  wakeFd: number;
  localClock: LocalClock;
  /** Int32 slots, see SHARED_SLOTS. */
  shared: SharedArrayBuffer;
  /** Datagrams posted but not yet handled by the main thread beyond which new ones are dropped. */
  maxBacklog: number;
}

/** Indices into the shared Int32Array. */
export const SHARED_SLOTS = {
  /** Datagrams the Worker has posted (it adds). */
  posted: 0,
  /** Datagrams the main thread has handled (it adds). */
  handled: 1,
  /** Who owns the sockets: one of OWNER. */
  owner: 2,
  count: 3,
} as const;

/**
 * The sockets belong to the main thread until the Worker takes them (compare-and-exchange
 * MAIN → WORKER when it starts); the main thread can instead reclaim them (MAIN → CLOSED) if the
 * Worker never started. The owner closes them and leaves CLOSED. So a descriptor is closed
 * exactly once, and never polled after it was closed.
 */
export const OWNER = { main: 0, worker: 1, closed: 2 } as const;

export interface ReceivedDatagram {
  /** Which socket it came from: its index in EventReaderStart.fds. */
  socket: number;
  data: Uint8Array;
  port: number;
  address: string;
  /** Reception time in the local clock (ns). */
  receivedAtNs: bigint;
  /** false when the kernel gave no stamp and the Worker read the clock instead. */
  kernelStamp: boolean;
}

/** Worker → main. */
export type EventReaderMessage =
  | { kind: "ready" }
  | { kind: "datagrams"; datagrams: ReceivedDatagram[]; dropped: number }
  | { kind: "error"; message: string };
