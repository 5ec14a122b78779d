// Accuracy over a real network path, with a master clock that drifts and a path that jitters:
// what dist/nqptp publishes on interface 10, for several offset filters side by side.
//
//   bun bench/accuracy-network.ts [--seconds 60] [--drifts -50,-20,0,20,50] [--paths wire,wifi]
//       [--filters classic,tracking] [--steady-after 20] [--seed 1] [--binary dist/nqptp]
//       [--warm-up 20] [--ns-prefix nqptp-] [--offline-estimator]
//
// Needs root and `ip netns`. Per path and drift it builds the lab of test/net/netns-lab.ts (a
// master namespace and a slave namespace joined by a veth pair) and runs, in the slave, one
// daemon per filter (`--interface-version 10 --offset-filter <filter>`, each on its own ports
// and region; the filter "default" passes no --offset-filter, i.e. whatever the build does by
// default) and a probe; in the master, the master simulator below. There is no `tc netem` on
// the project's kernel, so the delay comes from the sender, after its timestamp.
//
// The master simulator (Apple-like): unicast to each daemon from the daemon's own port numbers,
// Announce at 4 Hz, two-step Sync at 8 Hz with a Follow_Up right after it, correctionField
// split between them (1.25 ms in the Sync, 1.75 ms in the Follow_Up). Its clock is this
// machine's CLOCK_MONOTONIC_RAW (namespaces share clocks) at a chosen rate and offset:
//   master(t) = t + offset0 + ppm·10^-6·(t − t0).
// For each Sync it reads the clock (the departure time the Follow_Up carries), draws one path
// delay, holds the datagrams that long and then sends the same Sync and Follow_Up to every
// daemon and to the probe, in an order that rotates with each Sync (no target always first).
//   wire: no hold (the veth and the two stacks are the path);
//   wifi: 1 ms + exponential (mean 2 ms) + 2 % spikes of 10–20 ms, as in issue 10.
// For --warm-up s first it sends to the probe only: the simulator's own send path takes tens of
// seconds to settle (its minimum delay over a veth fell from ~60 to ~35 µs over the first
// 20 s), and a path that gets faster looks like a rate to any filter.
// The probe, in the slave namespace, stamps each Sync in the kernel (SIOCGSTAMPNS) on
// CLOCK_MONOTONIC_RAW: arrival − departure is that Sync's true one-way delay, and its minimum
// over the run is the path minimum, the best any filter can do.
//
// Each daemon's region is read the way Shairport Sync 4.3 does (test/c/shm-reader.c, every
// 10 ms); every distinct record is compared with the exact truth at its own local_time:
//   error = published − (offset0 + ppm·10^-6·(local_time − t0)).
// Printed per filter: median and p99 of |error| and of the error's distance below the best
// possible (true offset − path minimum), the p1–p99 spread of the error, the first record's
// error, and the convergence time: from the first record to the first after which it stays
// within 100 µs of the final value (the steady median) for 2 s. "Steady" is from
// --steady-after s after the first record. A table for the README follows at the end.
// --offline-estimator adds a row per run for the tracking estimator alone, fed afterwards with
// the probe's samples of the same Syncs (same path, same kernel stamps, no daemon around it).

import { rmSync } from "node:fs";
import { TRACKING_IDLE, trackOffset, type TrackingState } from "../src/clock/offset/tracking.ts";
import { decode } from "../src/ptp/decode.ts";
import { encodeAnnounce, encodeFollowUp, encodeSync } from "../src/ptp/encode.ts";
import { FLAG_TWO_STEP } from "../src/ptp/types.ts";
import { LastDatagramStamper } from "../src/net/kernel-stamps.ts";
import { monotonicRawNs } from "../src/time/clocks.ts";
import { NS_PER_SECOND } from "../src/time/ns.ts";
import { buildCReader } from "../test/support/c.ts";
import { compiledBinary } from "../test/support/daemon.ts";
import { createPrng } from "../test/support/prng.ts";
import { ptpTimestamp as toTimestamp } from "../test/support/timestamp.ts";
import { BUN, PtpLab, collectSamples, labUnavailableReason, type LabProcess, type PublishedSample } from "../test/net/netns-lab.ts";

const SYNC_CORRECTION_NS = 1_250_000n;
const FOLLOW_UP_CORRECTION_NS = 1_750_000n;
const PROBE_PORT = 20_100;
const FIRST_DAEMON_PORT = 20_000;

interface PathModel {
  baseNs: number;
  expMeanNs: number;
  spikeChance: number;
  spikeMinNs: number;
  spikeMaxNs: number;
}

