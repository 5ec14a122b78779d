// A hostile LAN against the running daemon: valid-looking PTP (Announce claiming the best clock
// there is, two-step Sync, Follow_Up) from many loopback addresses at a fixed rate, while a real
// master in the timing peer list (the simulator at 127.0.0.2) keeps sending.
//
//   bun bench/flood.ts [seconds = 60] [datagrams/s = 20000] [addresses = 1000]
//
// The daemon listens on 127.0.0.1 only (--ptp-address), so the flood binds 127.1.0.1, 127.1.0.2, …
// on the daemon's own port numbers: the source port equals the destination port, as the daemon
// requires. The flood runs in a child process (so that it does not delay the master simulator);
// packets are built once, then sent in a batch every 10 ms tick, never more than the rate allows.
// Reports: whether the master stayed published with its offset (read with the C reader), the
// table-full log lines, RSS at start and end, the daemon's CPU, its log lines, kernel drops.
//
// startFlood() is also used in-process by test/e2e/hostile.test.ts (a 3 s, 5000/s version).

import { readFileSync } from "node:fs";
import { encodeAnnounce, encodeFollowUp, encodeSync } from "../src/ptp/encode.ts";
import { FLAG_TWO_STEP } from "../src/ptp/types.ts";

export interface FloodOptions {
  /** Where the daemon listens. */
  target: string;
  eventPort: number;
  generalPort: number;
  /** Number of source addresses: 127.1.0.1, 127.1.0.2, … (i → 127.1.(i >> 8).(i & 255)). */
  sources: number;
  ratePerSecond: number;
  durationMs: number;
}

export interface FloodResult {
  sent: number;
  /** send() returned false (socket buffer full) or threw. */
  failed: number;
  elapsedMs: number;
  sources: number;
}

export interface Flood {
  readonly done: Promise<FloodResult>;
  stop(): void;
}

export function floodAddress(i: number): string {
  const n = i + 1;
  return `127.1.${n >> 8}.${n & 255}`;
}

const TICK_MS = 10;

/** Precomputed packets, one socket pair per source address, a 10 ms tick. */
export async function startFlood(options: FloodOptions): Promise<Flood> {
  const { target, eventPort, generalPort, sources, ratePerSecond, durationMs } = options;
  type Sock = Bun.udp.Socket<"buffer">;
  const sockets: { event: Sock; general: Sock; packets: { event: boolean; bytes: Uint8Array }[] }[] = [];
  try {
    for (let i = 0; i < sources; i++) {
      const hostname = floodAddress(i);
      const event = await Bun.udpSocket({ hostname, port: eventPort });
      const general = await Bun.udpSocket({ hostname, port: generalPort });
      const clockIdentity = 0x00f1_00ff_fe00_0000n | BigInt(i);
      const common = { transportSpecific: 1, domainNumber: 0, clockIdentity, sourcePortNumber: 1, sequenceId: i & 0xffff };
      const announce = encodeAnnounce({
        ...common,
        flagField: 0x0408,
        logMessageInterval: 0,
        originTimestamp: { seconds: 1_700_000_000n, nanoseconds: 0 },
        currentUtcOffset: 37,
        // The best clock there is: it would win any comparison, if it were a timing peer.
        grandmasterPriority1: 0,
        grandmasterClockQuality: { clockClass: 6, clockAccuracy: 0x20, offsetScaledLogVariance: 0x4e5d },
        grandmasterPriority2: 0,
        grandmasterIdentity: clockIdentity,
        stepsRemoved: 0,
        timeSource: 0x20,
      });
      const sync = encodeSync({ ...common, flagField: FLAG_TWO_STEP, logMessageInterval: -3, originTimestamp: { seconds: 0n, nanoseconds: 0 } });
      const followUp = encodeFollowUp({
        ...common,
        flagField: 0,
        logMessageInterval: -3,
        preciseOriginTimestamp: { seconds: 1_700_000_000n + BigInt(i), nanoseconds: 123 },
      });
      sockets.push({
        event,
        general,
        packets: [
          { event: false, bytes: announce },
          { event: true, bytes: sync },
          { event: false, bytes: followUp },
        ],
      });
    }
  } catch (error) {
    for (const s of sockets) {
      s.event.close();
      s.general.close();
    }
    throw new Error(`flood: could not bind ${sources} source addresses: ${(error as Error).message}`);
  }

  let sent = 0;
  let failed = 0;
  let next = 0; // packet k: source k % sources, kind (k / sources) % 3
  const started = performance.now();
  let resolve!: (r: FloodResult) => void;
  const done = new Promise<FloodResult>((r) => (resolve = r));
  let stopped = false;

  const finish = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    for (const s of sockets) {
      s.event.close();
      s.general.close();
    }
    resolve({ sent, failed, elapsedMs: performance.now() - started, sources });
  };

  const tick = () => {
    const elapsed = performance.now() - started;
    if (elapsed >= durationMs) return finish();
    // As many as the rate allows by now; a late tick catches up by at most one extra tick.
    const due = Math.floor((elapsed * ratePerSecond) / 1000);
    const batch = Math.min(due - sent - failed, Math.ceil((ratePerSecond * TICK_MS * 2) / 1000));
    for (let j = 0; j < batch; j++) {
      const k = next++;
      const s = sockets[k % sources]!;
      const p = s.packets[Math.floor(k / sources) % 3]!;
      try {
        if (p.event ? s.event.send(p.bytes, eventPort, target) : s.general.send(p.bytes, generalPort, target)) sent++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  const timer = setInterval(tick, TICK_MS);
  return { done, stop: finish };
}

// ---------------------------------------------------------------------------------------------
// The benchmark

/** utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

export function statusField(pid: number, name: string): number {
  const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${name}:\\s+(\\d+)`, "m"));
  return match ? Number(match[1]) : 0;
}

/** Kernel drops (receive buffer full) summed over UDP sockets bound to these local ports. */
export function udpDrops(ports: number[]): number {
  let drops = 0;
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      const port = parseInt(cols[1]!.split(":")[1]!, 16);
      if (ports.includes(port)) drops += Number(cols[cols.length - 1]);
    }
  }
  return drops;
}

