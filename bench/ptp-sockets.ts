// Timing of the PTP sockets in this process, on loopback (src/net/ptp-sockets.ts): the figures
// the unit tests used to assert as wall-clock bounds, measured here instead.
// - stamp: the kernel receive stamp minus a clock read just before send(), for the event port
//   (Worker, SO_TIMESTAMPNS) and the general port (Bun socket, ioctl SIOCGSTAMPNS); one datagram
//   at a time. "handed over" is when the datagram reached the daemon's callback, after the stamp.
// - busy: the same stamp with the main thread blocked for 20 ms after each send, five times in a
//   row; "callback" is when the daemon's callback ran, i.e. what a clock read there would stamp.
// - clock pair: the spread of readClockPair()'s two CLOCK_REALTIME reads (it converts a stamp
//   to CLOCK_MONOTONIC_RAW; the midpoint error is at most half of it).
// - backlog: 50 datagrams at once into a Worker allowed 10 unhandled: how many it kept (the rest
//   it drops and reports). Which of the two ways it goes depends on thread scheduling.
//
//   node_modules/.bin/bun bench/ptp-sockets.ts [datagrams per port = 2000]
//   → see bench/README.md for what it printed

import { startEventReader } from "../src/net/event-reader.ts";
import type { ReceivedDatagram } from "../src/net/event-reader-protocol.ts";
import { readClockPair } from "../src/net/kernel-stamps.ts";
import { openPtpSockets, type PtpDatagram, type PtpPortRole } from "../src/net/ptp-sockets.ts";
import { bindTimestampedSocket } from "../src/net/timestamped-socket.ts";
import { readClock } from "../src/time/clocks.ts";

const DATAGRAMS = Number(process.argv[2] ?? 2000);

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
function summary(values: number[], unit: string, digits = 1): string {
  const s = [...values].sort((a, b) => a - b);
  return `median ${quantile(s, 0.5).toFixed(digits)} p99 ${quantile(s, 0.99).toFixed(digits)} max ${s[s.length - 1]!.toFixed(digits)} ${unit}`;
}
const us = (ns: bigint) => Number(ns) / 1000;

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for datagrams");
    await Bun.sleep(0);
  }
}

const eventPort = 30000 + Math.floor(Math.random() * 15000) * 2;
const received: { datagram: PtpDatagram; handedAtNs: bigint }[] = [];
const sockets = await openPtpSockets({
  eventPort,
  generalPort: eventPort + 1,
  addresses: ["127.0.0.1"],
  localClock: "realtime",
  readClock,
  onDatagram: (datagram) => received.push({ datagram, handedAtNs: readClock("realtime") }),
  onError: (role, e) => console.error(`${role}: ${e.message}`),
  multicastRefreshMs: 0,
});
const sender = await Bun.udpSocket({ hostname: "127.0.0.1" });

async function stamps(role: PtpPortRole): Promise<string> {
  const port = role === "event" ? eventPort : eventPort + 1;
  const late: number[] = [];
  const handover: number[] = [];
  for (let i = 0; i < DATAGRAMS; i++) {
    const before = readClock("realtime");
    sender.send(new Uint8Array([i & 255]), port, "127.0.0.1");
    await waitFor(() => received.length > 0);
    const { datagram, handedAtNs } = received.shift()!;
    late.push(us(datagram.receivedAtNs - before));
    handover.push(us(handedAtNs - datagram.receivedAtNs));
  }
  return `${role} (${sockets.eventStamping === "worker" && role === "event" ? "Worker" : "ioctl"}): stamp ${summary(late, "µs")} after send; handed over ${summary(handover, "µs", 0)} after the stamp`;
}

async function busy(): Promise<string> {
  const late: number[] = [];
  const callback: number[] = [];
  for (let round = 0; round < 10; round++) {
    const sentAt: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      sentAt.push(readClock("realtime"));
      sender.send(new Uint8Array([i]), eventPort, "127.0.0.1");
      const until = performance.now() + 20;
      while (performance.now() < until) {
        // busy
      }
    }
    await waitFor(() => received.length >= 5);
    for (const [i, { datagram, handedAtNs }] of received.splice(0).entries()) {
      late.push(us(datagram.receivedAtNs - sentAt[i]!));
      callback.push(us(handedAtNs - sentAt[i]!) / 1000);
    }
  }
  return `busy main thread (20 ms between sends): event stamp ${summary(late, "µs")} after send, callback ${summary(callback, "ms")} after send (n=${late.length})`;
}

function clockPairs(): string {
  const spreads: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const p = readClockPair();
    spreads.push(Number(p.realtimeAfterNs - p.realtimeBeforeNs));
  }
  return `clock pair: realtime spread ${summary(spreads, "ns", 0)} (n=${spreads.length})`;
}

async function backlog(runs = 20): Promise<string> {
  const kept: number[] = [];
  for (let run = 0; run < runs; run++) {
    const port = 30000 + Math.floor(Math.random() * 15000) * 2;
    const socket = bindTimestampedSocket({ hostname: "127.0.0.1", port, role: "PTP event port" });
    const got: ReceivedDatagram[] = [];
    let dropped = 0;
    const reader = await startEventReader({
      sockets: [socket],
      localClock: "realtime",
      maxBacklog: 10,
      onDatagram: (d) => got.push(d),
      onError: (e) => (dropped += Number(/^dropped (\d+)/.exec(e.message)?.[1] ?? 0)),
    });
    for (let i = 0; i < 50; i++) sender.send(new Uint8Array([i]), port, "127.0.0.1");
    await waitFor(() => got.length + dropped >= 50);
    reader.close();
    kept.push(got.length);
  }
  const counts = new Map<number, number>();
  for (const k of kept) counts.set(k, (counts.get(k) ?? 0) + 1);
  const spread = [...counts].sort(([a], [b]) => a - b).map(([k, n]) => `${k} kept ×${n}`);
  return `backlog 10, 50 sent at once: ${spread.join(", ")} (of ${runs} runs; the rest dropped and reported)`;
}

console.log(`ptp-sockets: ${await stamps("event")}`);
console.log(`ptp-sockets: ${await stamps("general")}`);
console.log(`ptp-sockets: ${await busy()}`);
console.log(`ptp-sockets: ${clockPairs()}`);
console.log(`ptp-sockets: ${await backlog()}`);
sender.close();
sockets.close();
