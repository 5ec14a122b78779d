// How long publish() takes to give up ("busy") while a client holds the region's lock: the bounded
// wait of src/shm/writer.ts (pthread_mutex_timedlock, DEFAULT_LOCK_TIMEOUT_MS), the time a held
// lock costs the daemon's event loop per update. test/shm/writer.test.ts checks that it gives up
// while the lock is still held; the time it takes is measured here, against the C reader
// (test/c/shm-reader.c --hold-ms), on interface 9.
//
//   node_modules/.bin/bun bench/shm-lock.ts [busy publishes = 200]
//   → shm-lock: busy publish() median 2.13 ms, p99 3.36 ms, max 3.46 ms (200 calls, lock timeout 2 ms); an uncontended publish() 0.2 µs

import { DEFAULT_LOCK_TIMEOUT_MS, openShm } from "../src/shm/writer.ts";
import { buildCReader } from "../test/support/c.ts";
import { uniqueShmName } from "../test/support/daemon.ts";

const calls = Number(process.argv[2] ?? 200);
const record = { clockId: 1n, ip: "10.0.0.5", localTimeNs: 1n, offsetNs: 2n, masterStartTimeNs: 3n };
const name = uniqueShmName("bench-lock");
const writer = openShm({ name, version: 9 });
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

try {
  const free: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const start = Bun.nanoseconds();
    writer.publish(record);
    free.push(Bun.nanoseconds() - start);
  }

  // The reader holds the lock long enough for every call; "locked" says it has it.
  const holder = Bun.spawn([await buildCReader(), name, "9", "--hold-ms", String(calls * DEFAULT_LOCK_TIMEOUT_MS * 5 + 1000)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = holder.stdout.getReader();
  let said = "";
  while (!said.includes("locked\n")) {
    const { value, done } = await out.read();
    if (done) throw new Error(`the reader exited before it held the lock: ${said}`);
    said += new TextDecoder().decode(value);
  }
  const busy: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = Bun.nanoseconds();
    const result = writer.publish(record);
    busy.push(Bun.nanoseconds() - start);
    if (result !== "busy") throw new Error(`publish() wrote while the reader held the lock (call ${i})`);
  }
  holder.kill();
  await holder.exited;

  busy.sort((a, b) => a - b);
  free.sort((a, b) => a - b);
  const ms = (ns: number) => (ns / 1e6).toFixed(2);
  console.log(
    `shm-lock: busy publish() median ${ms(quantile(busy, 0.5))} ms, p99 ${ms(quantile(busy, 0.99))} ms, max ${ms(busy.at(-1)!)} ms ` +
      `(${calls} calls, lock timeout ${DEFAULT_LOCK_TIMEOUT_MS} ms); an uncontended publish() ${(quantile(free, 0.5) / 1e3).toFixed(1)} µs`,
  );
} finally {
  writer.close();
}
