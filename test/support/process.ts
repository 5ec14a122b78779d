// A child process whose stdout and stderr are collected as they come, for tests that wait for
// what a daemon logs.

import type { Subprocess } from "bun";

export interface CollectedProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Waits until the output matches; fails early, with the output, if the process exits. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The exit code, SIGKILLing the process if it takes longer than the timeout. */
  exited(timeoutMs?: number): Promise<number>;
}

export function spawnCollecting(argv: string[], env: Record<string, string> = {}): CollectedProcess {
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", ...env } });
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  return {
    proc,
    output: () => text,
    async waitForOutput(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const match = text.match(pattern);
        if (match) return match[0];
        if (proc.exitCode !== null) break;
        await Bun.sleep(10);
      }
      throw new Error(`output did not match ${pattern} (exit ${proc.exitCode}):\n${text}`);
    },
    async exited(timeoutMs = 10_000) {
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      await pumped;
      return code;
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv to its end (SIGKILLed after `timeoutMs`) and returns its exit code and output. */
export async function runCommand(argv: string[], timeoutMs = 60_000): Promise<RunResult> {
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** As runCommand, but fails with the output unless argv exits 0; returns stdout. */
export async function checkCommand(argv: string[], timeoutMs?: number): Promise<string> {
  const result = await runCommand(argv, timeoutMs);
  if (result.code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}
