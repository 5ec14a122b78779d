// Region creation latency: how soon after a client's first message ("<name> T") its region
// exists. Shairport Sync 5.3 sends that message at start, then looks for the region at once and
// every 50 ms for 2 s. Starts dist/nqptp (interface 10, unprivileged ports, a unique name) and
// sends it N fresh names one at a time; each is timed from the send (CLOCK_REALTIME, just before
// sendto) to the region's name appearing in /dev/shm, as test/c/region-watch.c sees it: blocked on
// inotify, so it takes no CPU from the daemon while it waits, and it opens the region at once, as
// a client would, to check that it is complete when it appears.
// Run: bun bench/region-latency.ts [names = 20] [pause ms between names = 200]

import { rmSync } from "node:fs";
import { realtimeNs } from "../src/time/clocks.ts";
import { buildCProgram } from "../test/support/c.ts";
import { startDaemon } from "../test/support/daemon.ts";
import { spawnCollecting } from "../test/support/process.ts";

const count = Number(process.argv[2] ?? 20);
const pauseMs = Number(process.argv[3] ?? 200);
const REGION_SIZE = 72; // interface 10: u16 version, then 2 × 4 u64

const watcher = await buildCProgram("region-watch");
const daemon = await startDaemon({ interfaceVersion: 10, args: ["--max-clients", String(count + 1)] });
const names = Array.from({ length: count }, (_, i) => `${daemon.shmName}-room${i + 1}`);
const watch = spawnCollecting([watcher, "0", "0", String(count * (pauseMs + 2000) + 10_000), ...names]);
const socket = await Bun.udpSocket({ hostname: "127.0.0.1" });
const latenciesMs: number[] = [];
try {
  await watch.waitForOutput(/^ready$/m);
  await Bun.sleep(500); // past start-up, as a Shairport Sync started after nqptp finds it
  for (const name of names) {
    const message = new TextEncoder().encode(`${name} T\0`);
    const sentAt = realtimeNs();
    socket.send(message, daemon.ports.control, "127.0.0.1");
    // Shairport Sync 5.3 gives up after 2 s.
    const line = await watch.waitForOutput(new RegExp(`^region ${name} \\d+ size=-?\\d+ version=-?\\d+$`, "m"), 2000);
    const [, , at, size, version] = line.split(" ");
    if (size !== `size=${REGION_SIZE}` || version !== "version=10") throw new Error(`${name} was incomplete when it appeared: ${line}`);
    latenciesMs.push(Number(BigInt(at!) - sentAt) / 1e6);
    await Bun.sleep(pauseMs);
  }
} finally {
  socket.close();
  watch.proc.kill("SIGTERM");
  await watch.exited();
  const code = await daemon.stop("SIGTERM");
  for (const name of names) rmSync(`/dev/shm${name}`, { force: true });
  if (code !== 0) console.error(`nqptp exited ${code}:\n${daemon.output()}`);
}

const sorted = [...latenciesMs].sort((a, b) => a - b);
const middle = sorted.length / 2;
const median = sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
console.log(
  `region-latency: ${count} first messages, send → region in /dev/shm: median ${median.toFixed(3)} ms, worst ${sorted.at(-1)!.toFixed(3)} ms ` +
    `(best ${sorted[0]!.toFixed(3)} ms; each complete when it appeared; Shairport Sync 5.3 looks every 50 ms)`,
);
console.log(`  each, in order (ms): ${latenciesMs.map((x) => x.toFixed(3)).join(" ")}`);
