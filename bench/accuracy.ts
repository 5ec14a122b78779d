// Accuracy against a real PTP master: how far what dist/nqptp publishes is from the true offset.
//
//   bun bench/accuracy.ts [seconds = 60] [--versions 5,10] [--loads idle,loaded] [--binary dist/nqptp] [--label after]
//                         [--interfaces ptp0,flood0]
//
// Needs root, `ip netns` and linuxptp's ptp4l. For each interface version and load it builds the
// lab of test/net/netns-lab.ts (ptp4l master in one network namespace: software timestamping,
// two-step, 8 Hz Sync; the daemon with its default ports in another), makes the daemon follow
// ptp4l through its control port, and reads the shared memory with the C reader every 10 ms for
// the given time. Every distinct published sample (a new local_time) is compared with the true
// offset at that sample's local time: 0 for interface 5 (ptp4l sends this machine's
// CLOCK_REALTIME), CLOCK_REALTIME − CLOCK_MONOTONIC_RAW for 6, 8, 9, 10.
// Printed per run: the first published sample's |error|, and median/p95/p99/max |error| of the
// steady state (samples published from 2 s after the first one on).
//
// "loaded" is both cores busy plus GC pressure inside the daemon's own process:
//   - two `yes > /dev/null`, at the same priority as the daemon;
//   - a flood of valid PTP traffic (two-step Sync, Follow_Up, Announce; 5000 datagrams/s) from
//     32 other addresses in a third namespace. The daemon decodes every datagram and keeps clock
//     records for these senders (its table is full, so it evicts), which makes it allocate
//     steadily, so its garbage collector runs while the real Syncs arrive. This needs no hook in
//     the daemon; the traffic is what a busy LAN with many PTP clocks looks like.
//
// --binary compares another build (e.g. one made from the commit before kernel timestamps).
// --interfaces runs the daemon with --interface for each (the lab's links: ptp0 to the master,
// flood0 to the flood): PTP then comes through sockets bound to those interfaces.

import { readClockPair } from "../src/net/kernel-stamps.ts";
import { encodeAnnounce, encodeFollowUp, encodeSync } from "../src/ptp/encode.ts";
import { FLAG_TWO_STEP } from "../src/ptp/types.ts";
import { realtimeNs } from "../src/time/clocks.ts";
import { buildCReader } from "../test/support/c.ts";
import { compiledBinary } from "../test/support/daemon.ts";
import { ptpTimestamp } from "../test/support/timestamp.ts";
import { BUN, PtpLab, TrueOffset, collectSamples, findPtp4l, followCommands, labUnavailableReason, summarize } from "../test/net/netns-lab.ts";

const FLOOD_SENDERS = 32;
const FLOOD_RATE = 5000;
const STEADY_AFTER_MS = 2000;

// ---- the flood sender: `bun bench/accuracy.ts --flood <target> <rate> <address>...`, run inside the flood namespace ----

async function floodSender(target: string, rate: number, addresses: string[]): Promise<void> {
  const senders = await Promise.all(
    addresses.map(async (address, i) => ({
      event: await Bun.udpSocket({ hostname: address, port: 319 }),
      general: await Bun.udpSocket({ hostname: address, port: 320 }),
      clockIdentity: 0x02_00_00_ff_fe_00_00_00n + BigInt(i),
      sequence: 0,
    })),
  );
  let next = 0;
  // Each tick sends `perTick` datagrams, cycling Sync, Follow_Up, Announce over the senders.
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  setInterval(() => {
    for (let n = 0; n < perTick; n++) {
      const sender = senders[Math.floor(next / 3) % senders.length]!;
      const kind = next % 3;
      next++;
      const common = { domainNumber: 0, clockIdentity: sender.clockIdentity, sourcePortNumber: 1, sequenceId: sender.sequence & 0xffff };
      if (kind === 0) {
        const sync = encodeSync({ ...common, flagField: FLAG_TWO_STEP, logMessageInterval: -3, originTimestamp: ptpTimestamp(0n) });
        sender.event.send(sync, 319, target);
      } else if (kind === 1) {
        const followUp = encodeFollowUp({ ...common, flagField: 0, logMessageInterval: -3, preciseOriginTimestamp: ptpTimestamp(realtimeNs()) });
        sender.general.send(followUp, 320, target);
        sender.sequence++;
      } else {
        const announce = encodeAnnounce({
          ...common,
          flagField: 0,
          logMessageInterval: 0,
          originTimestamp: ptpTimestamp(realtimeNs()),
          currentUtcOffset: 37,
          grandmasterPriority1: 200,
          grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
          grandmasterPriority2: 128,
          grandmasterIdentity: sender.clockIdentity,
          stepsRemoved: 0,
          timeSource: 0xa0,
        });
        sender.general.send(announce, 320, target);
      }
    }
  }, tickMs);
  await new Promise(() => {});
}

// ---- the benchmark ----

