// The program's ways out (src/cli/run.ts), in-process: help, version, a usage error, the
// subcommands, a start-up that fails (an NqptpError's own status, 70 for anything else), a signal
// during start-up, SIGINT/SIGTERM once serving, and a fatal error after start. The daemon is the
// real one on unprivileged ports (only a failure no real start-up produces is made up); the
// process seams (output, exit, signal and fatal handlers, systemd's notifier) are recorded.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { EXIT } from "../../src/cli/exit-status.ts";
import { runProgram, type ProgramSeams, type StopSignal } from "../../src/cli/run.ts";
import { VERSION } from "../../src/cli/version.ts";
import { startDaemon, type Daemon } from "../../src/daemon/daemon.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import type { Notifier } from "../../src/systemd/notify.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { randomPorts, regionAndPortArgs, uniqueShmName } from "../support/daemon.ts";

setDefaultTimeout(20_000);

const cleanups = cleanupAfterEach();

interface Program {
  seams: ProgramSeams;
  out: string[];
  err: string[];
  exits: number[];
  /** What the logger said, "level message". */
  log: string[];
  /** What systemd was told. */
  told: string[];
  signal(signal: StopSignal): void;
  fatal(error: unknown): void;
  /** The daemons started (each stopped after the test if it is still running). */
  daemons: Daemon[];
  shmName: string;
  args: string[];
}

const LEVELS: Record<number, string> = { 0: "error", 1: "warn", 3: "info", 4: "debug" };

function program(options: { watchdogMs?: number; startDaemon?: ProgramSeams["startDaemon"] } = {}): Program {
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  const told: string[] = [];
  const lines: { level: number; tag: string; message: string }[] = [];
  const signals = new Map<StopSignal, (() => void)[]>();
  const fatalHandlers: ((error: unknown) => void)[] = [];
  const daemons: Daemon[] = [];
  const notifier: Notifier = {
    active: true,
    ready: (status) => told.push(`ready: ${status}`),
    status: (status) => told.push(`status: ${status}`),
    stopping: () => told.push("stopping"),
    startWatchdog: () => options.watchdogMs ?? null,
    close: () => told.push("close"),
  };
  const realStart: ProgramSeams["startDaemon"] = async (o, deps) => {
    const daemon = await startDaemon(o, deps);
    daemons.push(daemon);
    cleanups.push(() => daemon.stop());
    return daemon;
  };
  const seams: ProgramSeams = {
    io: { out: (text) => out.push(text), err: (text) => err.push(text) },
    exit: (status) => exits.push(status),
    onSignal: (signal, handler) => signals.set(signal, [...(signals.get(signal) ?? []), handler]),
    onFatal: (handler) => fatalHandlers.push(handler),
    startDaemon: options.startDaemon ?? realStart,
    createLogger: (verbosity) => createLogger({ verbosity, reporters: [memoryReporter(lines)] }),
    createNotifier: () => notifier,
  };
  const ports = randomPorts();
  const shmName = uniqueShmName("run");
  return {
    seams,
    out,
    err,
    exits,
    told,
    daemons,
    shmName,
    args: [...regionAndPortArgs(shmName, ports), "--control-address=127.0.0.1", "--ptp-address=127.0.0.1"],
    get log() {
      return lines.map((l) => `${LEVELS[l.level] ?? l.level} ${l.message}`);
    },
    signal: (signal) => {
      for (const handler of signals.get(signal) ?? []) handler();
    },
    fatal: (error) => {
      for (const handler of fatalHandlers) handler(error);
    },
  };
}

const region = (shmName: string) => `/dev/shm${shmName}`;

