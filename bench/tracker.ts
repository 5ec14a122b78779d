// Cost of the clock tracker per datagram: a hostile flood from 5000 addresses, a full table of 32
// senders each sending Sync/Follow_Up, and one followed master's Follow_Up through the whole
// reducer (interface 10) with each offset filter. Run: bun bench/tracker.ts
import { createTracker, reduce, type TrackerEvent } from "../src/clock/tracker.ts";
import { S, US, announce, followUp, sync, trackerOptions } from "../test/clock/helpers.ts";
import { createPrng } from "../test/support/prng.ts";

const T0 = 1_000n * S;
const N = 200_000;

function flood(): number {
  const random = createPrng(99).float;
  const events: { event: TrackerEvent; nowNs: bigint }[] = [];
  let now = T0;
  for (let i = 0; i < N; i++) {
    now += 50n * US;
    const n = Math.floor(random() * 5000);
    const id = BigInt(n + 1);
    const k = i % 3;
    const message = k === 0 ? announce(id, i & 0xffff) : k === 1 ? sync(id, i & 0xffff) : followUp(id, i & 0xffff, now);
    events.push({ event: { kind: "ptp", source: `10.${n >> 8}.${n & 255}.1`, message, receivedAtNs: now }, nowNs: now });
  }
  let state = createTracker(trackerOptions());
  state = reduce(state, { kind: "timing-peers", addresses: ["192.168.1.1"] }, T0).state;
  const started = performance.now();
  for (const { event, nowNs } of events) state = reduce(state, event, nowNs).state;
  return ((performance.now() - started) * 1000) / N;
}

function fullTable(): number {
  let state = createTracker(trackerOptions());
  const sources = Array.from({ length: 32 }, (_, i) => `10.0.0.${i + 1}`);
  state = reduce(state, { kind: "timing-peers", addresses: sources.slice(0, 4) }, T0).state;
  let now = T0;
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    now += 50n * US;
    const s = i % 32;
    const seq = Math.floor(i / 64) & 0xffff;
    const message = (i >> 5) % 2 === 0 ? sync(BigInt(s + 1), seq) : followUp(BigInt(s + 1), seq, now + 5n * S);
    if (i % 640 === s) state = reduce(state, { kind: "ptp", source: sources[s]!, message: announce(BigInt(s + 1), i), receivedAtNs: now }, now).state;
    state = reduce(state, { kind: "ptp", source: sources[s]!, message, receivedAtNs: now }, now).state;
  }
  return ((performance.now() - started) * 1000) / N;
}

/** CPU per Follow_Up of the followed clock (the reduce of the Follow_Up alone, which runs the filter), interface 10. */
function followed(offsetFilter: "classic" | "tracking"): number {
  const random = createPrng(7).float;
  let state = createTracker(trackerOptions({ interfaceVersion: 10, offsetFilter }));
  state = reduce(state, { kind: "follow", address: "10.0.0.1" }, T0).state;
  state = reduce(state, { kind: "play-begin" }, T0).state;
  state = reduce(state, { kind: "ptp", source: "10.0.0.1", message: announce(1n, 0), receivedAtNs: T0 }, T0).state;
  const rounds = N / 4;
  const events: { event: TrackerEvent; nowNs: bigint }[] = [];
  let now = T0;
  for (let i = 0; i < rounds; i++) {
    now += 125_000n * US;
    const delay = BigInt(Math.floor(40_000 - Math.log(1 - random()) * 3_000));
    const origin = now - delay + 500n * S + BigInt(Math.round(Number(now - T0) * 20e-6)); // 20 ppm
    events.push({ event: { kind: "ptp", source: "10.0.0.1", message: sync(1n, i & 0xffff), receivedAtNs: now }, nowNs: now });
    events.push({ event: { kind: "ptp", source: "10.0.0.1", message: followUp(1n, i & 0xffff, origin), receivedAtNs: now + US }, nowNs: now + US });
  }
  let followUpNs = 0;
  for (const { event, nowNs } of events) {
    const isFollowUp = event.kind === "ptp" && event.message.kind === "follow-up";
    const started = isFollowUp ? Bun.nanoseconds() : 0;
    state = reduce(state, event, nowNs).state;
    if (isFollowUp) followUpNs += Bun.nanoseconds() - started;
  }
  return followUpNs / 1000 / rounds;
}

const floodUs = Math.min(flood(), flood(), flood());
const tableUs = Math.min(fullTable(), fullTable(), fullTable());
console.log(
  `tracker: flood ${floodUs.toFixed(2)} µs/datagram (${(1e6 / floodUs / 1000).toFixed(0)}k/s on one core), ` +
    `32 senders Sync/Follow_Up ${tableUs.toFixed(2)} µs/datagram`,
);
const classicUs = Math.min(followed("classic"), followed("classic"), followed("classic"));
const trackingUs = Math.min(followed("tracking"), followed("tracking"), followed("tracking"));
console.log(`tracker: a followed clock (interface 10), per Follow_Up: classic ${classicUs.toFixed(2)} µs, tracking ${trackingUs.toFixed(2)} µs`);
