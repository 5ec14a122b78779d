// Which receive stamps the PTP ports end up with, and the one warning that says so: a pure
// decision from what the kernel and the runtime refused while the sockets were opened
// (ptp-sockets.ts gathers the facts). The event port's stamp is the whole accuracy budget of an
// offset sample; why it is read by a Worker, with the measurements: bench/README.md, "Why the
// event port is read by a Worker".

export type PtpPortRole = "event" | "general";

/** What each port is called in messages. */
export const ROLE_NAMES: Record<PtpPortRole, string> = { event: "PTP event port", general: "PTP general port" };

/**
 * How event-port datagrams are stamped: "worker" is the reader thread with a kernel stamp per
 * datagram (SO_TIMESTAMPNS); "ioctl" (a Bun socket's kernel stamp of the last datagram read,
 * SIOCGSTAMPNS) and "callback" (a clock read in JavaScript) are the fallbacks; "reader-clock" is
 * the fallback with --interface: the reader thread reads the clock as it receives each datagram.
 */
export type EventStamping = "worker" | "ioctl" | "callback" | "reader-clock";

/**
 * How general-port datagrams are stamped: a Bun socket's ioctl stamps, or the clock in the
 * callback; with --interface the reader thread reads this port too ("worker", "reader-clock").
 */
export type GeneralStamping = "ioctl" | "callback" | "worker" | "reader-clock";

/** What became of the event port's reader (the Worker on timestamped libc sockets). */
export type EventPortFacts =
  /** It runs. */
  | { kind: "reader" }
  /**
   * It does not: SO_TIMESTAMPNS was refused ("no-timestamp-option") or the Worker did not start
   * ("reader-failed"), with the reason; the port then fell back to Bun sockets, whose ioctl was
   * refused with `ioctlRefusal` (null: the ioctl works).
   */
  | { kind: "no-timestamp-option" | "reader-failed"; reason: string; ioctlRefusal: string | null };

export interface StampingChoice {
  event: EventStamping;
  general: GeneralStamping;
  /** The one warning to give (null: all is as it should be). Only the first problem is told. */
  warning: { role: PtpPortRole; text: string } | null;
}

/**
 * The stamping of each port and what to say about it. `generalIoctlRefusal` is why the general
 * port's Bun sockets cannot use ioctl stamps (null: they can). A degraded event port is the news
 * that matters and is the one told; the general port's own refusal is told only when the event
 * port is fine.
 */
export function chooseStamping(event: EventPortFacts, generalIoctlRefusal: string | null): StampingChoice {
  const general: GeneralStamping = generalIoctlRefusal === null ? "ioctl" : "callback";
  if (event.kind === "reader") {
    const warning =
      generalIoctlRefusal === null
        ? null
        : {
            role: "general" as const,
            text: `kernel receive timestamps are not available on the PTP general port (${generalIoctlRefusal}); stamping there in JavaScript`,
          };
    return { event: "worker", general, warning };
  }
  const unavailable = event.kind === "reader-failed" ? `the event-port reader did not start: ${event.reason}` : event.reason;
  const instead =
    event.ioctlRefusal === null
      ? "with ioctl(SIOCGSTAMPNS) instead, which is late when several arrive together"
      : `in JavaScript instead (${event.ioctlRefusal}), which can be milliseconds late under load`;
  return {
    event: event.ioctlRefusal === null ? "ioctl" : "callback",
    general,
    warning: {
      role: "event",
      text: `kernel receive timestamps per datagram are not available (${unavailable}); stamping PTP event messages ${instead}: offsets will be less accurate`,
    },
  };
}

/**
 * With --interface both ports of each interface are libc sockets bound to it and read by a reader
 * thread (Bun's sockets cannot be bound to an interface before they bind, which sharing a port
 * between interfaces needs). `timestampOptionRefusal` is why SO_TIMESTAMPNS is refused here (null:
 * it is not): then the reader thread reads the clock as it receives each datagram, which no GC
 * pause or busy event loop of the main thread delays, but a busy CPU does.
 */
export function chooseInterfaceStamping(timestampOptionRefusal: string | null): StampingChoice {
  if (timestampOptionRefusal === null) return { event: "worker", general: "worker", warning: null };
  return {
    event: "reader-clock",
    general: "reader-clock",
    warning: {
      role: "event",
      text:
        `kernel receive timestamps per datagram are not available (${timestampOptionRefusal}); ` +
        "stamping PTP messages with the clock of the reader thread instead, as it receives them: offsets will be less accurate",
    },
  };
}