const PATHS: Record<string, PathModel> = {
  wire: { baseNs: 0, expMeanNs: 0, spikeChance: 0, spikeMinNs: 0, spikeMaxNs: 0 },
  wifi: { baseNs: 1_000_000, expMeanNs: 2_000_000, spikeChance: 0.02, spikeMinNs: 10_000_000, spikeMaxNs: 20_000_000 },
};

interface Target {
  address: string;
  eventPort: number;
  generalPort: number;
}

interface MasterConfig {
  address: string;
  targets: Target[];
  ppm: number;
  offset0Ns: string;
  t0Ns: string;
  path: PathModel;
  seed: number;
  clockIdentity: string;
  /** The first this many Syncs go to the last target (the probe) only. */
  warmUpSyncs: number;
}

// ---- the master simulator: `bun bench/accuracy-network.ts --master <json>`, in the master namespace ----

async function masterSimulator(config: MasterConfig): Promise<void> {
  const random = createPrng(config.seed);
  const offset0 = BigInt(config.offset0Ns);
  const t0 = BigInt(config.t0Ns);
  const masterTime = (localNs: bigint) => localNs + offset0 + BigInt(Math.round(config.ppm * 1e-6 * Number(localNs - t0)));
  const clockIdentity = BigInt(config.clockIdentity);
  const common = { domainNumber: 0, clockIdentity, sourcePortNumber: 1 };
  // A refused datagram (a daemon not up yet, or gone) is reported by the next send: not ours to fix.
  const quiet = { error: () => {} };
  const sockets = await Promise.all(
    config.targets.map(async (target) => ({
      target,
      event: await Bun.udpSocket({ hostname: config.address, port: target.eventPort, socket: quiet }),
      general: await Bun.udpSocket({ hostname: config.address, port: target.generalPort, socket: quiet }),
    })),
  );
  const send = (socket: { send(data: Uint8Array, port: number, address: string): boolean }, data: Uint8Array, port: number, address: string) => {
    try {
      socket.send(data, port, address);
    } catch {
      // ECONNREFUSED from an earlier datagram (ICMP port unreachable): the next one goes.
    }
  };
  let announceSequence = 0;
  const announce = () => {
    const bytes = encodeAnnounce({
      ...common,
      flagField: 0,
      sequenceId: announceSequence++ & 0xffff,
      logMessageInterval: -2,
      originTimestamp: toTimestamp(masterTime(monotonicRawNs())),
      currentUtcOffset: 37,
      grandmasterPriority1: 248,
      grandmasterClockQuality: { clockClass: 248, clockAccuracy: 0xfe, offsetScaledLogVariance: 0xffff },
      grandmasterPriority2: 248,
      grandmasterIdentity: clockIdentity,
      stepsRemoved: 0,
      timeSource: 0xa0,
    });
    for (const s of sockets) send(s.general, bytes, s.target.generalPort, s.target.address);
  };
  const sync = (sequenceId: number) =>
    encodeSync({
      ...common,
      flagField: FLAG_TWO_STEP,
      sequenceId,
      logMessageInterval: -3,
      correctionField: SYNC_CORRECTION_NS << 16n,
      originTimestamp: toTimestamp(0n),
    });
  const followUp = (sequenceId: number, departureMasterNs: bigint) =>
    encodeFollowUp({
      ...common,
      flagField: 0,
      sequenceId,
      logMessageInterval: -3,
      correctionField: FOLLOW_UP_CORRECTION_NS << 16n,
      preciseOriginTimestamp: toTimestamp(departureMasterNs - SYNC_CORRECTION_NS - FOLLOW_UP_CORRECTION_NS),
    });
  // Compile the encoders and send once on every socket before the first timestamp.
  followUp(0, masterTime(monotonicRawNs()));
  announce();
  setInterval(announce, 250);
  await Bun.sleep(300);

  const exp = (meanNs: number) => -Math.log(1 - random.float()) * meanNs;
  const holdUntil = async (rawNs: bigint) => {
    const remainingMs = Number(rawNs - monotonicRawNs()) / 1e6;
    if (remainingMs > 2) await Bun.sleep(remainingMs - 1.5);
    while (monotonicRawNs() < rawNs) {
      // The last stretch by spinning: a timer would add its own ms of jitter.
    }
  };
  const startMs = performance.now();
  for (let k = 0; ; k++) {
    const due = startMs + k * 125;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    const sequenceId = k & 0xffff;
    const syncBytes = sync(sequenceId);
    const departure = monotonicRawNs();
    const followUpBytes = followUp(sequenceId, masterTime(departure));
    const p = config.path;
    let holdNs = p.baseNs + (p.expMeanNs > 0 ? exp(p.expMeanNs) : 0);
    if (random.float() < p.spikeChance) holdNs += p.spikeMinNs + random.float() * (p.spikeMaxNs - p.spikeMinNs);
    if (holdNs > 0) await holdUntil(departure + BigInt(Math.round(holdNs)));
    const targets = k < config.warmUpSyncs ? sockets.slice(-1) : sockets;
    for (let i = 0; i < targets.length; i++) {
      const s = targets[(i + k) % targets.length]!;
      send(s.event, syncBytes, s.target.eventPort, s.target.address);
      send(s.general, followUpBytes, s.target.generalPort, s.target.address);
    }
    console.log(`sync ${k} ${departure}`);
  }
}

