// Telling systemd how we are (Type=notify): READY=1 once sockets and shared memory are ready,
// STATUS= with the current master, WATCHDOG=1 while the event loop runs, STOPPING=1 on the way
// out. Spoken over $NOTIFY_SOCKET with sd_notify(3)'s datagram protocol; outside systemd
// (no $NOTIFY_SOCKET) every call does nothing.

import { close, sendToUnix, unixDatagramSocket } from "../sys/posix.ts";
import { notifyTarget, statusLine, watchdogIntervalMs, type NotifyTarget } from "./notify-protocol.ts";

export interface Notifier {
  /** True when systemd is listening. */
  readonly active: boolean;
  ready(status: string): void;
  status(status: string): void;
  stopping(): void;
  /** Starts petting the watchdog when systemd asked for one; returns the interval, or null. */
  startWatchdog(): number | null;
  close(): void;
}

export interface NotifierOptions {
  env?: Record<string, string | undefined>;
  pid?: number;
  /** Told once when a notification cannot be delivered. */
  warn: (message: string) => void;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const env = options.env ?? process.env;
  const target = notifyTarget(env);
  if (target === null) return inactive;
  if ("error" in target) {
    options.warn(`not notifying systemd: ${target.error}`);
    return inactive;
  }
  return new SocketNotifier(target, watchdogIntervalMs(env, options.pid ?? process.pid), options.warn);
}

const inactive: Notifier = {
  active: false,
  ready() {},
  status() {},
  stopping() {},
  startWatchdog: () => null,
  close() {},
};

class SocketNotifier implements Notifier {
  readonly active = true;
  private fd: number | null = null;
  private warned = false;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private lastStatus = "";

  constructor(
    private readonly target: NotifyTarget,
    private readonly watchdogMs: number | null,
    private readonly warn: (message: string) => void,
  ) {}

  private send(lines: string[]): void {
    try {
      this.fd ??= unixDatagramSocket();
      sendToUnix(this.fd, this.target.path, new TextEncoder().encode(lines.join("\n")), "NOTIFY_SOCKET");
    } catch (error) {
      if (!this.warned) {
        this.warned = true;
        this.warn(`could not notify systemd: ${(error as Error).message}`);
      }
    }
  }

  ready(status: string): void {
    this.lastStatus = status;
    this.send(["READY=1", statusLine(status), `MAINPID=${process.pid}`]);
  }

  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send([statusLine(status)]);
  }

  stopping(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.send(["STOPPING=1", statusLine("stopping")]);
  }

  startWatchdog(): number | null {
    if (this.watchdogMs === null || this.watchdog) return this.watchdogMs;
    // The timer only fires while the event loop turns: a stuck loop stops the pets and
    // systemd restarts us (WatchdogSec= in nqptp.service).
    this.watchdog = setInterval(() => this.send(["WATCHDOG=1"]), this.watchdogMs);
    return this.watchdogMs;
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    if (this.fd !== null) {
      try {
        close(this.fd);
      } catch {
        // nothing left to do
      }
      this.fd = null;
    }
  }
}
