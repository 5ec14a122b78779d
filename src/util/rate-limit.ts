// Keeps repeated warnings from flooding the journal: the first occurrence of a key is logged,
// later ones within the interval are only counted, and the next line says how many were held back
// (in the words of src/util/suppressed.ts, which the tracker's limiter shares).

import { withSuppressedCount } from "./suppressed.ts";

export interface RateLimitDecision {
  log: boolean;
  /** Occurrences suppressed since the last logged one. */
  suppressed: number;
}

export class LogRateLimiter {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();
  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 256,
  ) {}

  check(key: string, nowMs: number): RateLimitDecision {
    const entry = this.last.get(key);
    if (entry && nowMs - entry.atMs < this.intervalMs) {
      entry.suppressed++;
      return { log: false, suppressed: entry.suppressed };
    }
    const suppressed = entry?.suppressed ?? 0;
    if (!entry && this.last.size >= this.maxKeys) {
      // Bounded memory whatever the keys: forget the oldest.
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    this.last.delete(key);
    this.last.set(key, { atMs: nowMs, suppressed: 0 });
    return { log: true, suppressed };
  }
}

/** What to append to the line a decision lets through: " (12 similar messages suppressed)", or "" when none were held back. */
export function suppressedSuffix(decision: RateLimitDecision): string {
  return withSuppressedCount("", decision.suppressed);
}
