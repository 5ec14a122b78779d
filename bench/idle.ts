// The idle daemon: resident memory after a settling time, and how often it wakes up.
//   bun bench/idle.ts [settle seconds = 60] [window seconds = 30]
// Starts dist/nqptp on unprivileged ports with no PTP traffic, waits, then reads /proc: VmRSS,
// and voluntary context switches summed over all its threads across the window.

import { readdirSync, readFileSync } from "node:fs";
import { startDaemon } from "../test/support/daemon.ts";

const settleS = Number(process.argv[2] ?? 60);
const windowS = Number(process.argv[3] ?? 30);

function field(status: string, name: string): number {
  const match = status.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"));
  return match ? Number(match[1]) : 0;
}

function sample(pid: number) {
  let voluntary = 0;
  let involuntary = 0;
  const threads = readdirSync(`/proc/${pid}/task`);
  for (const tid of threads) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    voluntary += field(status, "voluntary_ctxt_switches");
    involuntary += field(status, "nonvoluntary_ctxt_switches");
  }
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    rssKiB: field(status, "VmRSS"),
    anonKiB: field(status, "RssAnon"),
    fileKiB: field(status, "RssFile"),
    threads: threads.length,
    voluntary,
    involuntary,
  };
}

const started = performance.now();
const daemon = await startDaemon({ args: [] });
const readyMs = performance.now() - started;
const pid = daemon.proc.pid;
console.error(`nqptp pid ${pid} ready in ${readyMs.toFixed(0)} ms (exec → "serving" log line); settling ${settleS} s…`);
await Bun.sleep(settleS * 1000);
const a = sample(pid);
await Bun.sleep(windowS * 1000);
const b = sample(pid);
await daemon.stop();

const rate = (b.voluntary - a.voluntary) / windowS;
console.log(
  `idle: RSS ${(a.rssKiB / 1024).toFixed(1)} MiB after ${settleS} s (anon ${(a.anonKiB / 1024).toFixed(1)}, file ${(a.fileKiB / 1024).toFixed(1)}), ` +
    `${(b.rssKiB / 1024).toFixed(1)} MiB after ${settleS + windowS} s; ${b.threads} threads; ` +
    `voluntary context switches ${rate.toFixed(2)}/s, involuntary ${((b.involuntary - a.involuntary) / windowS).toFixed(2)}/s over ${windowS} s; ` +
    `start-up ${readyMs.toFixed(0)} ms`,
);
