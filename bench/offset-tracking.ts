// Cost of the tracking offset filter (src/clock/offset/tracking.ts) per sample, alone: a stream
// of an hour of 8 Hz Sync/Follow_Up samples from a master 20 ppm off, on a wire-like path
// (40 µs + exponential 3 µs) and on a Wi-Fi-like one (1 ms + exponential 2 ms + 2 % spikes of
// 10–20 ms), generated before timing. Best of 5 rounds. Run: bun bench/offset-tracking.ts
import { TRACKING_IDLE, trackOffset, type TrackingSample, type TrackingState } from "../src/clock/offset/tracking.ts";
import { createPrng } from "../test/support/prng.ts";

const SAMPLES = 8 * 3600;

function stream(seed: number, baseNs: number, expMeanNs: number, spikeP: number): TrackingSample[] {
  const random = createPrng(seed);
  const out: TrackingSample[] = [];
  const local0 = 86_400_000_000_000n;
  const offset0 = 1_700_000_000_000_000_000n;
  for (let k = 0; k < SAMPLES; k++) {
    const sentNs = k * 125e6 + random.float() * 1e6;
    let delayNs = baseNs - Math.log(1 - random.float()) * expMeanNs;
    if (random.float() < spikeP) delayNs += 10e6 + random.float() * 10e6;
    out.push({
      localTimeNs: local0 + BigInt(Math.round(sentNs + delayNs)),
      offsetNs: offset0 + BigInt(Math.round(20e-6 * sentNs - delayNs)),
      paired: true,
    });
  }
  return out;
}

function time(samples: readonly TrackingSample[]): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let state: TrackingState = TRACKING_IDLE;
    const started = performance.now();
    for (const sample of samples) state = trackOffset(state, sample).state;
    best = Math.min(best, ((performance.now() - started) * 1000) / samples.length);
    if (state.timeline === null) throw new Error("no timeline");
  }
  return best;
}

const wire = time(stream(1, 40e3, 3e3, 0));
const wifi = time(stream(2, 1e6, 2e6, 0.02));
console.log(
  `offset-tracking: ${wire.toFixed(2)} µs/sample on a wire, ${wifi.toFixed(2)} µs/sample on Wi-Fi (${SAMPLES} samples, 8 Hz, 20 ppm, best of 5)`,
);
