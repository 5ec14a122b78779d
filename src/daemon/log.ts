// Logging: consola, one tagged voice per module. Under systemd (journald owns stderr), each line
// carries a syslog priority prefix "<N>" that journald turns into the entry's priority, with no
// colour codes and exactly one line per event.

import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola";

export type Logger = ConsolaInstance;

/** consola levels: 0 fatal/error, 1 warn, 2 log, 3 info, 4 debug, 5 trace. */
export function levelForVerbosity(verbosity: number): number {
  return Math.min(3 + Math.max(0, verbosity), 5);
}

/** sd-daemon(3) priorities: LOG_ERR 3, LOG_WARNING 4, LOG_NOTICE 5, LOG_INFO 6, LOG_DEBUG 7. */
function syslogPriority(level: number): number {
  if (level <= 0) return 3;
  if (level === 1) return 4;
  if (level === 2) return 5;
  if (level === 3) return 6;
  return 7;
}

function formatArgs(args: unknown[]): string {
  return args
    .map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : Bun.inspect(a, { colors: false })))
    .join(" ")
    .replace(/\r?\n/g, " | ");
}

/** One line per event, "<6>[tag] message", for journald. */
export function journaldReporter(write: (line: string) => void = (l) => process.stderr.write(l)): ConsolaReporter {
  return {
    log(logObj: LogObject) {
      const tag = logObj.tag ? `[${logObj.tag}] ` : "";
      write(`<${syslogPriority(logObj.level)}>${tag}${formatArgs(logObj.args)}\n`);
    },
  };
}

/** A reporter that keeps lines in memory: for tests. */
export function memoryReporter(lines: { level: number; tag: string; message: string }[]): ConsolaReporter {
  return {
    log(logObj: LogObject) {
      lines.push({ level: logObj.level, tag: logObj.tag, message: formatArgs(logObj.args) });
    },
  };
}

/**
 * journald (JOURNAL_STREAM names the stream systemd connected), or anything else that is not a
 * terminal: a log collector reads us, and one plain line per event with its priority serves it best.
 */
export function wantsPriorityPrefixes(env: Record<string, string | undefined> = process.env, isTTY = process.stderr.isTTY === true): boolean {
  if (typeof env.JOURNAL_STREAM === "string" && env.JOURNAL_STREAM.length > 0) return true;
  return !isTTY;
}

export interface LoggerOptions {
  verbosity: number;
  reporters?: ConsolaReporter[];
  env?: Record<string, string | undefined>;
}

export function createLogger(options: LoggerOptions): Logger {
  const env = options.env ?? process.env;
  const reporters = options.reporters ?? (wantsPriorityPrefixes(env) ? [journaldReporter()] : undefined);
  const consolaOptions: NonNullable<Parameters<typeof createConsola>[0]> = {
    level: levelForVerbosity(options.verbosity),
    fancy: reporters === undefined && process.stderr.isTTY === true,
    // Repeated lines are rate-limited where they arise (the tracker and the shell), not merged here.
    throttle: 0,
    formatOptions: { date: false, colors: process.stderr.isTTY === true && !env.NO_COLOR },
  };
  if (reporters) consolaOptions.reporters = reporters;
  return createConsola(consolaOptions);
}
