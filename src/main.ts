// Entry point: the command line, then the daemon until SIGINT or SIGTERM.

import { EXIT_USAGE, usageError } from "./cli/args.ts";
import { helpText, planFromArgs } from "./cli/daemon-command.ts";
import { processIo } from "./commands/io.ts";
import { startDaemon, type Daemon } from "./daemon/daemon.ts";
import { NqptpError } from "./errors.ts";
import { createLogger } from "./daemon/log.ts";
import { createNotifier } from "./systemd/notify.ts";
import { versionLine } from "./cli/version.ts";

/** Subcommands run and exit; without one, the daemon runs. */
const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  status: async (args) => {
    const { runStatus, systemStatusIo } = await import("./commands/status.ts");
    return runStatus(args, systemStatusIo(processIo));
  },
  install: async (args) => (await import("./commands/install.ts")).runInstall(args, processIo),
  uninstall: async (args) => (await import("./commands/install.ts")).runUninstall(args, processIo),
};

async function main(rawArgs: string[]): Promise<number | "running"> {
  const subcommand = rawArgs[0] !== undefined ? SUBCOMMANDS[rawArgs[0]] : undefined;
  if (subcommand) return subcommand(rawArgs.slice(1));
  const plan = planFromArgs(rawArgs);
  switch (plan.kind) {
    case "help":
      processIo.out(await helpText());
      return 0;
    case "version":
      processIo.out(versionLine(plan.interfaceVersion));
      return 0;
    case "error":
      processIo.err(usageError("nqptp", plan.message));
      return EXIT_USAGE;
    case "run":
      break;
  }

  const logger = createLogger({ verbosity: plan.options.verbosity });
  const log = logger.withTag("nqptp");
  const notifier = createNotifier({ warn: (message) => log.warn(message) });

  // Handlers go in before anything is created, so a signal during start-up still cleans up.
  let daemon: Daemon | null = null;
  let stopRequested: string | null = null;
  const shutdown = (signal: string) => {
    if (!daemon) {
      stopRequested = signal;
      return;
    }
    log.info(`${signal} received, shutting down`);
    notifier.stopping();
    daemon.stop();
    notifier.close();
    process.exit(0);
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));

  try {
    daemon = await startDaemon(plan.options, { logger, onStatus: (text) => notifier.status(text) });
  } catch (error) {
    notifier.close();
    if (error instanceof NqptpError) {
      logger.error(error.message);
      return error.exitStatus;
    }
    logger.error(`could not start: ${(error as Error).stack ?? error}`);
    return 70; // EX_SOFTWARE
  }
  if (stopRequested) shutdown(stopRequested);

  const fatal = (error: unknown) => {
    // The shell catches what it expects; anything else is a bug. Leave cleanly so systemd
    // restarts us with a fresh region rather than running on in an unknown state.
    logger.error(`fatal: ${(error as Error)?.stack ?? String(error)}`);
    notifier.stopping();
    daemon?.stop();
    process.exit(70);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);

  const heard = daemon?.ptpInterfaces() ?? null;
  notifier.ready(`serving interface ${plan.options.interfaceVersion} at ${plan.options.shmName}; no master yet${heard ? `; PTP on ${heard}` : ""}`);
  const watchdogMs = notifier.startWatchdog();
  if (watchdogMs !== null) log.debug(`petting the systemd watchdog every ${watchdogMs} ms`);
  return "running";
}

const outcome = await main(process.argv.slice(2));
if (outcome !== "running") process.exit(outcome);
