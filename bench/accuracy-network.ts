// Accuracy over a real network path, with a master clock that drifts and a path that jitters:
// what dist/nqptp publishes on interface 10, for several offset filters side by side.
//
//   bun bench/accuracy-network.ts [--scenario steady|episodes|wander] [--seconds N] [--drifts a,b]
//       [--paths wire,wifi] [--filters classic,tracking] [--steady-after N] [--seed 1]
//       [--binary dist/nqptp] [--old-binary PATH] [--warm-up 20] [--ns-prefix nqptp-]
//       [--offline-estimator] [--save DIR]
//
// Scenarios (plan() below): "steady" (the default): per path and drift (wire −50, +50; Wi-Fi 0,
// −20, +50), 240 s, steady from 120 s, once the rate's baseline is full. "episodes": one run per
// path (wire −50 ppm, Wi-Fi +50) with standing queues, power-save delay and genuine steps of the
// master's time, each measured against the track before it. "wander": the rate wanders ±1 ppm
// over 5 minutes. --old-binary adds a daemon of another build with --offset-filter tracking
// (say, the last release's), on the same Syncs.
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
// machine's CLOCK_MONOTONIC_RAW (namespaces share clocks) at a chosen rate and offset, with the
// run's wander and steps (masterOffsetNs):
//   master(t) = t + offset0 + ppm·10^-6·(t − t0) + wander(t) + steps(t).
// For each Sync it reads the clock (the departure time the Follow_Up carries), draws one path
// delay, holds the datagrams that long and then sends the same Sync and Follow_Up to every
// daemon and to the probe, in an order that rotates with each Sync (no target always first).
//   wire: no hold (the veth and the two stacks are the path);
//   wifi: 1 ms + exponential (mean 2 ms) + 2 % spikes of 10–20 ms, as in issue 10;
// plus, in an episode, a standing queue's constant extra hold or power-save's uniform one.
// For --warm-up s first it sends to the probe only: the simulator's own send path takes tens of
// seconds to settle (its minimum delay over a veth fell from ~60 to ~35 µs over the first
// 20 s), and a path that gets faster looks like a rate to any filter.
// The probe, in the slave namespace, stamps each Sync in the kernel (SIOCGSTAMPNS) on
// CLOCK_MONOTONIC_RAW: arrival − departure is that Sync's true one-way delay, and its minimum
// over the run is the path minimum, the best any filter can do.
//
// Each daemon's region is read the way Shairport Sync 4.3 does (test/c/shm-reader.c, every
// 10 ms); every distinct record is compared with the exact truth at its own local_time:
//   error = published − master offset at local_time.
// Printed per filter: steady, the median of |error| and the median and p99 of the error's
// distance below the best possible (true offset − path minimum; the minimum over the Syncs
// outside every episode), and the error's p1–p99 spread; per episode, the largest excursion
// from the track before it and how far off it still is from 2 s after it ends; per step, when it
// was taken (within 1 ms), when followed (within 100 µs for good) and the fastest move. A table
// for the README follows at the end. Times are seconds after the warm-up.
// --offline-estimator adds a row per run for the tracking estimator alone, fed afterwards with
// the probe's samples of the same Syncs (same path, same kernel stamps, no daemon around it).

import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TRACKING_IDLE, trackOffset, type TrackingState } from "../src/clock/offset/tracking.ts";
import { decode } from "../src/ptp/decode.ts";
import { encodeAnnounce, encodeFollowUp, encodeSync } from "../src/ptp/encode.ts";
import { FLAG_TWO_STEP } from "../src/ptp/types.ts";
import { LastDatagramStamper } from "../src/net/kernel-stamps.ts";
import { monotonicRawNs } from "../src/time/clocks.ts";
import { buildCReader } from "../test/support/c.ts";
import { compiledBinary } from "../test/support/daemon.ts";
import { createPrng } from "../test/support/prng.ts";
import { ptpTimestamp as toTimestamp } from "../test/support/timestamp.ts";
import { BUN, PtpLab, collectSamples, labUnavailableReason, type LabProcess } from "../test/net/netns-lab.ts";

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
  /** The rate also wanders: ± amplitudePpm, a sine of periodS. */
  sine?: { amplitudePpm: number; periodS: number };
  /** Steps of the master's time: by ns, at s after the warm-up (they persist). */
  steps: { atS: number; ns: number }[];
  /** Extra delay for every Sync sent in [atS, atS + seconds) after the warm-up: a standing queue (ms), or power-save (uniform 0–ms). */
  episodes: Episode[];
}

