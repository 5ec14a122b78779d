// sd_notify(3)'s datagram protocol, the pure part: which socket to use and what to say.
// The daemon tells systemd READY=1 once its sockets and shared memory are ready, keeps STATUS=
// current with the master clock, pets the watchdog while its event loop runs, and says STOPPING=1.

export interface NotifyTarget {
  /** The socket address bytes for sockaddr_un.sun_path ("@name" is Linux's abstract namespace). */
  path: Uint8Array;
  abstract: boolean;
}

/** sockaddr_un.sun_path holds 108 bytes on Linux. */
const SUN_PATH_MAX = 108;

/** From $NOTIFY_SOCKET: an absolute path or "@abstract"; null when unset or unusable. */
export function notifyTarget(env: Record<string, string | undefined>): NotifyTarget | { error: string } | null {
  const value = env.NOTIFY_SOCKET;
  if (value === undefined || value === "") return null;
  if (value.startsWith("@")) {
    const name = new TextEncoder().encode(value.slice(1));
    if (name.byteLength + 1 > SUN_PATH_MAX) return { error: `NOTIFY_SOCKET is too long (${value.length} characters)` };
    const path = new Uint8Array(name.byteLength + 1); // leading NUL, no terminator
    path.set(name, 1);
    return { path, abstract: true };
  }
  if (!value.startsWith("/")) return { error: `NOTIFY_SOCKET=${value} is neither an absolute path nor @abstract` };
  const path = new TextEncoder().encode(value);
  if (path.byteLength + 1 > SUN_PATH_MAX) return { error: `NOTIFY_SOCKET is too long (${value.length} characters)` };
  return { path, abstract: false };
}

/**
 * The watchdog interval to pet at: half of $WATCHDOG_USEC (sd_watchdog_enabled(3)), only when
 * $WATCHDOG_PID is unset or names us. Null when there is no watchdog.
 */
export function watchdogIntervalMs(env: Record<string, string | undefined>, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== "" && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/** One STATUS= line, free of newlines (each assignment is one line of the datagram). */
export function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, " ")}`;
}