export interface FloodSender {
  /** True while the sender runs. */
  running(): boolean;
  /** What it sent, once it has finished. */
  result(): Promise<FloodResult>;
  proc: ReturnType<typeof Bun.spawn>;
}

/** The flood in a child process of its own, so that it never delays the caller's master simulator. */
export function spawnFloodSender(options: FloodOptions): FloodSender {
  const proc = Bun.spawn([process.execPath, new URL("./flood.ts", import.meta.url).pathname, "--sender", JSON.stringify(options)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = new Response(proc.stdout).text();
  return {
    proc,
    running: () => proc.exitCode === null,
    result: async () => JSON.parse((await out).trim().split("\n").at(-1) ?? "{}") as FloodResult,
  };
}

async function senderMain(json: string) {
  const flood = await startFlood(JSON.parse(json) as FloodOptions);
  process.on("SIGTERM", () => flood.stop());
  console.log(JSON.stringify(await flood.done));
  process.exit(0);
}

export const MASTER_ID = 0x00aa_bbff_fecc_dd01n;
export const MASTER_OFFSET = 1_234_567_890_123n;

/** dist/nqptp on 127.0.0.1 with the simulator at 127.0.0.2 as its timing peer, told so. */
export async function startDaemonWithMaster() {
  const { startDaemon } = await import("../test/support/daemon.ts");
  const { startPtpMaster } = await import("../test/support/ptp-master.ts");
  const { sendControl } = await import("../test/e2e/support.ts");
  const { realtimeNs } = await import("../src/time/clocks.ts");
  const daemon = await startDaemon({ args: [] });
  const master = await startPtpMaster({
    address: "127.0.0.2",
    target: "127.0.0.1",
    eventPort: daemon.ports.event,
    generalPort: daemon.ports.general,
    clockIdentity: MASTER_ID,
    offsetNs: MASTER_OFFSET,
    clock: realtimeNs,
  });
  await sendControl("T 127.0.0.2\0", daemon.ports.control);
  return { daemon, master, MASTER_ID, MASTER_OFFSET };
}

async function benchMain() {
  const { readShm, offsetError } = await import("../test/e2e/support.ts");
  const { realtimeNs } = await import("../src/time/clocks.ts");

  const seconds = Number(process.argv[2] ?? 60);
  const rate = Number(process.argv[3] ?? 20_000);
  const sources = Number(process.argv[4] ?? 1000);
  const { daemon, master, MASTER_ID, MASTER_OFFSET } = await startDaemonWithMaster();
  const pid = daemon.proc.pid;
  const deadline = Date.now() + 10_000;
  let before = await readShm(daemon.shmName, 5);
  while (BigInt(before.clock_id) !== MASTER_ID && Date.now() < deadline) {
    await Bun.sleep(100);
    before = await readShm(daemon.shmName, 5);
  }
  if (BigInt(before.clock_id) !== MASTER_ID) throw new Error(`master never published: ${JSON.stringify(before)}\n${daemon.output()}`);
  await Bun.sleep(2000); // let the estimate settle
  before = await readShm(daemon.shmName, 5);
  const offsetBefore = BigInt(before.offset);

  const lines = () =>
    daemon
      .output()
      .split("\n")
      .filter((l) => l.trim().length > 0);
  const linesAtStart = lines().length;
  const rssStart = statusField(pid, "VmRSS");
  const dropsStart = udpDrops([daemon.ports.event, daemon.ports.general]);
  const ticksStart = cpuTicks(pid);
  const wallStart = performance.now();

  const sender = spawnFloodSender({
    target: "127.0.0.1",
    eventPort: daemon.ports.event,
    generalPort: daemon.ports.general,
    sources,
    ratePerSecond: rate,
    durationMs: seconds * 1000,
  });

  let samples = 0;
  let notPublished = 0;
  let maxShiftNs = 0n;
  let maxErrorNs = 0n;
  let staleMax = 0n;
  let maxThreads = statusField(pid, "Threads");
  let maxRss = rssStart;
  while (sender.running()) {
    await Bun.sleep(1000);
    if (daemon.proc.exitCode !== null) break;
    const r = await readShm(daemon.shmName, 5);
    samples++;
    if (BigInt(r.clock_id) !== MASTER_ID || r.ip !== "127.0.0.2") notPublished++;
    const shift = offsetError(r.offset, offsetBefore);
    if (shift > maxShiftNs) maxShiftNs = shift;
    const error = offsetError(r.offset, MASTER_OFFSET);
    if (error > maxErrorNs) maxErrorNs = error;
    const stale = realtimeNs() - BigInt(r.local_time);
    if (stale > staleMax) staleMax = stale;
    maxThreads = Math.max(maxThreads, statusField(pid, "Threads"));
    maxRss = Math.max(maxRss, statusField(pid, "VmRSS"));
  }
  const flood = await sender.result();
  const wall = (performance.now() - wallStart) / 1000;
  const cpu = (cpuTicks(pid) - ticksStart) / 100 / wall;
  const dropsEnd = udpDrops([daemon.ports.event, daemon.ports.general]);
  await Bun.sleep(2000);
  const rssEnd = statusField(pid, "VmRSS");
  const after = await readShm(daemon.shmName, 5);
  const alive = daemon.proc.exitCode === null;
  const all = lines();
  const floodLines = all.slice(linesAtStart);
  const tableFull = all.filter((l) => l.includes("clock table full")).length;
  const masterEvicted = all.filter((l) => /evicted 127\.0\.0\.2\b/.test(l)).length;
  const nonDebug = floodLines.filter((l) => !/\[debug\]|<7>/.test(l)).length;
  master.stop();
  const exitCode = await daemon.stop();

  console.log(
    `flood: ${flood.sent} datagrams in ${(flood.elapsedMs / 1000).toFixed(1)} s (${((flood.sent / flood.elapsedMs) * 1000).toFixed(0)}/s, ` +
      `${flood.failed} send failures) from ${sources} addresses; daemon ${alive ? "alive" : "DEAD"}, CPU ${(cpu * 100).toFixed(0)}% of one core, ` +
      `RSS ${(rssStart / 1024).toFixed(1)} → ${(rssEnd / 1024).toFixed(1)} MiB (max ${(maxRss / 1024).toFixed(1)}), threads max ${maxThreads}, ` +
      `kernel drops ${dropsEnd - dropsStart}; master published in ${samples - notPublished}/${samples} samples (after: ${BigInt(after.clock_id) === MASTER_ID ? "yes" : "NO"}), ` +
      `offset moved ≤ ${(Number(maxShiftNs) / 1e6).toFixed(3)} ms (error vs truth ≤ ${(Number(maxErrorNs) / 1e6).toFixed(3)} ms), local_time age ≤ ${(Number(staleMax) / 1e6).toFixed(0)} ms; ` +
      `log: ${floodLines.length} lines during the flood (${nonDebug} above debug), "clock table full" ×${tableFull}, master evicted ×${masterEvicted}; exit ${exitCode}`,
  );
  if (process.env.FLOOD_LOG) console.log(floodLines.join("\n"));
}

if (import.meta.main) {
  if (process.argv[2] === "--sender") await senderMain(process.argv[3]!);
  else await benchMain();
}