interface Episode {
  kind: "queue" | "power-save";
  atS: number;
  seconds: number;
  ms: number;
}

/**
 * The master's offset from this machine's CLOCK_MONOTONIC_RAW at local time `localNs`, exactly as
 * the simulator keeps its clock (and so the truth the daemons are held to): offset0, the rate
 * (and its wander) since t0, and the steps so far.
 */
function masterOffsetNs(config: MasterConfig, localNs: bigint): bigint {
  const t = Number(localNs - BigInt(config.t0Ns));
  let drift = config.ppm * 1e-6 * t;
  if (config.sine) {
    const w = (2 * Math.PI) / (config.sine.periodS * 1e9);
    drift += ((config.sine.amplitudePpm * 1e-6) / w) * (1 - Math.cos(w * t));
  }
  const sinceWarmUpS = t / 1e9 - config.warmUpSyncs / 8;
  let steps = 0;
  for (const step of config.steps) if (sinceWarmUpS >= step.atS) steps += step.ns;
  return BigInt(config.offset0Ns) + BigInt(Math.round(drift)) + BigInt(steps);
}

/** Extra delay (ns) of a Sync sent `sinceWarmUpS` after the warm-up, drawn from `random` when in a power-save episode. */
function episodeDelayNs(episodes: readonly Episode[], sinceWarmUpS: number, draw: number): number {
  for (const e of episodes) {
    if (sinceWarmUpS < e.atS || sinceWarmUpS >= e.atS + e.seconds) continue;
    return e.kind === "queue" ? e.ms * 1e6 : draw * e.ms * 1e6;
  }
  return 0;
}

// ---- the master simulator: `bun bench/accuracy-network.ts --master <json>`, in the master namespace ----

async function masterSimulator(config: MasterConfig): Promise<void> {
  const random = createPrng(config.seed);
  const masterTime = (localNs: bigint) => localNs + masterOffsetNs(config, localNs);
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
    holdNs += episodeDelayNs(config.episodes, k / 8 - config.warmUpSyncs / 8, random.float());
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

type ScenarioName = "steady" | "episodes" | "wander";

interface Options {
  scenario: ScenarioName;
  seconds: number | null;
  drifts: number[] | null;
  paths: string[];
  filters: string[];
  steadyAfterS: number | null;
  seed: number;
  binary: string;
  oldBinary: string;
  prefix: string;
  offline: boolean;
  warmUpS: number;
  /** Write each run's master config and the probe's Syncs (k, departure, arrival) here, to replay offline. */
  saveDir: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    scenario: "steady",
    seconds: null,
    drifts: null,
    paths: ["wire", "wifi"],
    filters: ["classic", "tracking"],
    steadyAfterS: null,
    seed: 1,
    binary: "",
    oldBinary: "",
    prefix: "nqptp-",
    offline: false,
    warmUpS: 20,
    saveDir: "",
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
    if (a === "--scenario") {
      const v = value();
      if (v !== "steady" && v !== "episodes" && v !== "wander")
        throw new Error(`--scenario: one of steady, episodes, wander, not ${JSON.stringify(v)}`);
      o.scenario = v;
    } else if (a === "--seconds") o.seconds = number(a, value());
    else if (a === "--drifts") o.drifts = list(value()).map((d) => number(a, d));
    else if (a === "--paths") o.paths = list(value());
    else if (a === "--filters") o.filters = list(value());
    else if (a === "--steady-after") o.steadyAfterS = number(a, value());
    else if (a === "--seed") o.seed = number(a, value());
    else if (a === "--binary") o.binary = value();
    else if (a === "--old-binary") o.oldBinary = value();
    else if (a === "--ns-prefix") o.prefix = value();
    else if (a === "--offline-estimator") o.offline = true;
    else if (a === "--warm-up") o.warmUpS = number(a, value());
    else if (a === "--save") o.saveDir = value();
    else throw new Error(`unknown argument ${a}`);
  }
  for (const p of o.paths) if (!(p in PATHS)) throw new Error(`unknown path ${p}: one of ${Object.keys(PATHS).join(", ")}`);
  if (o.filters.length === 0) throw new Error("--filters: at least one");
  return o;
}

/** One lab run: a path, a drift, how long, and what happens in it (seconds after the warm-up). */
interface RunPlan {
  path: string;
  ppm: number;
  seconds: number;
  steady: { fromS: number; toS: number };
  sine?: { amplitudePpm: number; periodS: number };
  steps: { atS: number; ns: number }[];
  episodes: Episode[];
}

