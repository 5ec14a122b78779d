// The event port as it is meant to be read: timestamped libc sockets (timestamped-socket.ts) read
// by the Worker (event-reader.ts), each Sync with its own kernel stamp. Started in two steps, so
// that the general port binds while the Worker loads: startEventReaderPort() binds and starts,
// settleEventReaderPort() waits and says what became of it (and, once, a datagram that came without
// its kernel stamp). When it fails, the caller falls back
// to Bun sockets (stamped-bun-port.ts) and chooseStamping (stamping.ts) says what that means.

import type { LocalClock } from "../time/clocks.ts";
import type { ReceivedDatagram } from "./event-reader-protocol.ts";
import { startEventReader, type EventReader } from "./event-reader.ts";
import type { PtpDatagram } from "./ptp-sockets.ts";
import type { EventPortFacts, PtpPortRole } from "./stamping.ts";
import { ROLE_NAMES } from "./stamping.ts";
import {
  TimestampsUnavailable,
  bindTimestampedSocket,
  bindTimestampedWildcard,
  closeTimestampedSocket,
  type TimestampedSocket,
} from "./timestamped-socket.ts";

export interface EventReaderPortOptions {
  eventPort: number;
  /** Empty: the wildcard of both families. */
  addresses: readonly string[];
  localClock: LocalClock;
  onDatagram: (datagram: PtpDatagram) => void;
  onError: (role: PtpPortRole, error: Error) => void;
  workerUrl?: URL;
}

/** The reader on its way, or why it cannot be (nothing is left open then). */
export type EventReaderStartup =
  | { kind: "starting"; sockets: TimestampedSocket[]; reader: Promise<EventReader> }
  | { kind: "no-timestamp-option"; reason: string };

/** A running reader and the sockets it reads (for multicast), or why there is none. */
export type EventReaderOutcome =
  | { kind: "reader"; reader: EventReader; sockets: TimestampedSocket[] }
  | { kind: Exclude<EventPortFacts["kind"], "reader">; reason: string };

/**
 * Binds the event port's timestamped sockets and starts the Worker on them. Throws the bind
 * error (port in use, permission) as Bun's sockets would; SO_TIMESTAMPNS refused is an outcome.
 */
export function startEventReaderPort(options: EventReaderPortOptions): EventReaderStartup {
  const bound = bindTimestampedEventSockets(options);
  if ("unavailable" in bound) return { kind: "no-timestamp-option", reason: bound.unavailable };
  const reader = startEventReader({
    sockets: bound.sockets,
    localClock: options.localClock,
    workerUrl: options.workerUrl,
    onDatagram: readerDatagrams({
      roles: ["event"],
      stampsAsked: true,
      interfaceName: null,
      onDatagram: options.onDatagram,
      onError: options.onError,
    }),
    onError: (error) => options.onError("event", error),
  });
  // Nothing may be left unhandled if the caller fails elsewhere while the Worker loads.
  reader.catch(() => {});
  return { kind: "starting", sockets: bound.sockets, reader };
}

export interface ReaderDatagramsOptions {
  /** Which port each of the reader's sockets is, by its index. */
  roles: readonly PtpPortRole[];
  /** The sockets asked for SO_TIMESTAMPNS (false: the reader reads the clock, as already said). */
  stampsAsked: boolean;
  /** --interface: the interface the sockets are bound to (null: none), for the warning. */
  interfaceName: string | null;
  onDatagram: (datagram: PtpDatagram) => void;
  onError: (role: PtpPortRole, error: Error) => void;
}

/**
 * What the reader posts, handed on as PtpDatagrams. A datagram that came without the kernel stamp
 * its socket was asked for (the option accepted, the stamp missing: the Worker read the clock
 * instead) is said once per reader, so that it never goes unnoticed, and still handed on.
 */
export function readerDatagrams(options: ReaderDatagramsOptions): (datagram: ReceivedDatagram) => void {
  let unstampedSaid = !options.stampsAsked;
  return (d) => {
    const role = options.roles[d.socket] ?? "event";
    if (!d.kernelStamp && !unstampedSaid) {
      unstampedSaid = true;
      const where = ROLE_NAMES[role] + (options.interfaceName === null ? "" : ` on interface ${options.interfaceName}`);
      options.onError(
        role,
        new Error(
          `kernel receive timestamps are missing on the ${where} (a datagram from ${d.address} came without SCM_TIMESTAMPNS); ` +
            "such datagrams are stamped when the reader gets them, which can be late under load: offsets will be less accurate",
        ),
      );
    }
    options.onDatagram({
      role,
      data: Buffer.from(d.data.buffer, d.data.byteOffset, d.data.byteLength),
      port: d.port,
      address: d.address,
      receivedAtNs: d.receivedAtNs,
      kernelStamp: d.kernelStamp,
    });
  };
}

/** Waits for the Worker. If it could not start, it has closed the sockets. */
export async function settleEventReaderPort(startup: EventReaderStartup): Promise<EventReaderOutcome> {
  if (startup.kind !== "starting") return startup;
  try {
    return { kind: "reader", reader: await startup.reader, sockets: startup.sockets };
  } catch (error) {
    return { kind: "reader-failed", reason: (error as Error).message };
  }
}

/** Stops a reader that is still starting (when something else failed); frees the port. */
export async function abandonEventReaderPort(startup: EventReaderStartup): Promise<void> {
  if (startup.kind !== "starting") return;
  await startup.reader.then(
    (reader) => reader.close(),
    () => {},
  );
}

/** The event port on timestamped libc sockets, or why not (nothing left open) if SO_TIMESTAMPNS is refused. */
function bindTimestampedEventSockets(options: EventReaderPortOptions): { sockets: TimestampedSocket[] } | { unavailable: string } {
  const sockets: TimestampedSocket[] = [];
  const request = { port: options.eventPort, role: ROLE_NAMES.event };
  try {
    if (options.addresses.length === 0) sockets.push(bindTimestampedWildcard(request));
    for (const hostname of options.addresses) sockets.push(bindTimestampedSocket({ ...request, hostname }));
    return { sockets };
  } catch (error) {
    for (const socket of sockets) closeTimestampedSocket(socket);
    if (error instanceof TimestampsUnavailable) return { unavailable: error.message };
    throw error;
  }
}
