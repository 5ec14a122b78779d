// Starts the compiled daemon (dist/nqptp) on unprivileged ports with a unique shared memory
// name, and collects what it logs. Builds the binary first if this checkout has none.

import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { spawnCollecting } from "./process.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "nqptp");

let built: Promise<string> | null = null;
export function compiledBinary(): Promise<string> {
  built ??= (async () => {
    if (!existsSync(BINARY)) {
      const result = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
      if (result.exitCode !== 0) throw new Error("could not build dist/nqptp");
    }
    return BINARY;
  })();
  return built;
}

let counter = 0;
export function uniqueShmName(tag = "e2e"): string {
  return `/nqptp-${tag}-${process.pid}-${++counter}-${Math.floor(Math.random() * 1e6)}`;
}

export interface Ports {
  event: number;
  general: number;
  control: number;
}

export function randomPorts(): Ports {
  const base = 20000 + Math.floor(Math.random() * 4000) * 10;
  return { event: base, general: base + 1, control: base + 2 };
}

/** The daemon's options for its region and its three ports. */
export function regionAndPortArgs(shmName: string, ports: Ports): string[] {
  return [`--shm-name=${shmName}`, `--event-port=${ports.event}`, `--general-port=${ports.general}`, `--control-port=${ports.control}`];
}

export interface RunningDaemon {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  ports: Ports;
  shmName: string;
  /** Everything the daemon wrote to stderr and stdout so far. */
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export interface StartOptions {
  args?: string[];
  interfaceVersion?: number;
  /** Listen for PTP on this address only (the simulator sends from another loopback address); null: no --ptp-address. */
  ptpAddress?: string | null;
  env?: Record<string, string>;
  /** The command to run instead of dist/nqptp (e.g. the arm64 build under qemu-user). */
  command?: string[];
  /** How long start-up may take (emulation is slow). */
  readyTimeoutMs?: number;
}

export async function startDaemon(options: StartOptions = {}): Promise<RunningDaemon> {
  const binary = await compiledBinary();
  for (let attempt = 0; ; attempt++) {
    const ports = randomPorts();
    const shmName = uniqueShmName();
    const args = [
      `--interface-version=${options.interfaceVersion ?? 5}`,
      ...regionAndPortArgs(shmName, ports),
      ...(options.ptpAddress === null ? [] : [`--ptp-address=${options.ptpAddress ?? "127.0.0.1"}`]),
      "-v",
      ...(options.args ?? []),
    ];
    const child = spawnCollecting([...(options.command ?? [binary]), ...args], options.env);
    const proc = child.proc;
    const running: RunningDaemon = {
      proc,
      ports,
      shmName,
      output: child.output,
      waitForOutput: child.waitForOutput,
      async stop(signal = "SIGTERM") {
        if (proc.exitCode === null) proc.kill(signal);
        const code = await proc.exited;
        // A killed daemon cannot remove its region; tests must not leave them behind.
        if (signal === "SIGKILL") rmSync(`/dev/shm${shmName}`, { force: true });
        return code;
      },
    };
    try {
      await running.waitForOutput(/serving shared memory interface/, options.readyTimeoutMs);
      return running;
    } catch (error) {
      await proc.exited;
      if (proc.exitCode === 69 && attempt < 5) continue; // a random port was taken: try others
      throw error;
    }
  }
}