describe("a command that finishes exits through the exit seam", () => {
  test("--help prints the help, exit 0", async () => {
    const p = program();
    await runProgram(["--help"], p.seams);
    expect(p.exits).toEqual([EXIT.ok]);
    // citty colours its help unless NO_COLOR is set (a terminal's concern, not the text's).
    expect(p.out.join("\n").replace(/\u001b\[[0-9;]*m/g, "")).toContain("USAGE nqptp [OPTIONS] status|install|uninstall");
    expect(p.err).toEqual([]);
  });

  test("-V prints the version line of the interface asked for, exit 0", async () => {
    const p = program();
    await runProgram(["-V", "--interface-version", "10"], p.seams);
    expect(p.out).toEqual([`Version: ${VERSION}. Shared Memory Interface Version: smi10.`]);
    expect(p.exits).toEqual([EXIT.ok]);
  });

  test("a bad command line: what was wrong and where to look on stderr, exit 64, nothing started", async () => {
    const p = program({
      startDaemon: () => {
        throw new Error("must not start");
      },
    });
    await runProgram(["--event-port", "0"], p.seams);
    expect(p.err).toEqual(['nqptp: --event-port: "0" is not a port number 1-65535\nTry "nqptp --help".']);
    expect(p.exits).toEqual([EXIT.usage]);
    expect(p.told).toEqual([]);
  });

  test("subcommands get the arguments after their name and the program's output; their status is the exit status", async () => {
    const p = program();
    await runProgram(["status", "--bogus"], p.seams);
    await runProgram(["uninstall", "--help"], p.seams);
    await runProgram(["status", "--shm-name", p.shmName], p.seams);
    expect(p.exits).toEqual([EXIT.usage, EXIT.ok, EXIT.notRunning]);
    expect(p.err).toEqual([
      'nqptp status: unknown option "--bogus"\nTry "nqptp status --help".',
      `nqptp does not seem to be running: there is no shared memory at ${region(p.shmName)}`,
    ]);
    expect(p.out.join("\n")).toContain("nqptp uninstall");
  });
});

describe("start-up that fails", () => {
  test("an NqptpError exits with its own status (a port in use: 69), says why, and leaves nothing behind", async () => {
    const p = program();
    const control = Number(p.args.find((a) => a.startsWith("--control-port="))!.split("=")[1]);
    const squatter = await Bun.udpSocket({ hostname: "127.0.0.1", port: control });
    cleanups.push(() => squatter.close());
    await runProgram(p.args, p.seams);
    expect(p.exits).toEqual([EXIT.unavailable]);
    expect(p.log).toEqual([
      `error cannot listen on control port 127.0.0.1:${control}: the port is already in use. Another PTP daemon such as ptp4l, ` +
        `or another nqptp, may be running (check with: ss -ulpn 'sport = :${control}').`,
    ]);
    expect(p.told).toEqual(["close"]);
    expect(existsSync(region(p.shmName))).toBe(false);
  });

  test("anything else is a bug: 'could not start' with the stack, exit 70", async () => {
    const p = program({
      startDaemon: async () => {
        throw new TypeError("cannot read the thing");
      },
    });
    await runProgram(p.args, p.seams);
    expect(p.exits).toEqual([EXIT.software]);
    expect(p.log).toHaveLength(1);
    expect(p.log[0]).toStartWith("error could not start: TypeError: cannot read the thing");
    expect(p.log[0]).toContain("run.test.ts"); // the stack, to find the bug
    expect(p.told).toEqual(["close"]);
  });
});

describe("the daemon running", () => {
  test("once serving: systemd is told it is ready, the watchdog runs; SIGTERM stops it, removes the region, exit 0", async () => {
    const p = program({ watchdogMs: 15_000 });
    await runProgram([...p.args, "-v"], p.seams);
    expect(p.exits).toEqual([]);
    expect(p.daemons).toHaveLength(1);
    expect(existsSync(region(p.shmName))).toBe(true);
    expect(p.told).toEqual([`ready: serving interface 5 at ${p.shmName}; no master yet`]);
    expect(p.log).toContain("debug petting the systemd watchdog every 15000 ms");

    p.signal("SIGTERM");
    expect(p.exits).toEqual([EXIT.ok]);
    expect(p.log).toContain("info SIGTERM received, shutting down");
    expect(p.told.slice(1)).toEqual(["stopping", "close"]);
    expect(existsSync(region(p.shmName))).toBe(false);
  });

  test("SIGINT does the same", async () => {
    const p = program();
    await runProgram(p.args, p.seams);
    p.signal("SIGINT");
    expect(p.exits).toEqual([EXIT.ok]);
    expect(p.log).toContain("info SIGINT received, shutting down");
    expect(existsSync(region(p.shmName))).toBe(false);
  });

  test("a signal during start-up is kept until the daemon exists, then it stops: exit 0, never 'ready'", async () => {
    const p = program();
    let regionDuringStartUp = false;
    p.seams.startDaemon = async (options, deps) => {
      const daemon = await startDaemon(options, deps);
      cleanups.push(() => daemon.stop());
      regionDuringStartUp = existsSync(region(p.shmName));
      p.signal("SIGTERM"); // before startDaemon has returned
      expect(p.exits).toEqual([]);
      return daemon;
    };
    await runProgram(p.args, p.seams);
    expect(regionDuringStartUp).toBe(true);
    expect(p.exits).toEqual([EXIT.ok]);
    expect(p.told).toEqual(["stopping", "close"]);
    expect(p.log).toContain("info SIGTERM received, shutting down");
    expect(existsSync(region(p.shmName))).toBe(false);
  });

  test("a fatal error after start: logged with its stack, systemd told, the daemon stopped, exit 70", async () => {
    const p = program();
    await runProgram(p.args, p.seams);
    p.fatal(new RangeError("a bug in a timer"));
    expect(p.exits).toEqual([EXIT.software]);
    const fatal = p.log.find((l) => l.startsWith("error fatal:"));
    expect(fatal).toStartWith("error fatal: RangeError: a bug in a timer");
    expect(p.told.slice(1)).toEqual(["stopping"]);
    expect(existsSync(region(p.shmName))).toBe(false);
    // A value that is not an Error is still reported.
    p.fatal("a string thrown");
    expect(p.log).toContain("error fatal: a string thrown");
  });
});
