// What each client costs: dist/nqptp serving interface 10 to 1 client and then to N (default 8,
// the --max-clients default), all following one simulated master at 127.0.0.2, under the flood
// of bench/flood.ts. Every client's region is read the way Shairport Sync 4.3 reads it.
//
//   bun bench/clients.ts [seconds = 30] [clients = 8] [flood datagrams/s = 5000] [flood addresses = 200]
//
// Reports per run: RSS after the run, the daemon's CPU over it, and whether every region held
// the master with its offset in every sample; then the difference per added client.

import { monotonicRawNs } from "../src/time/clocks.ts";
import { offsetError, readShm, sendControl } from "../test/e2e/support.ts";
import { startDaemon } from "../test/support/daemon.ts";
import { startPtpMaster } from "../test/support/ptp-master.ts";
import { cpuTicks, spawnFloodSender, statusField, type FloodResult } from "./flood.ts";

const MASTER_ID = 0x00aa_bbff_fecc_dd01n;
const GRANDMASTER = 0x00aa_bbff_fecc_dd02n;
const MASTER_OFFSET = 1_234_567_890_123n;

interface Run {
  clients: number;
  rssMiB: number;
  cpuPercent: number;
  samples: number;
  published: number;
  maxErrorMs: number;
  flood: FloodResult;
}

async function run(clients: number, seconds: number, rate: number, sources: number): Promise<Run> {
  const daemon = await startDaemon({ interfaceVersion: 10 });
  const master = await startPtpMaster({
    address: "127.0.0.2",
    target: "127.0.0.1",
    eventPort: daemon.ports.event,
    generalPort: daemon.ports.general,
    clockIdentity: MASTER_ID,
    grandmasterIdentity: GRANDMASTER,
    offsetNs: MASTER_OFFSET,
    clock: monotonicRawNs,
  });
  const names = [daemon.shmName, ...Array.from({ length: clients - 1 }, (_, i) => `${daemon.shmName}-c${i + 2}`)];
  try {
    for (const name of names) {
      await sendControl(`${name} T 127.0.0.2\0`, daemon.ports.control);
      await sendControl(`${name} B\0`, daemon.ports.control);
    }
    await Bun.sleep(2000);
    const pid = daemon.proc.pid;
    const ticksStart = cpuTicks(pid);
    const wallStart = performance.now();
    const sender = spawnFloodSender({
      target: "127.0.0.1",
      eventPort: daemon.ports.event,
      generalPort: daemon.ports.general,
      sources,
      ratePerSecond: rate,
      durationMs: seconds * 1000,
    });
    let samples = 0;
    let published = 0;
    let maxError = 0n;
    while (sender.running()) {
      await Bun.sleep(1000);
      for (const name of names) {
        const r = await readShm(name, 10);
        samples++;
        if (BigInt(r.clock_id) === GRANDMASTER) published++;
        const error = offsetError(r.offset, MASTER_OFFSET);
        if (error > maxError) maxError = error;
      }
    }
    const flood = await sender.result();
    const wall = (performance.now() - wallStart) / 1000;
    const cpu = (cpuTicks(pid) - ticksStart) / 100 / wall;
    const rss = statusField(pid, "VmRSS");
    return { clients, rssMiB: rss / 1024, cpuPercent: cpu * 100, samples, published, maxErrorMs: Number(maxError) / 1e6, flood };
  } finally {
    master.stop();
    await daemon.stop();
  }
}

const seconds = Number(process.argv[2] ?? 30);
const clients = Number(process.argv[3] ?? 8);
const rate = Number(process.argv[4] ?? 5000);
const sources = Number(process.argv[5] ?? 200);
if (!(clients >= 2 && clients <= 64)) throw new Error(`clients must be 2-64, not ${process.argv[3]}`);
const one = await run(1, seconds, rate, sources);
const many = await run(clients, seconds, rate, sources);
for (const r of [one, many]) {
  console.log(
    `clients: ${r.clients} client(s), ${seconds} s, flood ${r.flood.sent} datagrams (${rate}/s from ${sources} addresses): ` +
      `RSS ${r.rssMiB.toFixed(1)} MiB, CPU ${r.cpuPercent.toFixed(1)}% of one core; ` +
      `master published in ${r.published}/${r.samples} region reads, error ≤ ${r.maxErrorMs.toFixed(3)} ms`,
  );
}
const added = many.clients - one.clients;
console.log(
  `clients: per added client ${(((many.rssMiB - one.rssMiB) * 1024) / added).toFixed(0)} KiB RSS, ` +
    `${((many.cpuPercent - one.cpuPercent) / added).toFixed(2)} percentage points of one core`,
);