interface RunResult {
  version: number;
  load: "idle" | "loaded";
  samples: number;
  firstUs: number;
  steady: ReturnType<typeof summarize>;
  eventStamping: string;
  driftPpm: number;
}

function parseArgs(argv: string[]) {
  const options = {
    seconds: 60,
    versions: [5, 10],
    loads: ["idle", "loaded"] as ("idle" | "loaded")[],
    binary: "",
    label: "",
    interfaces: [] as string[],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? "";
    if (a === "--versions") options.versions = value().split(",").map(Number);
    else if (a === "--loads") options.loads = value().split(",") as ("idle" | "loaded")[];
    else if (a === "--binary") options.binary = value();
    else if (a === "--label") options.label = value();
    else if (a === "--interfaces") options.interfaces = value().split(",");
    else if (/^[0-9]+$/.test(a)) options.seconds = Number(a);
    else throw new Error(`unknown argument ${a}`);
  }
  return options;
}

async function runOnce(
  ptp4l: string,
  binary: string,
  reader: string,
  version: number,
  load: "idle" | "loaded",
  seconds: number,
  interfaces: string[],
): Promise<RunResult> {
  const lab = PtpLab.create({ floodSenders: load === "loaded" ? FLOOD_SENDERS : 0 });
  const hogs: ReturnType<typeof Bun.spawn>[] = [];
  const trueOffset = new TrueOffset(version === 5 ? "realtime" : "monotonic-raw", readClockPair);
  try {
    await lab.startPtp4l(ptp4l);
    const shmName = `/nqptp-accuracy-${process.pid}-${version}-${load}`;
    const daemon = await lab.startDaemon(binary, [
      `--interface-version=${version}`,
      `--shm-name=${shmName}`,
      "-v",
      ...interfaces.flatMap((name) => ["--interface", name]),
    ]);
    if (load === "loaded") {
      for (let i = 0; i < 2; i++) hogs.push(Bun.spawn(["yes"], { stdout: "ignore", stderr: "ignore" }));
      lab.spawn(lab.floodNs!, [
        BUN,
        import.meta.path,
        "--flood",
        lab.slaveAddress.replace(/^10\.77\./, "10.78."),
        String(FLOOD_RATE),
        ...lab.floodAddresses,
      ]);
      await Bun.sleep(1000); // let the flood and the hogs get going before the master is chosen
    }
    for (const command of followCommands(version, shmName, lab.masterAddress)) lab.sendControl(command);
    const samples = await collectSamples({ lab, reader, shmName, version, durationMs: seconds * 1000, intervalMs: 10, trueOffset });
    if (samples.length === 0) throw new Error(`no sample published in ${seconds} s; the daemon said:\n${daemon.output()}`);
    const first = samples[0]!;
    const steady = samples.filter((s) => s.seenAtMs >= first.seenAtMs + STEADY_AFTER_MS).map((s) => s.errorNs);
    const stampingWarning = /kernel receive timestamps[^\n]*/.exec(daemon.output())?.[0];
    return {
      version,
      load,
      samples: samples.length,
      firstUs: Math.abs(Number(first.errorNs)) / 1000,
      steady: summarize(steady),
      eventStamping: stampingWarning ? `fallback (${stampingWarning.slice(0, 80)}…)` : "kernel",
      driftPpm: trueOffset.driftPpm(),
    };
  } finally {
    trueOffset.stop();
    for (const hog of hogs) hog.kill("SIGKILL");
    await lab.cleanup();
  }
}

async function main(argv: string[]) {
  if (argv[0] === "--flood") return floodSender(argv[1]!, Number(argv[2]), argv.slice(3));
  const options = parseArgs(argv);
  const reason = labUnavailableReason();
  if (reason) throw new Error(`cannot run: ${reason}`);
  const ptp4l = findPtp4l();
  if ("reason" in ptp4l) throw new Error(`cannot run: ${ptp4l.reason}`);
  const binary = options.binary || (await compiledBinary());
  const reader = await buildCReader();
  const label = options.label || (options.binary ? options.binary : "dist/nqptp");
  for (const version of options.versions) {
    for (const load of options.loads) {
      const r = await runOnce(ptp4l.path, binary, reader, version, load, options.seconds, options.interfaces);
      const s = r.steady;
      const f = (x: number) => x.toFixed(1);
      console.log(
        `accuracy [${label}] v${version} ${load.padEnd(6)}: first ${f(r.firstUs)} µs; steady n=${s.n} |error| median ${f(s.median)} ` +
          `p95 ${f(s.p95)} p99 ${f(s.p99)} max ${f(s.max)} µs` +
          (version === 5 ? "" : ` (realtime−raw drift ${r.driftPpm.toFixed(1)} ppm)`) +
          (r.eventStamping === "kernel" ? "" : `; ${r.eventStamping}`),
      );
    }
  }
  process.exit(0);
}

await main(process.argv.slice(2));
