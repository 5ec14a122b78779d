// The tracking offset filter alone (src/clock/offset/tracking.ts) on seeded synthetic streams
// (test/support/offset-streams.ts): every case the network benchmark has, and more seeds, in
// seconds instead of hours. Figures are µs; "above" is how far the published offset lies below
// the best possible (true offset − path minimum).
//
//   bun bench/offset-scenarios.ts [--seeds 5] [--cases steady,wire,wander,queue,powersave,steps]

import {
  LOCAL0,
  MS,
  S,
  WIFI,
  WIRE,
  excursion,
  figures,
  makeStream,
  quantile,
  runFilter,
  type Path,
  type Published,
  type StreamOptions,
} from "../test/support/offset-streams.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
};
const SEEDS = Number(arg("--seeds", "5"));
const CASES = new Set(arg("--cases", "steady,wire,wander,queue,powersave,steps").split(","));
const f = (ns: number) => (Number.isFinite(ns) ? (ns / 1000).toFixed(1) : "never");
/** Episodes (queues, bursts, steps) begin once the rate's baseline is full: the filter is on its steady track. */
const STEADY_S = 150;
const seeds = Array.from({ length: SEEDS }, (_, i) => i + 1);
void LOCAL0;

/** Steady figures per seed from `fromS`, and the worst of them. */
function steady(name: string, base: Omit<StreamOptions, "seed">, fromS: number): void {
  const runs = seeds.map((seed) => figures(runFilter(makeStream({ ...base, seed: seed * 1000 + base.ppm })).published, fromS));
  const worst = (k: "median" | "spread" | "absP99") => Math.max(...runs.map((r) => Math.abs(r[k])));
  console.log(
    `steady ${name}: median ${runs.map((r) => f(r.median)).join(" ")} | spread ${runs.map((r) => f(r.spread)).join(" ")} | worst |median| ${f(worst("median"))}, spread ${f(worst("spread"))}, |·| p99 ${f(worst("absP99"))}`,
  );
}

/** Seconds from `atS` until eps stays within 100 µs of its final median (the new track) for the rest. */
function followTime(published: Published[], atS: number): number {
  const final = quantile(
    published.filter((p) => p.t >= published[published.length - 1]!.t - 20).map((p) => p.epsNs),
    0.5,
  );
  let last = atS;
  for (const p of published) if (p.t >= atS && Math.abs(p.epsNs - final) > 100_000) last = p.t;
  return last - atS;
}

function queue(path: Path, ms: number, seconds: number): void {
  const rows = seeds.map((seed) => {
    const episode = { atS: STEADY_S, seconds };
    const o = { seconds: STEADY_S + seconds + 60, path, seed, ppm: 20 };
    const withQueue = runFilter(makeStream({ ...o, burst: { ...episode, minNs: ms * MS, maxNs: ms * MS } })).published;
    const twin = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 0 } })).published;
    const restarts = withQueue.filter((p) => p.t > 1 && ["STEPPED_UP", "STEPPED_DOWN", "FOLLOWED_DOWN"].includes(p.outcome)).length;
    return { ...excursion(withQueue, twin, episode), restarts };
  });
  console.log(
    `queue ${path.name} ${ms} ms for ${seconds} s: largest excursion ${rows.map((r) => f(r.largestNs)).join(" ")} µs; 2 s after it drains, from the twin ${rows.map((r) => f(r.afterDrainNs)).join(" ")} µs; restarts ${rows.map((r) => r.restarts).join(" ")}`,
  );
}

if (CASES.has("steady")) for (const ppm of [0, -20, 50]) steady(`Wi-Fi ${ppm} ppm (300 s, from 120 s)`, { seconds: 300, path: WIFI, ppm }, 120);
if (CASES.has("wire")) for (const ppm of [-50, 50]) steady(`wire ${ppm} ppm (120 s, from 30 s)`, { seconds: 120, path: WIRE, ppm }, 30);
if (CASES.has("wander")) {
  for (const path of [WIRE, WIFI])
    steady(
      `${path.name} 20 ppm ± 1 ppm over 5 min (600 s, from 60 s)`,
      { seconds: 600, path, ppm: 20, ppmSine: { amplitudePpm: 1, periodS: 300 } },
      60,
    );
}
if (CASES.has("queue")) for (const path of [WIRE, WIFI]) for (const ms of [5, 40, 100]) for (const seconds of [15, 60, 90]) queue(path, ms, seconds);
if (CASES.has("powersave")) {
  for (const path of [WIRE, WIFI]) {
    const rows = seeds.map((seed) => {
      const episode = { atS: STEADY_S, seconds: 20 };
      const o = { seconds: STEADY_S + 80, path, seed, ppm: -20 };
      const published = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 100 * MS } })).published;
      const twin = runFilter(makeStream({ ...o, burst: { ...episode, minNs: 0, maxNs: 0 } })).published;
      return excursion(published, twin, episode);
    });
    console.log(`power save ${path.name} 0–100 ms for 20 s: largest excursion ${rows.map((r) => f(r.largestNs)).join(" ")} µs`);
  }
}
if (CASES.has("steps")) {
  for (const path of [WIRE, WIFI]) {
    for (const stepMs of [-50, 50]) {
      for (const evidence of stepMs < 0 ? [false, true] : [false]) {
        const times = seeds.map((seed) => {
          const stream = makeStream({ seconds: STEADY_S + 150, path, seed, ppm: 10, stepAtS: STEADY_S, stepNs: stepMs * MS });
          const published = runFilter(stream, undefined, (t) => (evidence && t >= STEADY_S ? 1 : 0)).published;
          return followTime(published, STEADY_S);
        });
        console.log(
          `step ${stepMs > 0 ? "up" : "down"} ${Math.abs(stepMs)} ms ${path.name}${evidence ? " with a new Announce" : ""}: followed (within 100 µs for good) after ${times.map((t) => t.toFixed(2)).join(" ")} s`,
        );
      }
    }
  }
}
void S;
