// Start-up: exec → ready ("serving" logged, sockets bound, shm created) and exec → exit of -V,
// for a given binary. Run: bun bench/startup.ts [binary = dist/nqptp] [runs = 20]
import { join } from "node:path";
import { startDaemon } from "../test/support/daemon.ts";

const binary = process.argv[2] ?? join(import.meta.dir, "..", "dist", "nqptp");
const runs = Number(process.argv[3] ?? 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const versionMs: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const proc = Bun.spawn([binary, "-V"], { stdout: "ignore" });
  await proc.exited;
  versionMs.push(performance.now() - t);
}
const readyMs: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  const d = await startDaemon({ command: [binary] });
  readyMs.push(performance.now() - t);
  await d.stop();
}
console.log(`startup ${binary}: -V ${median(versionMs).toFixed(0)} ms, exec → ready ${median(readyMs).toFixed(0)} ms (medians of ${runs})`);
