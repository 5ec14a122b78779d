// Long runs: does anything grow or drift?
//
//   bun bench/soak.ts pure [hours = 24]                  the pure core, a day in seconds
//   bun bench/soak.ts daemon [seconds = 300] [flood/s = 2000]   dist/nqptp, real sockets
//   bun bench/soak.ts shell [seconds = 180] [flood/s = 2000]    the shell in this process: JS heap
//
// pure: 8 Hz Sync/Follow_Up pairs and 1 Hz Announces of a timing peer, encoded, decoded and
// reduced with a simulated local clock advancing 125 ms per pair: 691,200 pairs for 24 hours. The
// master's clock runs at ±20 ppm against ours (the offset moves 1.7 s over the day), network delay
// is 50–400 µs with a 2 % chance of a 2–20 ms spike, and five non-peer clocks chatter alongside.
// Interfaces 5 and 10. Reports heapUsed start/end (after a full GC), the largest table, sample
// ring and log-limiter map seen, and the published offset against the true one at the end.
//
// daemon: the simulator at 127.0.0.2 (8 Hz) as the timing peer, plus a flood of valid-looking
// PTP from 100 loopback addresses (child process, bench/flood.ts); samples RSS, threads, CPU and
// the published offset every 10 s.
//
// shell: the same traffic into src/daemon/daemon.ts's startDaemon() running in this process (real
// sockets, real shm, log lines kept in memory), so that the JavaScript heap itself can be read
// after a full collection every 30 s: RSS alone cannot tell a leak from the allocator's slack.

import { createTracker, reduce, type TrackerState } from "../src/clock/tracker.ts";
import { decode } from "../src/ptp/decode.ts";
import { encodeAnnounce, encodeFollowUp, encodeSync } from "../src/ptp/encode.ts";
import { FLAG_TWO_STEP } from "../src/ptp/types.ts";
import { createPrng } from "../test/support/prng.ts";
import { trackerOptions } from "../test/clock/helpers.ts";
import { ptpTimestamp } from "../test/support/timestamp.ts";

const S = 1_000_000_000n;
const U64 = 1n << 64n;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;

function heap(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed;
}

interface PureResult {
  version: number;
  ppm: number;
  pairs: number;
  seconds: number;
  heapStart: number;
  heapEnd: number;
  heapMax: number;
  maxRecords: number;
  maxSamples: number;
  maxLogKeys: number;
  publishes: number;
  finalErrorNs: bigint;
  maxErrorLastHourNs: bigint;
}

