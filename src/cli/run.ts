// The program behind src/main.ts: a subcommand, or the daemon until SIGINT or SIGTERM, and every
// way out, each with its exit status (src/cli/exit-status.ts). The process is reached only
// through ProgramSeams (output, exit, signal and fatal-error handlers, the daemon starter, the
// logger and the systemd notifier): src/main.ts passes this process's (processSeams), tests their own.

import { processIo, type Io } from "../commands/io.ts";
import { startDaemon, type Daemon, type DaemonDeps } from "../daemon/daemon.ts";
import { createLogger, type Logger } from "../daemon/log.ts";
import type { DaemonOptions } from "../daemon/options.ts";
import { NqptpError } from "../errors.ts";
import { createNotifier, type Notifier } from "../systemd/notify.ts";
import { usageError } from "./args.ts";
import { helpText, planFromArgs } from "./daemon-command.ts";
import { EXIT } from "./exit-status.ts";
import { versionLine } from "./version.ts";

export type StopSignal = "SIGINT" | "SIGTERM";

export interface ProgramSeams {
  /** Standard output and standard error, a line at a time (also the subcommands'). */
  io: Io;
  /** Ends the process with this status. */
  exit: (status: number) => void;
  /** Calls `handler` on every delivery of `signal`. */
  onSignal: (signal: StopSignal, handler: () => void) => void;
  /** Calls `handler` with an exception nothing caught or a rejection nothing handled. */
  onFatal: (handler: (error: unknown) => void) => void;
  startDaemon: (options: DaemonOptions, deps: DaemonDeps) => Promise<Daemon>;
  /** The daemon's logger at the verbosity the command line asked for. */
  createLogger: (verbosity: number) => Logger;
  /** systemd's notification socket (Type=notify); does nothing outside systemd. */
  createNotifier: (warn: (message: string) => void) => Notifier;
}

/** This process: its stdout and stderr, process.exit, its signals, the real daemon. */
export function processSeams(): ProgramSeams {
  return {
    io: processIo,
    exit: (status) => process.exit(status),
    onSignal: (signal, handler) => process.on(signal, handler),
    onFatal: (handler) => {
      process.on("uncaughtException", handler);
      process.on("unhandledRejection", handler);
    },
    startDaemon,
    createLogger: (verbosity) => createLogger({ verbosity }),
    createNotifier: (warn) => createNotifier({ warn }),
  };
}

/** Subcommands run and exit; without one, the daemon runs. Loaded when asked for. */
const SUBCOMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  status: async (args, io) => {
    const { runStatus, systemStatusIo } = await import("../commands/status.ts");
    return runStatus(args, systemStatusIo(io));
  },
  install: async (args, io) => (await import("../commands/install.ts")).runInstall(args, io),
  uninstall: async (args, io) => (await import("../commands/install.ts")).runUninstall(args, io),
};

/**
 * Runs the command line `rawArgs`. A command that finishes exits through seams.exit before this
 * returns; the daemon returns once it serves, and exits later: 0 on SIGINT or SIGTERM (also one
 * that came during start-up), 70 on a fatal error.
 */
export async function runProgram(rawArgs: readonly string[], seams: ProgramSeams): Promise<void> {
  const subcommand = rawArgs[0] !== undefined ? SUBCOMMANDS[rawArgs[0]] : undefined;
  if (subcommand) return seams.exit(await subcommand(rawArgs.slice(1), seams.io));
  const plan = planFromArgs(rawArgs);
  switch (plan.kind) {
    case "help":
      seams.io.out(await helpText());
      return seams.exit(EXIT.ok);
    case "version":
      seams.io.out(versionLine(plan.interfaceVersion));
      return seams.exit(EXIT.ok);
    case "error":
      seams.io.err(usageError("nqptp", plan.message));
      return seams.exit(EXIT.usage);
    case "run":
      return runDaemon(plan.options, seams);
  }
}

async function runDaemon(options: DaemonOptions, seams: ProgramSeams): Promise<void> {
  const logger = seams.createLogger(options.verbosity);
  const log = logger.withTag("nqptp");
  const notifier = seams.createNotifier((message) => log.warn(message));

  // Handlers go in before anything is created, so a signal during start-up still cleans up.
  let daemon: Daemon | null = null;
  let stopRequested: StopSignal | null = null;
  const shutdown = (signal: StopSignal) => {
    if (!daemon) {
      stopRequested = signal;
      return;
    }
    log.info(`${signal} received, shutting down`);
    notifier.stopping();
    daemon.stop();
    notifier.close();
    seams.exit(EXIT.ok);
  };
  seams.onSignal("SIGINT", () => shutdown("SIGINT"));
  seams.onSignal("SIGTERM", () => shutdown("SIGTERM"));

  try {
    daemon = await seams.startDaemon(options, { logger, onStatus: (text) => notifier.status(text) });
  } catch (error) {
    notifier.close();
    if (error instanceof NqptpError) {
      logger.error(error.message);
      return seams.exit(error.exitStatus);
    }
    logger.error(`could not start: ${(error as Error).stack ?? error}`);
    return seams.exit(EXIT.software);
  }
  if (stopRequested) return shutdown(stopRequested);

  seams.onFatal((error) => {
    // The shell catches what it expects; anything else is a bug. Leave cleanly so systemd
    // restarts us with a fresh region rather than running on in an unknown state.
    logger.error(`fatal: ${(error as Error)?.stack ?? String(error)}`);
    notifier.stopping();
    daemon?.stop();
    seams.exit(EXIT.software);
  });

  const heard = daemon.ptpInterfaces();
  notifier.ready(`serving interface ${options.interfaceVersion} at ${options.shmName}; no master yet${heard === null ? "" : `; PTP on ${heard}`}`);
  const watchdogMs = notifier.startWatchdog();
  if (watchdogMs !== null) log.debug(`petting the systemd watchdog every ${watchdogMs} ms`);
}
