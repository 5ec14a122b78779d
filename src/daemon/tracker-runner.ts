// The clock tracker in the running daemon: it holds the tracker's state, hands it events (from
// the PTP ingress, and the control port's as control/dispatch.ts maps them), and carries out its
// effects. This is the one place effects become actions and timers:
//   publish        → the client's region (shm/publisher.ts)
//   send-announce  → the PTP general port, now or after its delay
//   log            → the "clock" logger
//   schedule-tick  → the one tick timer (a new request replaces the outstanding one)
// An exception from the pure core is a bug: it is logged, the last good state is kept, and the
// daemon goes on (a bug must not stop the music).

import { reduce, snapshot, type TrackerEffect, type TrackerEvent, type TrackerSnapshot, type TrackerState } from "../clock/tracker.ts";
import type { Dispatch } from "../control/dispatch.ts";
import type { Logger } from "./log.ts";
import { encodeAnnounce } from "../ptp/encode.ts";
import type { Publisher } from "../shm/publisher.ts";

export interface TrackerRunnerOptions {
  initial: TrackerState;
  publisher: Publisher;
  /** The interface's local clock now (for ticks and status). */
  now: () => bigint;
  /** Sends an Announce from our general port; false when it was not sent (no socket yet). */
  sendGeneral: (data: Uint8Array, address: string) => boolean;
  clockLog: Logger;
  /** The daemon's own voice, for the control port's notes. */
  log: Logger;
  /** Rate-limited warning (key, message). */
  warnLimited: (key: string, message: string) => void;
}

type SendAnnounce = Extract<TrackerEffect, { kind: "send-announce" }>;

export class TrackerRunner {
  private state: TrackerState;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private stopped = false;
  announcesSent = 0;

  constructor(private readonly options: TrackerRunnerOptions) {
    this.state = options.initial;
  }

  /** From now on events are reduced: the main region exists, so publishing has somewhere to go. */
  start(): void {
    if (!this.stopped) this.running = true;
  }

  /** Clients the tracker knows (8-10), by name. */
  knowsClient(name: string): boolean {
    return this.state.clients?.has(name) ?? false;
  }

  snapshot(): TrackerSnapshot {
    return snapshot(this.state, this.options.now());
  }

  /**
   * A control message as control/dispatch.ts mapped it: its notes logged, then its events. A
   * client's region exists before the tracker hears of it (Shairport Sync sends "<name> T" at
   * start-up, then waits for the region to appear); a client refused a region is not heard.
   */
  control(decision: Dispatch): void {
    for (const note of decision.notes) {
      if (note.level === "warn") this.options.warnLimited(note.key, note.message);
      else this.options.log.debug(note.message);
    }
    if (decision.kind === "ignore") return;
    if (decision.client !== null && !this.options.publisher.openClient(decision.client)) return;
    const nowNs = this.options.now();
    for (const event of decision.events) this.dispatch(event, nowNs);
  }

  dispatch(event: TrackerEvent, nowNs: bigint): void {
    // Until the region exists (the first milliseconds of start-up) there is nowhere to publish:
    // the tracker must not believe it published.
    if (!this.running) return;
    try {
      const result = reduce(this.state, event, nowNs);
      this.state = result.state;
      this.apply(result.effects);
    } catch (error) {
      this.options.warnLimited(`bug:${(error as Error).message}`, `internal error handling ${event.kind}: ${(error as Error).stack ?? error}`);
    }
  }

  private apply(effects: TrackerEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "publish":
          this.options.publisher.publish(effect.client, effect.master);
          break;
        case "send-announce":
          if (effect.delayMs <= 0) this.send(effect);
          else this.later(effect.delayMs, () => this.send(effect));
          break;
        case "log":
          this.options.clockLog[effect.level](effect.message);
          break;
        case "schedule-tick":
          // One timer: a new request replaces the previous one (interfaces 8-10 validity windows).
          if (this.tickTimer) clearTimeout(this.tickTimer);
          if (this.stopped) break;
          this.tickTimer = setTimeout(() => {
            this.tickTimer = null;
            this.dispatch({ kind: "tick" }, this.options.now());
          }, effect.delayMs);
          break;
      }
    }
  }

  private later(delayMs: number, run: () => void): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    this.timers.add(timer);
  }

  private send(effect: SendAnnounce): void {
    if (this.stopped) return;
    try {
      if (this.options.sendGeneral(encodeAnnounce(effect.announce), effect.to)) this.announcesSent++;
    } catch (error) {
      this.options.warnLimited(`send:${effect.to}`, `could not send an Announce to ${effect.to}: ${(error as Error).message}`);
    }
  }

  /** Cancels every timer; no event is reduced after this. */
  stop(): void {
    this.stopped = true;
    this.running = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = null;
  }
}