function pureRun(version: 5 | 10, hours: number, ppm: number, seed: number): PureResult {
  const random = createPrng(seed);
  const PEER = "192.168.1.7";
  const PEER_ID = 0x00aa_bbff_fecc_dd01n;
  const OTHERS = ["192.168.1.20", "192.168.1.21", "192.168.1.22", "fe80::1c2a:3bff:fe4d:5e6f", "192.168.1.23"];
  const T0 = 1_700_000_000n * S; // local clock at the start
  const OFFSET0 = 3_600n * S + 123_456_789n; // master − local at the start
  const pairs = Math.round(hours * 3600 * 8);

  let state: TrackerState = createTracker(trackerOptions({ interfaceVersion: version }));
  if (version === 5) state = reduce(state, { kind: "timing-peers", addresses: [PEER] }, T0).state;
  else {
    state = reduce(state, { kind: "follow", address: PEER }, T0).state;
    state = reduce(state, { kind: "play-begin" }, T0).state;
  }

  const trueOffset = (localNs: bigint) => OFFSET0 + ((localNs - T0) * BigInt(Math.round(ppm * 1000))) / 1_000_000_000n;
  const header = (id: bigint, seq: number) => ({
    transportSpecific: 1,
    domainNumber: 0,
    clockIdentity: id,
    sourcePortNumber: 1,
    sequenceId: seq & 0xffff,
  });
  const announceOf = (id: bigint, seq: number, priority1: number) =>
    encodeAnnounce({
      ...header(id, seq),
      flagField: 0x0408,
      logMessageInterval: 0,
      originTimestamp: { seconds: 0n, nanoseconds: 0 },
      currentUtcOffset: 37,
      grandmasterPriority1: priority1,
      grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
      grandmasterPriority2: 248,
      grandmasterIdentity: id,
      stepsRemoved: 0,
      timeSource: 0xa0,
    });

  let maxRecords = 0;
  let maxSamples = 0;
  let maxLogKeys = 0;
  let publishes = 0;
  let lastPublished: { localTimeNs: bigint; offsetNs: bigint } | null = null;
  let maxErrorLastHourNs = 0n;
  const heapStart = heap();
  let heapMax = heapStart;
  const lastHourFrom = pairs - 3600 * 8;

  const feed = (source: string, bytes: Uint8Array, nowNs: bigint) => {
    const result = decode(bytes);
    if (!result.ok) throw new Error(`soak: a valid message did not decode: ${result.error.kind}`);
    const step = reduce(state, { kind: "ptp", source, message: result.message, receivedAtNs: nowNs }, nowNs);
    state = step.state;
    for (const effect of step.effects) {
      if (effect.kind === "publish" && effect.master !== null) {
        publishes++;
        lastPublished = { localTimeNs: effect.master.localTimeNs, offsetNs: effect.master.offsetNs };
      }
    }
  };

  for (let i = 0; i < pairs; i++) {
    const sendLocal = T0 + BigInt(i) * (S / 8n); // when the master sends, in local time
    const delay = random.float() < 0.02 ? BigInt(random.int(2_000_000, 20_000_000)) : BigInt(random.int(50_000, 400_000));
    const arrival = sendLocal + delay;
    const masterTime = sendLocal + trueOffset(sendLocal);
    if (i % 8 === 0) feed(PEER, announceOf(PEER_ID, i / 8, 128), arrival - 1_000_000n);
    feed(
      PEER,
      encodeSync({ ...header(PEER_ID, i), flagField: FLAG_TWO_STEP, logMessageInterval: -3, originTimestamp: { seconds: 0n, nanoseconds: 0 } }),
      arrival,
    );
    feed(
      PEER,
      encodeFollowUp({ ...header(PEER_ID, i), flagField: 0, logMessageInterval: -3, preciseOriginTimestamp: ptpTimestamp(masterTime) }),
      arrival + 200_000n,
    );
    // Five other clocks on the LAN, one message each per second between them.
    if (i % 8 === 4) {
      const k = Math.floor(i / 8) % OTHERS.length;
      const id = 0x0066_0000_0000_0000n | BigInt(k + 1);
      const seq = Math.floor(Math.floor(i / 8) / OTHERS.length);
      const phase = seq % 3;
      const bytes =
        phase === 0
          ? announceOf(id, seq, 10)
          : phase === 1
            ? encodeSync({ ...header(id, seq), flagField: FLAG_TWO_STEP, logMessageInterval: -3, originTimestamp: { seconds: 0n, nanoseconds: 0 } })
            : encodeFollowUp({
                ...header(id, seq - 1),
                flagField: 0,
                logMessageInterval: -3,
                preciseOriginTimestamp: ptpTimestamp(sendLocal + 5n * S),
              });
      feed(OTHERS[k]!, bytes, arrival + 3_000_000n);
    }
    if (i % 64 === 0) {
      maxRecords = Math.max(maxRecords, state.records.size);
      maxLogKeys = Math.max(maxLogKeys, state.logLimits.size);
      for (const r of state.records.values()) maxSamples = Math.max(maxSamples, r.samples.length);
    }
    if (i >= lastHourFrom && lastPublished !== null) {
      const p = lastPublished as { localTimeNs: bigint; offsetNs: bigint };
      const error = BigInt.asIntN(64, p.offsetNs - (((trueOffset(p.localTimeNs) % U64) + U64) % U64));
      const abs = error < 0n ? -error : error;
      if (abs > maxErrorLastHourNs) maxErrorLastHourNs = abs;
    }
    if (i % (3600 * 8) === 0 && i > 0) heapMax = Math.max(heapMax, heap());
  }
  const heapEnd = heap();
  const p = lastPublished as { localTimeNs: bigint; offsetNs: bigint } | null;
  const finalError = p === null ? -1n : BigInt.asIntN(64, p.offsetNs - trueOffset(p.localTimeNs));
  return {
    version,
    ppm,
    pairs,
    seconds: pairs / 8,
    heapStart,
    heapEnd,
    heapMax: Math.max(heapMax, heapEnd),
    maxRecords,
    maxSamples,
    maxLogKeys,
    publishes,
    finalErrorNs: finalError,
    maxErrorLastHourNs,
  };
}

