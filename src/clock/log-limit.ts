// Rate limits for log lines the LAN can trigger per packet (a hostile LAN can send 20k
// datagrams/s). Pure: the limiter's state lives in the tracker's state; time comes in as nowNs.
// Each key may log `burst` lines per `intervalNs`; lines beyond that are counted, and the count
// is appended to the first line let through after the interval, in the same words as the
// shell's limiter (src/util/suppressed.ts).

import { NS_PER_SECOND } from "../time/ns.ts";
import { withSuppressedCount } from "../util/suppressed.ts";

export interface LogLimitRules {
  intervalNs: bigint;
  burst: number;
}

export const DEFAULT_LOG_LIMIT_RULES: LogLimitRules = { intervalNs: 10n * NS_PER_SECOND, burst: 5 };

export interface LogLimitEntry {
  readonly windowStartNs: bigint;
  readonly count: number;
  readonly suppressed: number;
}

export type LogLimits = ReadonlyMap<string, LogLimitEntry>;

export const NO_LOG_LIMITS: LogLimits = new Map();

export interface LogLimitDecision {
  limits: LogLimits;
  /** The line to log (with the suppressed count appended), or null to stay quiet. */
  message: string | null;
}

export function limitLog(
  limits: LogLimits,
  key: string,
  message: string,
  nowNs: bigint,
  rules: LogLimitRules = DEFAULT_LOG_LIMIT_RULES,
): LogLimitDecision {
  const entry = limits.get(key);
  const windowOver = entry === undefined || nowNs - entry.windowStartNs >= rules.intervalNs || nowNs < entry.windowStartNs;
  let next: LogLimitEntry;
  let line: string | null;
  if (windowOver) {
    const suppressed = entry?.suppressed ?? 0;
    next = { windowStartNs: nowNs, count: 1, suppressed: 0 };
    line = withSuppressedCount(message, suppressed);
  } else if (entry.count < rules.burst) {
    next = { windowStartNs: entry.windowStartNs, count: entry.count + 1, suppressed: entry.suppressed };
    line = message;
  } else {
    next = { windowStartNs: entry.windowStartNs, count: entry.count, suppressed: entry.suppressed + 1 };
    line = null;
  }
  const copy = new Map(limits);
  copy.set(key, next);
  return { limits: copy, message: line };
}