/**
 * The runs of a scenario. "steady": per path and drift, the steady figures once the rate's
 * baseline is full. "episodes": one long run per path in which, after 150 s on the steady
 * track, standing queues of 5, 40 and 100 ms for 15 s, power-save delay (0–100 ms, uniform) for
 * 20 s, the same queues for 90 s, then a step of the master's time down by 50 ms (it persists)
 * and, 110 s later, one up by 50 ms. "wander": the rate wanders ±1 ppm over 5 minutes.
 */
function plan(o: Options): RunPlan[] {
  const runs: RunPlan[] = [];
  for (const path of o.paths) {
    if (o.scenario === "steady") {
      const seconds = o.seconds ?? 240;
      const drifts = o.drifts ?? (path === "wire" ? [-50, 50] : [0, -20, 50]);
      for (const ppm of drifts) runs.push({ path, ppm, seconds, steady: { fromS: o.steadyAfterS ?? 120, toS: seconds }, steps: [], episodes: [] });
    } else if (o.scenario === "wander") {
      const seconds = o.seconds ?? 600;
      runs.push({
        path,
        ppm: 20,
        seconds,
        steady: { fromS: o.steadyAfterS ?? 60, toS: seconds },
        sine: { amplitudePpm: 1, periodS: 300 },
        steps: [],
        episodes: [],
      });
    } else {
      const episodes: Episode[] = [
        { kind: "queue", atS: 150, seconds: 15, ms: 5 },
        { kind: "queue", atS: 190, seconds: 15, ms: 40 },
        { kind: "queue", atS: 230, seconds: 15, ms: 100 },
        { kind: "power-save", atS: 270, seconds: 20, ms: 100 },
        { kind: "queue", atS: 315, seconds: 90, ms: 40 },
        { kind: "queue", atS: 430, seconds: 90, ms: 5 },
        { kind: "queue", atS: 545, seconds: 90, ms: 100 },
      ];
      const steps = [
        { atS: 660, ns: -50_000_000 },
        { atS: 770, ns: 50_000_000 },
      ];
      runs.push({
        path,
        ppm: (o.drifts ?? [path === "wire" ? -50 : 50])[0]!,
        seconds: o.seconds ?? 820,
        steady: { fromS: 120, toS: 150 },
        steps,
        episodes,
      });
    }
  }
  return runs;
}

function quantile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** A published record: seconds after the warm-up, and its error (published − truth), ns. */
interface Point {
  t: number;
  errorNs: number;
}

interface Steady {
  n: number;
  absMedianUs: number;
  belowMedianUs: number;
  belowP99Us: number;
  spreadUs: number;
}

/** Steady figures over [fromS, toS): |error|, and how far below the best possible (true offset − path minimum). */
function steadyFigures(points: Point[], pathMinNs: number, fromS: number, toS: number): Steady {
  const errors = points.filter((p) => p.t >= fromS && p.t < toS).map((p) => p.errorNs);
  const below = errors.map((e) => -e - pathMinNs);
  const us = (ns: number) => ns / 1000;
  return {
    n: errors.length,
    absMedianUs: us(quantile(errors.map(Math.abs), 0.5)),
    belowMedianUs: us(quantile(below, 0.5)),
    belowP99Us: us(quantile(below, 0.99)),
    spreadUs: us(quantile(errors, 0.99) - quantile(errors, 0.01)),
  };
}

/** The median error of the 10 s before `atS`: the track an episode or a step is measured against. */
function trackBefore(points: Point[], atS: number): number {
  return quantile(
    points.filter((p) => p.t >= atS - 10 && p.t < atS).map((p) => p.errorNs),
    0.5,
  );
}

/** An episode of delay: the largest excursion from the track before it (to 20 s after it), and how far off it still is from 2 s after it ends (to 20 s after). */
function episodeFigures(points: Point[], e: Episode): { largestUs: number; afterUs: number; restarted: boolean } {
  const track = trackBefore(points, e.atS);
  const end = e.atS + e.seconds;
  let largest = 0;
  let after = 0;
  for (const p of points) {
    if (p.t >= e.atS && p.t < end + 20) largest = Math.max(largest, Math.abs(p.errorNs - track));
    if (p.t >= end + 2 && p.t < end + 20) after = Math.max(after, Math.abs(p.errorNs - track));
  }
  return { largestUs: largest / 1000, afterUs: after / 1000, restarted: largest > 1_000_000 };
}