function pureMain(hours: number) {
  for (const version of [5, 10] as const) {
    for (const ppm of [20, -20]) {
      const started = performance.now();
      const r = pureRun(version, hours, ppm, 42);
      const secs = (performance.now() - started) / 1000;
      console.log(
        `soak pure: interface ${version}, master ${ppm > 0 ? "+" : ""}${ppm} ppm, ${r.pairs} Sync/Follow_Up pairs + ${r.pairs / 8} Announces ` +
          `(${(r.seconds / 3600).toFixed(1)} h simulated) in ${secs.toFixed(1)} s; heapUsed ${mb(r.heapStart)} → ${mb(r.heapEnd)} (max ${mb(r.heapMax)}); ` +
          `records max ${r.maxRecords}, sample ring max ${r.maxSamples}, log-limit keys max ${r.maxLogKeys}; ${r.publishes} publishes; ` +
          `final offset error ${(Number(r.finalErrorNs) / 1000).toFixed(1)} µs, last hour max |error| ${(Number(r.maxErrorLastHourNs) / 1000).toFixed(1)} µs`,
      );
    }
  }
}

async function daemonMain(seconds: number, floodRate: number) {
  const { readShm, offsetError } = await import("../test/e2e/support.ts");
  const { cpuTicks, spawnFloodSender, statusField, startDaemonWithMaster } = await import("./flood.ts");
  const { daemon, master, MASTER_ID, MASTER_OFFSET } = await startDaemonWithMaster();
  const pid = daemon.proc.pid;
  await Bun.sleep(3000);
  const sender = spawnFloodSender({
    target: "127.0.0.1",
    eventPort: daemon.ports.event,
    generalPort: daemon.ports.general,
    sources: 100,
    ratePerSecond: floodRate,
    durationMs: seconds * 1000,
  });
  const rss: number[] = [];
  let published = 0;
  let samples = 0;
  let maxError = 0n;
  let maxThreads = 0;
  const ticks0 = cpuTicks(pid);
  const wall0 = performance.now();
  const lines0 = daemon.output().split("\n").length;
  while (performance.now() - wall0 < seconds * 1000 && daemon.proc.exitCode === null) {
    const r = await readShm(daemon.shmName, 5);
    samples++;
    if (BigInt(r.clock_id) === MASTER_ID) published++;
    const e = offsetError(r.offset, MASTER_OFFSET);
    if (e > maxError) maxError = e;
    rss.push(statusField(pid, "VmRSS"));
    maxThreads = Math.max(maxThreads, statusField(pid, "Threads"));
    await Bun.sleep(10_000);
  }
  const flood = await sender.result();
  const cpu = (cpuTicks(pid) - ticks0) / 100 / ((performance.now() - wall0) / 1000);
  const rssEnd = statusField(pid, "VmRSS");
  const newLines = daemon
    .output()
    .split("\n")
    .slice(lines0 - 1)
    .filter((l) => l.trim().length > 0);
  const lines = newLines.length;
  const aboveDebug = newLines.filter((l) => !/\[debug\]|<7>/.test(l)).length;
  // RSS once a minute, to show the trend.
  const perMinute = rss
    .filter((_, i) => i % 6 === 0)
    .map((k) => (k / 1024).toFixed(1))
    .join(" ");
  master.stop();
  const code = await daemon.stop();
  const firstMinute = rss.slice(0, 6);
  const lastMinute = rss.slice(-6);
  const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length) / 1024;
  console.log(
    `soak daemon: ${seconds} s of 8 Hz master + ${flood.sent} flood datagrams (${floodRate}/s, 100 addresses); ` +
      `RSS ${(rss[0]! / 1024).toFixed(1)} → ${(rssEnd / 1024).toFixed(1)} MiB (first-minute avg ${avg(firstMinute).toFixed(1)}, last-minute avg ${avg(lastMinute).toFixed(1)}, max ${(Math.max(...rss) / 1024).toFixed(1)}); ` +
      `threads max ${maxThreads}; CPU ${(cpu * 100).toFixed(1)}%; master published ${published}/${samples} samples, offset error ≤ ${(Number(maxError) / 1e6).toFixed(3)} ms; ` +
      `${lines} log lines (${aboveDebug} above debug); exit ${code}\n  RSS each minute (MiB): ${perMinute}`,
  );
}

