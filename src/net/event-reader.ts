// The event-port reader, main-thread side: starts the Worker (src/worker.ts running
// event-reader-loop.ts), hands it the timestamped sockets (the event port's; with --interface
// both ports of one interface), and turns what it posts into datagrams for the daemon. Stopping is synchronous: the eventfd wakes the Worker, which closes
// the sockets and says so through shared memory, so the port is free when close() returns.

import { createEventFd, signalEventFd, close as closeFd } from "../sys/posix.ts";
import type { LocalClock } from "../time/clocks.ts";
import { OWNER, SHARED_SLOTS, type EventReaderMessage, type EventReaderStart, type ReceivedDatagram } from "./event-reader-protocol.ts";
import type { TimestampedSocket } from "./timestamped-socket.ts";

export interface EventReaderOptions {
  sockets: TimestampedSocket[];
  localClock: LocalClock;
  onDatagram: (datagram: ReceivedDatagram) => void;
  /** Errors the Worker reports, and datagrams it had to drop because we fell behind. */
  onError: (error: Error) => void;
  /** Posted-but-unhandled datagrams beyond which the Worker drops new ones (default 4096). */
  maxBacklog?: number;
  /** How long start waits for the Worker to run (default 5 s). */
  startTimeoutMs?: number;
  /** The Worker's script (default workerUrl()); tests point it elsewhere to exercise fallbacks. */
  workerUrl?: URL;
}

export interface EventReader {
  /** The Worker holds the sockets open (false once it stopped, on close() or after errors). */
  readonly running: boolean;
  /** Wakes the Worker, waits (briefly) until it has closed the sockets, ends it. Idempotent. */
  close(): void;
}

const STOP_WAIT_MS = 1000;

/**
 * Where the Worker's code is. In a checkout: src/worker.ts, next to this module's folder. In the
 * single executable every bundled module's import.meta.url is the executable's own path in Bun's
 * embedded file system (file:///$bunfs/root/nqptp), and the extra entry point sits beside it as
 * /$bunfs/root/worker.ts (measured with Bun 1.4.5). The URL is absolute either way: a relative
 * path that is not embedded would be loaded from the current directory.
 */
export function workerUrl(moduleUrl: string = import.meta.url): URL {
  const embedded = moduleUrl.startsWith("file:///$bunfs/");
  return new URL(embedded ? "./worker.ts" : "../worker.ts", moduleUrl);
}

/** Closes a descriptor that may already be closed. */
function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // already closed
  }
}

/**
 * Starts the reader and resolves once the Worker is reading. Rejects, having closed the sockets,
 * if the Worker cannot be started; the caller then falls back to a Bun socket.
 */
export async function startEventReader(options: EventReaderOptions): Promise<EventReader> {
  const shared = new SharedArrayBuffer(SHARED_SLOTS.count * 4);
  const slots = new Int32Array(shared);
  let wakeFd: number;
  try {
    wakeFd = createEventFd();
  } catch (error) {
    // The sockets are ours to close on every way out, so the caller can bind the port again.
    for (const socket of options.sockets) closeQuietly(socket.fd);
    throw error;
  }

  let worker: Worker;
  try {
    // smol: the small JavaScriptCore heap; this thread holds a few buffers and nothing else.
    worker = new Worker(options.workerUrl ?? workerUrl(), { smol: true, name: "ptp-event-reader" });
  } catch (error) {
    for (const socket of options.sockets) closeQuietly(socket.fd);
    closeQuietly(wakeFd);
    throw error;
  }

  const ready = listen(worker, options, slots);
  const start: EventReaderStart = {
    kind: "event-reader-start",
    fds: options.sockets.map((s) => s.fd),
    wakeFd,
    localClock: options.localClock,
    shared,
    maxBacklog: options.maxBacklog ?? 4096,
  };
  worker.postMessage(start);
  const stop = stopper(worker, options.sockets, slots, wakeFd);

  try {
    await ready;
  } catch (error) {
    stop.close();
    throw error;
  }
  worker.unref();
  return {
    get running() {
      return !stop.closed && Atomics.load(slots, SHARED_SLOTS.owner) === OWNER.worker;
    },
    close: stop.close,
  };
}

/**
 * Takes what the Worker posts: resolves at "ready" (rejects if it fails first, or says nothing
 * within the start timeout); hands datagrams and errors to the options' callbacks after that.
 */
function listen(worker: Worker, options: EventReaderOptions, slots: Int32Array): Promise<void> {
  let started = false;
  const startTimeoutMs = options.startTimeoutMs ?? 5000;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the event-port reader did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    worker.onmessage = (event: MessageEvent<EventReaderMessage>) => {
      const message = event.data;
      switch (message.kind) {
        case "ready":
          started = true;
          clearTimeout(timer);
          resolve();
          break;
        case "datagrams":
          try {
            for (const datagram of message.datagrams) options.onDatagram(datagram);
          } finally {
            Atomics.add(slots, SHARED_SLOTS.handled, message.datagrams.length);
          }
          if (message.dropped > 0) {
            options.onError(new Error(`dropped ${message.dropped} event datagram(s): the daemon fell behind the event-port reader`));
          }
          break;
        case "error":
          options.onError(new Error(message.message));
          break;
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      const error = new Error(`event-port reader: ${event.message}`);
      if (started) options.onError(error);
      else {
        clearTimeout(timer);
        reject(error);
      }
    };
  });
}

/**
 * The synchronous stop: whoever owns the sockets closes them (the Worker, woken through the
 * eventfd, or this thread if the Worker never took them), then the Worker ends.
 */
function stopper(worker: Worker, sockets: readonly TimestampedSocket[], slots: Int32Array, wakeFd: number) {
  const state = {
    closed: false,
    close: () => {
      if (state.closed) return;
      state.closed = true;
      if (Atomics.compareExchange(slots, SHARED_SLOTS.owner, OWNER.main, OWNER.closed) === OWNER.main) {
        // The Worker never took the sockets (and now never will).
        for (const socket of sockets) closeQuietly(socket.fd);
      } else if (Atomics.load(slots, SHARED_SLOTS.owner) === OWNER.worker) {
        // It leaves poll() at once and closes them; wait for that, so the port is free on return.
        signalEventFd(wakeFd);
        Atomics.wait(slots, SHARED_SLOTS.owner, OWNER.worker, STOP_WAIT_MS);
      }
      worker.terminate();
      closeQuietly(wakeFd);
    },
  };
  return state;
}