/**
 * A genuine step at atS: when it was taken (the error first within 1 ms of the track before
 * it, against the new truth), when it was followed for good (within 100 µs of it from then to
 * `untilS`), and the fastest the published offset moved on the way (ms per s).
 */
function stepFigures(points: Point[], atS: number, untilS: number): { takenS: number; followedS: number; fastestMsPerS: number } {
  const track = trackBefore(points, atS);
  const segment = points.filter((p) => p.t >= atS && p.t < untilS);
  const taken = segment.find((p) => Math.abs(p.errorNs - track) <= 1_000_000);
  let followed = atS;
  for (const p of segment) if (Math.abs(p.errorNs - track) > 100_000) followed = p.t;
  let fastest = 0;
  for (let i = 1; i < segment.length; i++) {
    const dt = segment[i]!.t - segment[i - 1]!.t;
    if (dt > 0) fastest = Math.max(fastest, Math.abs(segment[i]!.errorNs - segment[i - 1]!.errorNs) / 1e6 / dt);
  }
  return { takenS: taken ? taken.t - atS : Infinity, followedS: followed - atS, fastestMsPerS: fastest };
}

interface Daemon {
  filter: string;
  shmName: string;
  control: number;
  target: Target;
  process: LabProcess;
}

/** One daemon per filter (and the old build's tracking filter with --old-binary), each on its own ports and region. */
async function startDaemons(lab: PtpLab, o: Options, binary: string): Promise<Daemon[]> {
  const specs: { filter: string; binary: string; flag: string | null }[] = o.filters.map((filter) => ({
    filter,
    binary,
    flag: filter === "default" ? null : filter,
  }));
  if (o.oldBinary) specs.push({ filter: "tracking, before", binary: o.oldBinary, flag: "tracking" });
  const daemons: Daemon[] = [];
  for (const [i, spec] of specs.entries()) {
    const base = FIRST_DAEMON_PORT + 10 * i;
    const shmName = `/nqptp-accnet-${process.pid}-${i}`;
    const args = [
      "--interface-version=10",
      `--shm-name=${shmName}`,
      `--event-port=${base}`,
      `--general-port=${base + 1}`,
      `--control-port=${base + 2}`,
      ...(spec.flag === null ? [] : [`--offset-filter=${spec.flag}`]),
    ];
    let started: LabProcess;
    try {
      started = await lab.startDaemon(spec.binary, args);
    } catch (error) {
      throw new Error(`the daemon for filter "${spec.filter}" did not start (${spec.binary} ${args.join(" ")}): ${(error as Error).message}`);
    }
    daemons.push({
      filter: spec.filter,
      shmName,
      control: base + 2,
      target: { address: lab.slaveAddress, eventPort: base, generalPort: base + 1 },
      process: started,
    });
  }
  return daemons;
}

/** One-way delays, Sync by Sync, from the simulator's departures and the probe's arrivals (after the warm-up). */
function pathDelays(masterOutput: string, probeOutput: string, warmUpSyncs: number) {
  const departures = new Map<number, bigint>();
  for (const m of masterOutput.matchAll(/^sync (\d+) (\d+)$/gm)) departures.set(Number(m[1]), BigInt(m[2]!));
  const arrivals = [...probeOutput.matchAll(/^rx (\d+) (\d+)$/gm)]
    .map((m) => ({ k: Number(m[1]), rxNs: BigInt(m[2]!) }))
    .filter((a) => a.k >= warmUpSyncs);
  const delays: { k: number; departure: bigint; rxNs: bigint; delayNs: number }[] = [];
  for (const a of arrivals) {
    const departure = departures.get(a.k);
    if (departure !== undefined) delays.push({ k: a.k, departure, rxNs: a.rxNs, delayNs: Number(a.rxNs - departure) });
  }
  return delays;
}

