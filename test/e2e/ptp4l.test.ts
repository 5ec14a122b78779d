// Interop with a real PTP master: linuxptp's ptp4l (software timestamping, two-step, 8 Hz Sync)
// in one network namespace, dist/nqptp with its default ports in another, joined by a veth pair.
// ptp4l multicasts (224.0.1.129) and is never asked for unicast, so this also checks that the
// daemon joins the PTP group. A C reader compares what the daemon publishes with the true offset
// (ptp4l sends this machine's CLOCK_REALTIME). The bound here is loose (1 ms); the accuracy
// figures come from bench/accuracy.ts.
// Skips, saying why, when not root, without `ip netns`, or without ptp4l (CI installs it).

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readClockPair } from "../../src/net/kernel-stamps.ts";
import { buildCReader } from "../support/c.ts";
import { compiledBinary } from "../support/daemon.ts";
import { PtpLab, TrueOffset, collectSamples, findPtp4l, followCommands, labUnavailableReason, summarize } from "../net/netns-lab.ts";

setDefaultTimeout(60_000);

const MS = 1_000_000n;

const labReason = labUnavailableReason();
const ptp4l = labReason === null ? findPtp4l() : null;
const skipReason = labReason ?? (ptp4l && "reason" in ptp4l ? ptp4l.reason : null);

/** The versions the built daemon serves, among those we want to try. */
function serves(binary: string, version: number): boolean {
  return Bun.spawnSync([binary, `--interface-version=${version}`, "-V"], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
}

// One lab and one ptp4l for all versions: each test starts its own daemon in the slave namespace.
let lab: PtpLab | null = null;
afterAll(async () => {
  await lab?.cleanup();
});

async function followPtp4l(version: number) {
  const binary = await compiledBinary();
  const reader = await buildCReader();
  if (lab === null) {
    lab = PtpLab.create();
    await lab.startPtp4l((ptp4l as { path: string }).path);
  }
  const shmName = `/nqptp-ptp4l-${process.pid}-${version}`;
  const daemon = await lab.startDaemon(binary, [`--interface-version=${version}`, `--shm-name=${shmName}`, "-vv"]);
  for (const command of followCommands(version, shmName, lab.masterAddress)) lab.sendControl(command);
  const trueOffset = new TrueOffset(version === 5 ? "realtime" : "monotonic-raw", readClockPair);
  try {
    const samples = await collectSamples({
      lab,
      reader,
      shmName,
      version,
      durationMs: 15_000,
      intervalMs: 20,
      trueOffset,
      enough: (s) => s.length >= 12,
    });
    return { samples, output: daemon.output() };
  } finally {
    trueOffset.stop();
    daemon.proc.kill("SIGTERM");
    await daemon.proc.exited;
  }
}

describe.skipIf(skipReason !== null)("a real ptp4l master in another network namespace", () => {
  for (const version of [5, 6, 10]) {
    test(`is followed over multicast, interface ${version}, within 1 ms of the true offset`, async () => {
      const binary = await compiledBinary();
      if (!serves(binary, version)) {
        console.log(`interface ${version}: not served by this build of dist/nqptp; not tested`);
        return;
      }
      const { samples, output } = await followPtp4l(version);
      expect(samples.length, `no master was published; daemon said:\n${output}`).toBeGreaterThanOrEqual(12);
      // ptp4l's clock identity is an EUI-64 made from ptp0's MAC: ff:fe in the middle.
      expect((samples[0]!.clockId >> 24n) & 0xffffn).toBe(0xfffen);
      const errors = samples.map((s) => s.errorNs);
      const summary = summarize(errors);
      console.log(
        `ptp4l interop, interface ${version}: ${summary.n} samples, |error| median ${summary.median.toFixed(1)} µs, ` +
          `max ${summary.max.toFixed(1)} µs, first ${(Math.abs(Number(errors[0])) / 1000).toFixed(1)} µs`,
      );
      for (const error of errors) expect(error < 0n ? -error : error).toBeLessThan(1n * MS);
      // Kernel stamps were used: no fallback warning.
      expect(output).not.toContain("kernel receive timestamps");
    });
  }
});

if (skipReason !== null) {
  describe("a real ptp4l master in another network namespace", () => {
    test.skip(`(skipped: ${skipReason})`, () => {});
  });
}