async function shellMain(seconds: number, floodRate: number) {
  const { startDaemon } = await import("../src/daemon/daemon.ts");
  const { DEFAULTS } = await import("../src/daemon/options.ts");
  const { createLogger, memoryReporter } = await import("../src/daemon/log.ts");
  const { randomPorts, uniqueShmName } = await import("../test/support/daemon.ts");
  const { startPtpMaster } = await import("../test/support/ptp-master.ts");
  const { readShm, sendControl } = await import("../test/e2e/support.ts");
  const { realtimeNs } = await import("../src/time/clocks.ts");
  const { spawnFloodSender } = await import("./flood.ts");
  const MASTER_ID = 0x00aa_bbff_fecc_dd01n;
  const ports = randomPorts();
  const shmName = uniqueShmName("soak-shell");
  const lines: { level: number; tag: string; message: string }[] = [];
  const daemon = await startDaemon(
    {
      interfaceVersion: 5,
      shmName,
      controlPort: ports.control,
      controlAddresses: ["127.0.0.1"],
      eventPort: ports.event,
      generalPort: ports.general,
      ptpAddresses: ["127.0.0.1"],
      interfaces: [],
      allowRemoteControl: false,
      offsetFilter: DEFAULTS.offsetFilter,
      maxClients: DEFAULTS.maxClients,
      verbosity: 1,
    },
    { logger: createLogger({ verbosity: 1, reporters: [memoryReporter(lines)] }) },
  );
  const master = await startPtpMaster({
    address: "127.0.0.2",
    target: "127.0.0.1",
    eventPort: ports.event,
    generalPort: ports.general,
    clockIdentity: MASTER_ID,
    offsetNs: 1_234_567_890_123n,
    clock: realtimeNs,
  });
  await sendControl("T 127.0.0.2\0", ports.control);
  await Bun.sleep(3000);
  const sender = spawnFloodSender({
    target: "127.0.0.1",
    eventPort: ports.event,
    generalPort: ports.general,
    sources: 100,
    ratePerSecond: floodRate,
    durationMs: seconds * 1000,
  });
  const heaps: number[] = [];
  const started = performance.now();
  let published = 0;
  let samples = 0;
  while (performance.now() - started < seconds * 1000) {
    heaps.push(heap());
    const r = await readShm(shmName, 5);
    samples++;
    if (BigInt(r.clock_id) === MASTER_ID) published++;
    await Bun.sleep(30_000);
  }
  await sender.result();
  const end = heap();
  const stats = daemon.stats();
  master.stop();
  daemon.stop();
  console.log(
    `soak shell: ${seconds} s of 8 Hz master + ${floodRate}/s flood from 100 addresses into startDaemon() in-process; ` +
      `heapUsed after full GC, every 30 s (MiB): ${[...heaps, end].map((h) => (h / 1024 / 1024).toFixed(2)).join(" ")}; ` +
      `datagrams ${stats.ptp.datagrams.event + stats.ptp.datagrams.general}, shm writes ${stats.shm.written}; master published ${published}/${samples}; ` +
      `${lines.length} log lines at -v (${lines.filter((l) => l.level < 4).length} above debug)`,
  );
}

const mode = process.argv[2] ?? "pure";
if (mode === "pure" || mode === "all") pureMain(Number(process.argv[3] ?? 24));
if (mode === "shell") await shellMain(Number(process.argv[3] ?? 180), Number(process.argv[4] ?? 2000));
if (mode === "daemon" || mode === "all")
  await daemonMain(Number(process.argv[mode === "all" ? 4 : 3] ?? 300), Number(process.argv[mode === "all" ? 5 : 4] ?? 2000));