async function runOnce(o: Options, binary: string, reader: string, run: RunPlan, seed: number) {
  const lab = PtpLab.create({ prefix: o.prefix });
  const daemonCount = o.filters.length + (o.oldBinary ? 1 : 0);
  try {
    const daemons = await startDaemons(lab, o, binary);
    const probeProcess = lab.spawn(lab.slaveNs, [BUN, import.meta.path, "--probe", lab.slaveAddress, String(PROBE_PORT)]);
    const probeSays = await probeProcess.waitFor(/probe ready|probe: no kernel stamps[^\n]*/, 10_000);
    if (probeSays !== "probe ready") console.log(`  (${probeSays})`);
    for (const d of daemons) {
      lab.sendControl(`${d.shmName} T ${lab.masterAddress}\0`, d.control);
      lab.sendControl(`${d.shmName} B\0`, d.control);
    }
    const t0 = monotonicRawNs();
    const config: MasterConfig = {
      address: lab.masterAddress,
      targets: [...daemons.map((d) => d.target), { address: lab.slaveAddress, eventPort: PROBE_PORT, generalPort: PROBE_PORT + 1 }],
      ppm: run.ppm,
      offset0Ns: String(4_321_000_000_000n),
      t0Ns: String(t0),
      path: PATHS[run.path]!,
      seed,
      clockIdentity: "0x1c2a3bfffe4d5e6f",
      warmUpSyncs: Math.round(o.warmUpS * 8),
      sine: run.sine,
      steps: run.steps,
      episodes: run.episodes,
    };
    const master = lab.spawn(lab.masterNs, [BUN, import.meta.path, "--master", JSON.stringify(config)]);
    const truth = { at: (localTimeNs: bigint) => masterOffsetNs(config, localTimeNs) };
    const collected = await Promise.all(
      daemons.map((d) =>
        collectSamples({
          lab,
          reader,
          shmName: d.shmName,
          version: 10,
          durationMs: (o.warmUpS + run.seconds) * 1000,
          intervalMs: 10,
          trueOffset: truth,
        }),
      ),
    );
    const delays = pathDelays(master.output(), probeProcess.output(), config.warmUpSyncs);
    if (delays.length === 0) throw new Error(`the probe saw no Sync; the master said:\n${master.output().slice(-2000)}`);
    if (o.saveDir) {
      const file = join(o.saveDir, `${run.path}-${run.ppm}-${seed}.json`);
      const published = Object.fromEntries(daemons.map((d, i) => [d.filter, collected[i]!.map((s) => [String(s.localTimeNs), String(s.errorNs)])]));
      writeFileSync(file, JSON.stringify({ config, syncs: delays.map((d) => [d.k, String(d.departure), String(d.rxNs)]), published }));
      console.log(`  (saved ${delays.length} Syncs and what each daemon published to ${file})`);
    }
    // The path's own minimum: from the Syncs outside every episode (a queue's Syncs are late on purpose).
    const quiet = delays.filter(
      (d) =>
        episodeDelayNs(run.episodes, d.k / 8 - config.warmUpSyncs / 8, 0) === 0 &&
        !run.episodes.some((e) => e.kind === "power-save" && d.k / 8 - o.warmUpS >= e.atS && d.k / 8 - o.warmUpS < e.atS + e.seconds),
    );
    const pathMinNs = Math.min(...quiet.map((d) => d.delayNs));
    const toPoints = (samples: { localTimeNs: bigint; errorNs: bigint }[]): Point[] =>
      samples.map((s) => ({ t: Number(s.localTimeNs - t0) / 1e9 - o.warmUpS, errorNs: Number(s.errorNs) }));
    const results = daemons.map((d, i) => {
      const samples = collected[i]!;
      if (samples.length === 0) throw new Error(`filter ${d.filter}: nothing published in ${run.seconds} s; the daemon said:\n${d.process.output()}`);
      return { filter: d.filter, points: toPoints(samples) };
    });
    if (o.offline) results.push({ filter: "estimator alone, probe stamps", points: toPoints(offlineEstimate(delays, config, truth)) });
    return {
      results,
      pathMinNs,
      pathMedianUs:
        quantile(
          quiet.map((d) => d.delayNs),
          0.5,
        ) / 1000,
      syncs: delays.length,
    };
  } finally {
    await lab.cleanup();
    // A daemon that did not stop within cleanup's 2 s was killed and could not remove its region.
    for (let i = 0; i < daemonCount; i++) rmSync(`/dev/shm/nqptp-accnet-${process.pid}-${i}`, { force: true });
  }
}

/** The estimator alone (src/clock/offset/tracking.ts) on the probe's samples of the same Syncs: the same path, stamped the same way, without a daemon around it. */
function offlineEstimate(delays: ReturnType<typeof pathDelays>, config: MasterConfig, truth: { at(localTimeNs: bigint): bigint }) {
  let state: TrackingState = TRACKING_IDLE;
  const out: { localTimeNs: bigint; errorNs: bigint }[] = [];
  for (const d of delays) {
    const masterNs = d.departure + masterOffsetNs(config, d.departure);
    const step = trackOffset(state, { localTimeNs: d.rxNs, offsetNs: BigInt.asUintN(64, masterNs - d.rxNs) });
    state = step.state;
    if (step.estimate)
      out.push({ localTimeNs: step.estimate.localTimeNs, errorNs: BigInt.asIntN(64, step.estimate.offsetNs) - truth.at(step.estimate.localTimeNs) });
  }
  return out;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "never");