// ---- the probe: `bun bench/accuracy-network.ts --probe <address> <port>`, in the slave namespace ----

async function probe(address: string, port: number): Promise<void> {
  let stamper: LastDatagramStamper | null = null;
  let k = -1;
  let lastSequence = -1;
  const socket = await Bun.udpSocket({
    hostname: address,
    port,
    socket: {
      data(_s, data) {
        const stampNs = stamper!.stamp();
        const result = decode(data);
        if (!result.ok || result.message.kind !== "sync") return;
        // sequenceIds wrap at 65536; the master's k does not.
        const sequence = result.message.header.sequenceId;
        k += lastSequence < 0 ? sequence + 1 : (sequence - lastSequence + 0x10000) & 0xffff;
        lastSequence = sequence;
        console.log(`rx ${k} ${stampNs}`);
      },
    },
  });
  // Bun exposes the descriptor but its types do not (see src/net/udp.ts).
  stamper = new LastDatagramStamper((socket as unknown as { fd: number }).fd, "monotonic-raw");
  const refused = stamper.prime();
  console.log(refused ? `probe: no kernel stamps (${refused}); clock reads instead` : "probe ready");
  await new Promise(() => {});
}

// ---- the harness ----

interface Options {
  seconds: number;
  drifts: number[];
  paths: string[];
  filters: string[];
  steadyAfterS: number;
  seed: number;
  binary: string;
  prefix: string;
  offline: boolean;
  warmUpS: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seconds: 60,
    drifts: [-50, -20, 0, 20, 50],
    paths: ["wire", "wifi"],
    filters: ["classic", "tracking"],
    steadyAfterS: 20,
    seed: 1,
    binary: "",
    prefix: "nqptp-",
    offline: false,
    warmUpS: 20,
  };
  const list = (v: string) => v.split(",").filter((x) => x !== "");
  const number = (name: string, v: string) => {
    const n = Number(v);
    if (v === "" || !Number.isFinite(n)) throw new Error(`${name} needs a number, not ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? "";
    if (a === "--seconds") o.seconds = number(a, value());
    else if (a === "--drifts") o.drifts = list(value()).map((d) => number(a, d));
    else if (a === "--paths") o.paths = list(value());
    else if (a === "--filters") o.filters = list(value());
    else if (a === "--steady-after") o.steadyAfterS = number(a, value());
    else if (a === "--seed") o.seed = number(a, value());
    else if (a === "--binary") o.binary = value();
    else if (a === "--ns-prefix") o.prefix = value();
    else if (a === "--offline-estimator") o.offline = true;
    else if (a === "--warm-up") o.warmUpS = number(a, value());
    else throw new Error(`unknown argument ${a}`);
  }
  for (const p of o.paths) if (!(p in PATHS)) throw new Error(`unknown path ${p}: one of ${Object.keys(PATHS).join(", ")}`);
  if (o.filters.length === 0) throw new Error("--filters: at least one");
  if (o.steadyAfterS >= o.seconds) throw new Error(`--steady-after ${o.steadyAfterS} leaves nothing of a ${o.seconds} s run`);
  return o;
}

function quantile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

interface FilterResult {
  filter: string;
  n: number;
  absMedianUs: number;
  absP99Us: number;
  belowMedianUs: number;
  belowP99Us: number;
  spreadUs: number;
  firstUs: number;
  convergedS: number;
}

function analyse(filter: string, samples: Pick<PublishedSample, "localTimeNs" | "errorNs">[], pathMinNs: number, steadyAfterS: number): FilterResult {
  const first = samples[0]!;
  const steadyFrom = first.localTimeNs + BigInt(Math.round(steadyAfterS * 1e9));
  const steady = samples.filter((s) => s.localTimeNs >= steadyFrom);
  const errors = steady.map((s) => Number(s.errorNs));
  const below = errors.map((e) => -e - pathMinNs);
  const final = quantile(errors, 0.5);
  let convergedS = Infinity;
  for (let i = 0; i < samples.length && convergedS === Infinity; i++) {
    const t0 = samples[i]!.localTimeNs;
    let stays = true;
    for (let j = i; j < samples.length && samples[j]!.localTimeNs < t0 + 2n * NS_PER_SECOND; j++) {
      if (Math.abs(Number(samples[j]!.errorNs) - final) > 100_000) {
        stays = false;
        break;
      }
    }
    if (stays) convergedS = Number(t0 - first.localTimeNs) / 1e9;
  }
  const us = (ns: number) => ns / 1000;
  return {
    filter,
    n: steady.length,
    absMedianUs: us(quantile(errors.map(Math.abs), 0.5)),
    absP99Us: us(quantile(errors.map(Math.abs), 0.99)),
    belowMedianUs: us(quantile(below, 0.5)),
    belowP99Us: us(quantile(below, 0.99)),
    spreadUs: us(quantile(errors, 0.99) - quantile(errors, 0.01)),
    firstUs: us(Number(first.errorNs)),
    convergedS,
  };
}

async function runOnce(o: Options, binary: string, reader: string, pathName: string, ppm: number, seed: number) {
  const lab = PtpLab.create({ prefix: o.prefix });
  try {
    const daemons: { filter: string; shmName: string; control: number; target: Target; process: LabProcess }[] = [];
    for (const [i, filter] of o.filters.entries()) {
      const base = FIRST_DAEMON_PORT + 10 * i;
      const shmName = `/nqptp-accnet-${process.pid}-${i}`;
      const args = [
        "--interface-version=10",
        `--shm-name=${shmName}`,
        `--event-port=${base}`,
        `--general-port=${base + 1}`,
        `--control-port=${base + 2}`,
        ...(filter === "default" ? [] : [`--offset-filter=${filter}`]),
      ];
      let process_: LabProcess;
      try {
        process_ = await lab.startDaemon(binary, args);
      } catch (error) {
        throw new Error(`the daemon for filter "${filter}" did not start (${binary} ${args.join(" ")}): ${(error as Error).message}`);
      }
      daemons.push({
        filter,
        shmName,
        control: base + 2,
        target: { address: lab.slaveAddress, eventPort: base, generalPort: base + 1 },
        process: process_,
      });
    }
    const probeProcess = lab.spawn(lab.slaveNs, [BUN, import.meta.path, "--probe", lab.slaveAddress, String(PROBE_PORT)]);
    const probeSays = await probeProcess.waitFor(/probe ready|probe: no kernel stamps[^\n]*/, 10_000);
    if (probeSays !== "probe ready") console.log(`  (${probeSays})`);
    for (const d of daemons) {
      lab.sendControl(`${d.shmName} T ${lab.masterAddress}\0`, d.control);
      lab.sendControl(`${d.shmName} B\0`, d.control);
    }
    const t0 = monotonicRawNs();
    const offset0 = 4_321_000_000_000n;
    const config: MasterConfig = {
      address: lab.masterAddress,
      targets: [...daemons.map((d) => d.target), { address: lab.slaveAddress, eventPort: PROBE_PORT, generalPort: PROBE_PORT + 1 }],
      ppm,
      offset0Ns: String(offset0),
      t0Ns: String(t0),
      path: PATHS[pathName]!,
      seed,
      clockIdentity: "0x1c2a3bfffe4d5e6f",
      warmUpSyncs: Math.round(o.warmUpS * 8),
    };
    const master = lab.spawn(lab.masterNs, [BUN, import.meta.path, "--master", JSON.stringify(config)]);
    const truth = { at: (localTimeNs: bigint) => offset0 + BigInt(Math.round(ppm * 1e-6 * Number(localTimeNs - t0))) };
    const collected = await Promise.all(
      daemons.map((d) =>
        collectSamples({
          lab,
          reader,
          shmName: d.shmName,
          version: 10,
          durationMs: (o.warmUpS + o.seconds) * 1000,
          intervalMs: 10,
          trueOffset: truth,
        }),
      ),
    );
    // One-way delays, Sync by Sync, from the simulator's departures and the probe's arrivals.
    const departures = new Map<number, bigint>();
    for (const m of master.output().matchAll(/^sync (\d+) (\d+)$/gm)) departures.set(Number(m[1]), BigInt(m[2]!));
    const arrivals = [...probeProcess.output().matchAll(/^rx (\d+) (\d+)$/gm)]
      .map((m) => ({ k: Number(m[1]), rxNs: BigInt(m[2]!) }))
      .filter((a) => a.k >= config.warmUpSyncs);
    const delays: number[] = [];
    for (const a of arrivals) {
      const departure = departures.get(a.k);
      if (departure !== undefined) delays.push(Number(a.rxNs - departure));
    }
    if (delays.length === 0) throw new Error(`the probe saw no Sync; the master said:\n${master.output().slice(-2000)}`);
    const pathMinNs = Math.min(...delays);
    const results = daemons.map((d, i) => {
      const samples = collected[i]!;
      if (samples.length === 0) throw new Error(`filter ${d.filter}: nothing published in ${o.seconds} s; the daemon said:\n${d.process.output()}`);
      return analyse(d.filter, samples, pathMinNs, o.steadyAfterS);
    });
    // The estimator alone (src/clock/offset/tracking.ts) on the probe's samples of the same
    // Syncs: the same path, stamped the same way, without a daemon around it.
    let state: TrackingState = TRACKING_IDLE;
    const offline: { localTimeNs: bigint; errorNs: bigint }[] = [];
    for (const a of arrivals) {
      const departure = departures.get(a.k);
      if (departure === undefined) continue;
      const masterNs = departure + offset0 + BigInt(Math.round(ppm * 1e-6 * Number(departure - t0)));
      const step = trackOffset(state, { localTimeNs: a.rxNs, offsetNs: BigInt.asUintN(64, masterNs - a.rxNs) });
      state = step.state;
      if (step.estimate)
        offline.push({
          localTimeNs: step.estimate.localTimeNs,
          errorNs: BigInt.asIntN(64, step.estimate.offsetNs) - truth.at(step.estimate.localTimeNs),
        });
    }
    if (o.offline) results.push(analyse("estimator alone, probe stamps", offline, pathMinNs, o.steadyAfterS));
    return {
      results,
      pathMinUs: pathMinNs / 1000,
      pathP1Us: quantile(delays, 0.01) / 1000,
      pathMedianUs: quantile(delays, 0.5) / 1000,
      syncs: delays.length,
    };
  } finally {
    await lab.cleanup();
    // A daemon that did not stop within cleanup's 2 s was killed and could not remove its region.
    for (let i = 0; i < o.filters.length; i++) rmSync(`/dev/shm/nqptp-accnet-${process.pid}-${i}`, { force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--master") return masterSimulator(JSON.parse(argv[1]!) as MasterConfig);
  if (argv[0] === "--probe") return probe(argv[1]!, Number(argv[2]));
  const o = parseArgs(argv);
  const reason = labUnavailableReason();
  if (reason) throw new Error(`cannot run: ${reason}`);
  const binary = o.binary || (await compiledBinary());
  const reader = await buildCReader();
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "never");
  const rows: string[] = [];
  console.log(`accuracy-network: ${o.seconds} s per run, steady from ${o.steadyAfterS} s, filters ${o.filters.join(", ")}, binary ${binary}`);
  let seed = o.seed;
  for (const pathName of o.paths) {
    for (const ppm of o.drifts) {
      const run = await runOnce(o, binary, reader, pathName, ppm, seed++);
      for (const r of run.results) {
        const sign = ppm > 0 ? "+" : "";
        console.log(
          `accuracy-network [${r.filter}] ${pathName} ${sign}${ppm} ppm: path min ${f(run.pathMinUs)} µs (p1 ${f(run.pathP1Us)}, median ${f(run.pathMedianUs)}); steady n=${r.n} ` +
            `|error| median ${f(r.absMedianUs)} p99 ${f(r.absP99Us)} µs; below the path minimum median ${f(r.belowMedianUs)} p99 ${f(r.belowP99Us)} µs; ` +
            `p1–p99 spread ${f(r.spreadUs)} µs; first ${f(r.firstUs)} µs; converged ${Number.isFinite(r.convergedS) ? `${r.convergedS.toFixed(2)} s` : "never"}`,
        );
        rows.push(
          `| ${pathName} | ${sign}${ppm} | ${r.filter} | ${f(r.absMedianUs)} / ${f(r.absP99Us)} | ${f(r.belowMedianUs)} / ${f(r.belowP99Us)} | ${f(r.spreadUs)} | ${Number.isFinite(r.convergedS) ? r.convergedS.toFixed(2) : "never"} |`,
        );
      }
    }
  }
  console.log("\n| path | ppm | filter | \\|error\\| median / p99 (µs) | below path min median / p99 (µs) | p1–p99 spread (µs) | converged (s) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  process.exit(0);
}

await main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`accuracy-network: ${error.message}`);
  process.exit(1);
});
