// The full fuzz run: 1,000,000+ random and mutated datagrams through decode() and the clock
// tracker (interfaces 5, 6, 8, 9, 10 side by side), then 100,000 control messages per interface
// version through parseControlMessage(). The suite runs a smaller one (test/fuzz/fuzz.test.ts).
// Run: bun bench/fuzz.ts [datagrams = 1000000] [seed = random] [control per version = 100000]
// Exit status 1 if any invariant failed; the seed replays the run exactly.

import { INTERFACE_VERSIONS } from "../src/rules/interface-version.ts";
import { formatFailures, runControlFuzz, runPtpFuzz, settledHeap } from "../test/fuzz/harness.ts";

const count = Number(process.argv[2] ?? 1_000_000);
const seed = process.argv[3] !== undefined ? Number(process.argv[3]) : Math.floor(Math.random() * 0x7fff_ffff);
const controlPerVersion = Number(process.argv[4] ?? 100_000);
const versions = [5, 6, 8, 9, 10];

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const histogram = (h: Record<string, number>) =>
  Object.entries(h)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");

const heap0 = settledHeap();
const ptp = runPtpFuzz({ seed, count, versions });
const heap1 = settledHeap();
console.log(
  `fuzz datagrams: seed ${seed}, ${ptp.cases} datagrams × ${versions.length} trackers in ${(ptp.elapsedMs / 1000).toFixed(1)} s ` +
    `(${(((ptp.cases / ptp.elapsedMs) * 1000) / 1000).toFixed(0)}k datagrams/s), ${ptp.simulatedSeconds.toFixed(0)} s of simulated clock; ` +
    `heapUsed ${mb(heap0)} → ${mb(heap1)}; failures ${ptp.failures.length}`,
);
console.log(`  inputs: ${histogram(ptp.sources)}`);
console.log(`  decode: ${histogram(ptp.outcomes)}`);
for (const [version, t] of Object.entries(ptp.trackers)) {
  console.log(
    `  tracker ${version}: ${t.reduced} reduced; effects ${histogram(t.effects)}; records max ${t.maxRecords} (end ${t.finalRecords}); ` +
      `overflow episodes ${t.overflowEpisodes}; sample ring max ${t.maxSamples}; log-limit keys max ${t.maxLogLimitKeys}; ` +
      `published: peer ${t.publishedPeer}, none ${t.publishedNull}, non-peer 0`,
  );
}

const heap2 = settledHeap();
const control = runControlFuzz({ seed: seed + 1, countPerVersion: controlPerVersion, versions: INTERFACE_VERSIONS });
const heap3 = settledHeap();
console.log(
  `fuzz control: seed ${seed + 1}, ${control.cases} messages (${controlPerVersion} × interfaces ${INTERFACE_VERSIONS.join(", ")}) ` +
    `in ${(control.elapsedMs / 1000).toFixed(1)} s (${(((control.cases / control.elapsedMs) * 1000) / 1000).toFixed(1)}k/s); ` +
    `${control.trackerSteps} tracker steps, records max ${control.maxRecords}; heapUsed ${mb(heap2)} → ${mb(heap3)}; failures ${control.failures.length}`,
);
console.log(`  outcomes: ${histogram(control.outcomes)}`);

const failures = [...ptp.failures, ...control.failures];
if (failures.length > 0) {
  console.log(formatFailures(failures));
  process.exit(1);
}