function report(run: RunPlan, outcome: Awaited<ReturnType<typeof runOnce>>, rows: string[]): void {
  const sign = run.ppm > 0 ? "+" : "";
  const label = `${run.path} ${sign}${run.ppm} ppm${run.sine ? ` ± ${run.sine.amplitudePpm} ppm over ${run.sine.periodS} s` : ""}`;
  console.log(`accuracy-network ${label}: path min ${f1(outcome.pathMinNs / 1000)} µs (median ${f1(outcome.pathMedianUs)}), ${outcome.syncs} Syncs`);
  for (const r of outcome.results) {
    const st = steadyFigures(r.points, outcome.pathMinNs, run.steady.fromS, run.steady.toS);
    console.log(
      `  [${r.filter}] steady ${run.steady.fromS}-${run.steady.toS} s, n=${st.n}: |error| median ${f1(st.absMedianUs)} µs; above the path minimum median ${f1(st.belowMedianUs)} p99 ${f1(st.belowP99Us)} µs; p1–p99 spread ${f1(st.spreadUs)} µs`,
    );
    rows.push(`| ${label} | ${r.filter} | steady | ${f1(st.belowMedianUs)} / ${f1(st.belowP99Us)} | ${f1(st.spreadUs)} |`);
    for (const e of run.episodes.filter((x) => x.atS + x.seconds + 20 <= run.seconds)) {
      const ef = episodeFigures(r.points, e);
      const what = e.kind === "queue" ? `queue ${e.ms} ms for ${e.seconds} s` : `power save 0–${e.ms} ms for ${e.seconds} s`;
      console.log(
        `  [${r.filter}] ${what}: largest excursion from the track ${f1(ef.largestUs)} µs; from 2 s after it ends ${f1(ef.afterUs)} µs off`,
      );
      rows.push(`| ${label} | ${r.filter} | ${what} | excursion ${f1(ef.largestUs)} | after ${f1(ef.afterUs)} |`);
    }
    run.steps.forEach((step, i) => {
      if (step.atS >= run.seconds) return;
      const until = run.steps[i + 1]?.atS ?? run.seconds;
      const sf = stepFigures(r.points, step.atS, until);
      const what = `step ${step.ns > 0 ? "up" : "down"} ${Math.abs(step.ns) / 1e6} ms`;
      console.log(
        `  [${r.filter}] ${what}: taken (within 1 ms) after ${f1(sf.takenS)} s, followed (within 100 µs) after ${f1(sf.followedS)} s; fastest move ${f1(sf.fastestMsPerS)} ms/s`,
      );
      rows.push(
        `| ${label} | ${r.filter} | ${what} | taken ${f1(sf.takenS)} s, followed ${f1(sf.followedS)} s | fastest ${f1(sf.fastestMsPerS)} ms/s |`,
      );
    });
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--master") return masterSimulator(JSON.parse(argv[1]!) as MasterConfig);
  if (argv[0] === "--probe") return probe(argv[1]!, Number(argv[2]));
  const o = parseArgs(argv);
  // Stopped by a signal, leave through process.exit: the labs take their namespaces and processes down on "exit".
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));
  // A daemon the labs had to kill could not remove its region.
  process.on("exit", () => {
    for (let i = 0; i < o.filters.length + 1; i++) rmSync(`/dev/shm/nqptp-accnet-${process.pid}-${i}`, { force: true });
  });
  const reason = labUnavailableReason();
  if (reason) throw new Error(`cannot run: ${reason}`);
  const binary = o.binary || (await compiledBinary());
  const reader = await buildCReader();
  const filters = [...o.filters, ...(o.oldBinary ? ["tracking, before"] : [])];
  console.log(
    `accuracy-network: scenario ${o.scenario}, filters ${filters.join(", ")}, binary ${binary}${o.oldBinary ? `, before: ${o.oldBinary}` : ""}`,
  );
  const rows: string[] = [];
  let seed = o.seed;
  for (const run of plan(o)) report(run, await runOnce(o, binary, reader, run, seed++), rows);
  console.log("\n| run | filter | case | figure (µs) | |\n|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  process.exit(0);
}

await main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`accuracy-network: ${error.message}`);
  process.exit(1);
});
