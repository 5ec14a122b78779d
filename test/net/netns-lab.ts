// A PTP lab made of network namespaces, for the ptp4l interop test and bench/accuracy.ts:
//
//   nqptp-m-<id>  ptp0 10.77.X.1/24  ── veth ──  ptp0 10.77.X.2/24  nqptp-s-<id>  (dist/nqptp)
//   (ptp4l, master, software timestamps)                 flood0 10.78.X.2/24
//                                                           │ veth (only with a flood)
//   nqptp-f-<id>  flood0 10.78.X.1/24 + 10.78.X.10…  ───────┘   (PTP-looking traffic)
//
//   nqptp-p-<id><k>  <link> 10.<net>.X.1/24 ── veth ── <link> 10.<net>.X.2/24  (addPeer: more
//                    interfaces for the slave, which can be taken away and made again)
//
// Each veth end is created directly inside its namespace, so interface names never meet in the
// host's namespace and parallel labs (unique <id>) cannot collide. Everything started here is
// tracked and ended by cleanup(), which also deletes the namespaces (and with them the veths);
// a process "exit" hook does the same if a test dies first, and create() removes namespaces
// left by lab processes that no longer exist.
// ptp4l and dist/nqptp run on the host's clocks: a namespace has its own network, not its own
// CLOCK_REALTIME, so the master's time is this machine's CLOCK_REALTIME (see trueOffsetNs).

import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const BUN = process.execPath;

const PREFIX = "nqptp-";

function run(argv: string[], timeoutMs = 10_000): { ok: boolean; out: string } {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  return { ok: result.exitCode === 0, out: `${result.stdout.toString()}${result.stderr.toString()}`.trim() };
}

function must(argv: string[]): string {
  const result = run(argv);
  if (!result.ok) throw new Error(`${argv.join(" ")} failed: ${result.out}`);
  return result.out;
}

/** Why a lab cannot be built here, or null if it can (root, `ip netns`, veth). */
export function labUnavailableReason(): string | null {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root (run the suite as root, as CI does)";
  if (Bun.which("ip") === null) return "`ip` (iproute2) is not installed";
  const probe = `${PREFIX}probe-${process.pid}`;
  const added = run(["ip", "netns", "add", probe]);
  if (!added.ok) return `\`ip netns add\` does not work here: ${added.out}`;
  const veth = run(["ip", "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0"]);
  run(["ip", "netns", "del", probe]);
  if (!veth.ok) return `cannot create a veth pair: ${veth.out}`;
  return null;
}

/**
 * ptp4l's path; installs Debian's linuxptp if it is missing and we are root with apt-get (CI
 * does it beforehand, in scripts/test.sh). A string explains why there is none.
 */
export function findPtp4l(): { path: string } | { reason: string } {
  const found = Bun.which("ptp4l") ?? (existsSync("/usr/sbin/ptp4l") ? "/usr/sbin/ptp4l" : null);
  if (found) return { path: found };
  if (process.getuid?.() !== 0 || Bun.which("apt-get") === null) return { reason: "ptp4l (Debian package linuxptp) is not installed" };
  const install = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "linuxptp"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 45_000,
  });
  const installed = Bun.which("ptp4l") ?? (existsSync("/usr/sbin/ptp4l") ? "/usr/sbin/ptp4l" : null);
  if (installed) return { path: installed };
  return { reason: `ptp4l is not installed and \`apt-get install linuxptp\` failed: ${install.stderr.toString().trim().split("\n").at(-1)}` };
}

/** A veth named `name` at both ends, between namespaces a and b, addressed (/24) and up. */
function connect(a: string, b: string, name: string, addressA: string, addressB: string): void {
  must(["ip", "link", "add", name, "netns", a, "type", "veth", "peer", "name", name, "netns", b]);
  must(["ip", "-n", a, "addr", "add", `${addressA}/24`, "dev", name]);
  must(["ip", "-n", b, "addr", "add", `${addressB}/24`, "dev", name]);
  must(["ip", "-n", a, "link", "set", name, "up"]);
  must(["ip", "-n", b, "link", "set", name, "up"]);
}

/**
 * Deletes lab namespaces whose creating process is gone (a run killed before its cleanup):
 * those named with this prefix only, so labs made with another prefix are never touched.
 */
function sweepStaleNamespaces(prefix: string): void {
  const list = run(["ip", "netns", "list"]);
  // The prefix is letters, digits and "-" (create() checks): nothing to escape.
  const pattern = new RegExp(`^${prefix}[msfp]-(\\d+)-[0-9a-z]+$`);
  for (const line of list.out.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const match = pattern.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      run(["ip", "netns", "del", name]);
    }
  }
}

export interface Ptp4lOptions {
  /** logSyncInterval (default -3: 8 Hz). */
  logSyncInterval?: number;
  /** logAnnounceInterval (default -2: 4 Hz, so it takes the master role within a second). */
  logAnnounceInterval?: number;
  /** Where it runs: the master namespace and ptp0 (default), or a peer's (addPeer). */
  peer?: LabPeer;
  /** priority1 (default 1); lower wins the data-set comparison. */
  priority1?: number;
}

/** Another namespace, linked to the slave by a veth of its own (addPeer). */
export interface LabPeer {
  readonly ns: string;
  /** The veth's name, the same at both ends: in the slave, the interface's name. */
  readonly link: string;
  /** The peer's address on the link, and the slave's. */
  readonly address: string;
  readonly slaveAddress: string;
}

/**
 * ptp4l's configuration as the labs run it: the grandmaster (priority1 1), software timestamps,
 * two-step, UDPv4, end-to-end delay. It only sets its own socket options: a master writes nothing
 * to the system clock.
 */
export function ptp4lConfig(options: Ptp4lOptions = {}): string {
  return [
    "[global]",
    `priority1 ${options.priority1 ?? 1}`,
    "twoStepFlag 1",
    "time_stamping software",
    "network_transport UDPv4",
    "delay_mechanism E2E",
    `logSyncInterval ${options.logSyncInterval ?? -3}`,
    `logAnnounceInterval ${options.logAnnounceInterval ?? -2}`,
    "announceReceiptTimeout 2",
    "",
  ].join("\n");
}

/** ptp4l's arguments for `config` on `iface`: messages to stdout, at info level. */
export function ptp4lArgs(config: string, iface: string): string[] {
  return ["-f", config, "-i", iface, "-m", "-l", "6"];
}

/** What ptp4l logs once it is the master. */
export const PTP4L_MASTER = /assuming the grand master role/;

export interface LabProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export class PtpLab {
  readonly masterNs: string;
  readonly slaveNs: string;
  readonly floodNs: string | null;
  readonly masterAddress: string;
  readonly slaveAddress: string;
  readonly floodAddresses: string[];
  private readonly processes: Subprocess[] = [];
  private readonly namespaces: string[] = [];
  private readonly scratch = mkdtempSync(join(tmpdir(), "nqptp-lab-"));
  private cleaned = false;
  private readonly onExit = () => this.cleanupNow();
  private peers = 0;

  private constructor(
    private readonly id: string,
    private readonly subnet: number,
    floodSenders: number,
    private readonly prefix: string,
  ) {
    this.masterNs = `${prefix}m-${id}`;
    this.slaveNs = `${prefix}s-${id}`;
    this.floodNs = floodSenders > 0 ? `${prefix}f-${id}` : null;
    this.masterAddress = `10.77.${subnet}.1`;
    this.slaveAddress = `10.77.${subnet}.2`;
    this.floodAddresses = Array.from({ length: floodSenders }, (_, i) => `10.78.${subnet}.${10 + i}`);
  }

  /**
   * Builds the namespaces and links. `floodSenders` > 0 adds the flood namespace with that many
   * addresses. `prefix` (default "nqptp-") begins every namespace name, so that labs of
   * different users of one machine can be told apart.
   */
  static create(options: { floodSenders?: number; prefix?: string } = {}): PtpLab {
    const prefix = options.prefix ?? PREFIX;
    if (!/^[a-z0-9-]{1,20}$/.test(prefix)) throw new Error(`lab namespace prefix ${JSON.stringify(prefix)}: use 1–20 of a-z, 0-9, -`);
    sweepStaleNamespaces(prefix);
    const id = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const lab = new PtpLab(id, 1 + Math.floor(Math.random() * 250), options.floodSenders ?? 0, prefix);
    process.on("exit", lab.onExit);
    try {
      lab.build();
    } catch (error) {
      lab.cleanupNow();
      throw error;
    }
    return lab;
  }

  private build(): void {
    for (const ns of [this.masterNs, this.slaveNs, ...(this.floodNs ? [this.floodNs] : [])]) {
      must(["ip", "netns", "add", ns]);
      this.namespaces.push(ns);
      must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    connect(this.masterNs, this.slaveNs, "ptp0", this.masterAddress, this.slaveAddress);
    if (this.floodNs) {
      connect(this.floodNs, this.slaveNs, "flood0", `10.78.${this.subnet}.1`, `10.78.${this.subnet}.2`);
      for (const address of this.floodAddresses) must(["ip", "-n", this.floodNs, "addr", "add", `${address}/24`, "dev", "flood0"]);
    }
  }

  /**
   * One more namespace, linked to the slave by a veth named `link` (at most 15 bytes): 10.<net>.X.1
   * there, 10.<net>.X.2 in the slave. Can be called while a daemon runs in the slave.
   */
  addPeer(link: string, net: number): LabPeer {
    const ns = `${this.prefix}p-${this.id}${this.peers++}`;
    must(["ip", "netns", "add", ns]);
    this.namespaces.push(ns);
    must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const peer = { ns, link, address: `10.${net}.${this.subnet}.1`, slaveAddress: `10.${net}.${this.subnet}.2` };
    this.relink(peer);
    return peer;
  }

  /** Deletes the peer's veth (both ends): in the slave, the interface is gone. */
  unlink(peer: LabPeer): void {
    must(["ip", "-n", this.slaveNs, "link", "del", peer.link]);
  }

  /** Makes the peer's veth again, same names and addresses; the kernel gives the slave's end a new index. */
  relink(peer: LabPeer): void {
    connect(peer.ns, this.slaveNs, peer.link, peer.address, peer.slaveAddress);
  }

  /** Starts argv inside a namespace; its output is collected. */
  spawn(ns: string, argv: string[], env: Record<string, string> = {}): LabProcess {
    const proc = Bun.spawn(["ip", "netns", "exec", ns, ...argv], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1", ...env },
    });
    this.processes.push(proc);
    const sink = { text: "" };
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
    };
    void pump(proc.stdout);
    void pump(proc.stderr);
    return {
      proc,
      output: () => sink.text,
      async waitFor(pattern, timeoutMs = 15_000) {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const match = sink.text.match(pattern);
          if (match) return match[0];
          if (proc.exitCode !== null) break;
          await Bun.sleep(20);
        }
        throw new Error(`${argv[0]} in ${ns}: output did not match ${pattern} (exit ${proc.exitCode}):\n${sink.text}`);
      },
    };
  }

  /** ptp4l as the grandmaster on ptp0, or a peer's link (ptp4lConfig); resolves once it is master. */
  async startPtp4l(ptp4l: string, options: Ptp4lOptions = {}): Promise<LabProcess> {
    const ns = options.peer?.ns ?? this.masterNs;
    const config = join(this.scratch, `ptp4l-${ns}.conf`);
    writeFileSync(config, ptp4lConfig(options));
    const master = this.spawn(ns, [ptp4l, ...ptp4lArgs(config, options.peer?.link ?? "ptp0")]);
    await master.waitFor(PTP4L_MASTER, 15_000);
    return master;
  }

  /** dist/nqptp inside the slave namespace, default ports; resolves once it serves. */
  async startDaemon(binary: string, args: string[]): Promise<LabProcess> {
    const daemon = this.spawn(this.slaveNs, [binary, ...args]);
    await daemon.waitFor(/serving shared memory interface/, 15_000);
    return daemon;
  }

  /** One UDP datagram to 127.0.0.1:port inside the slave namespace (bash's /dev/udp). */
  sendControl(text: string, port = 9000): void {
    const escaped = text.replace(/\\/g, "\\\\").replace(/%/g, "%%").replace(/\0/g, "\\0").replace(/'/g, "'\\''");
    must(["ip", "netns", "exec", this.slaveNs, "bash", "-c", `printf '${escaped}' > /dev/udp/127.0.0.1/${port}`]);
  }

  /** Stops everything and deletes the namespaces. Safe to call twice. */
  async cleanup(): Promise<void> {
    for (const proc of this.processes) if (proc.exitCode === null) proc.kill("SIGTERM");
    const deadline = Date.now() + 2000;
    for (const proc of this.processes) {
      while (proc.exitCode === null && Date.now() < deadline) await Bun.sleep(10);
    }
    this.cleanupNow();
  }

  private cleanupNow(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    process.off("exit", this.onExit);
    for (const proc of this.processes) if (proc.exitCode === null) proc.kill("SIGKILL");
    for (const ns of this.namespaces.reverse()) run(["ip", "netns", "del", ns]);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

/** CLOCK_REALTIME read on both sides of CLOCK_MONOTONIC_RAW, ns. */
export interface ClockPair {
  realtimeBeforeNs: bigint;
  monotonicRawNs: bigint;
  realtimeAfterNs: bigint;
}

/**
 * The true offset (master time − local time) at any local instant. ptp4l with software
 * timestamping sends this machine's CLOCK_REALTIME as PTP time (its Announces say ARB timescale:
 * flags 0, currentUtcOffset 37 not applied; a Follow_Up's preciseOriginTimestamp read on arrival
 * is ~0.1 ms behind CLOCK_REALTIME). So for interface 5 (local clock CLOCK_REALTIME) it is 0; for
 * 6, 8, 9, 10 (CLOCK_MONOTONIC_RAW) it is CLOCK_REALTIME − CLOCK_MONOTONIC_RAW, which drifts by
 * NTP's frequency correction (~12 ppm on the project VM): this records (realtime, raw) pairs as
 * time goes by and interpolates at the sample's own local time.
 */
export class TrueOffset {
  private readonly raw: bigint[] = [];
  private readonly difference: bigint[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;

  /**
   * With `readPair`, pairs are read here as time goes by (on this machine's clocks); with null,
   * they are given with add(), read elsewhere (on another system's clocks, by the C reader's
   * --clocks) and in the order they were read.
   */
  constructor(
    readonly localClock: "realtime" | "monotonic-raw",
    private readonly readPair: (() => ClockPair) | null,
  ) {
    if (localClock === "monotonic-raw" && readPair !== null) {
      this.record();
      this.timer = setInterval(() => this.record(), 20);
    }
  }

  record(): void {
    if (this.readPair !== null) this.add(this.readPair());
  }

  add(p: ClockPair): void {
    this.raw.push(p.monotonicRawNs);
    this.difference.push((p.realtimeBeforeNs + p.realtimeAfterNs) / 2n - p.monotonicRawNs);
  }

  /** ns, signed: master time − local time at local time `localTimeNs`. */
  at(localTimeNs: bigint): bigint {
    if (this.localClock === "realtime") return 0n;
    this.record();
    const raw = this.raw;
    if (raw.length < 2) {
      if (raw.length === 0) throw new Error("TrueOffset: no clock pair recorded");
      return this.difference[0]!;
    }
    let hi = raw.findIndex((r) => r >= localTimeNs);
    if (hi <= 0) hi = hi === 0 ? 1 : raw.length - 1;
    const lo = hi - 1;
    const span = raw[hi]! - raw[lo]!;
    if (span <= 0n) return this.difference[hi]!;
    return this.difference[lo]! + ((this.difference[hi]! - this.difference[lo]!) * (localTimeNs - raw[lo]!)) / span;
  }

  /** Drift of realtime − raw over what was recorded, ppm (for the report). */
  driftPpm(): number {
    const n = this.raw.length;
    if (n < 2) return 0;
    return (Number(this.difference[n - 1]! - this.difference[0]!) / Number(this.raw[n - 1]! - this.raw[0]!)) * 1e6;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** What collectSamples compares with: the true offset (ns, signed) at a local time. */
export interface OffsetTruth {
  at(localTimeNs: bigint): bigint;
}

export interface PublishedSample {
  /** When the bench saw it (ms since the sampling started). */
  seenAtMs: number;
  clockId: bigint;
  localTimeNs: bigint;
  /** Published offset − true offset at the sample's local time, ns (signed). */
  errorNs: bigint;
}

/** One line of the C reader's output (test/c/shm-reader.c), as far as samples need it. */
export interface ReaderLine {
  clock_id?: string;
  local_time?: string;
  offset?: string;
  error?: string;
  /** With --clocks. */
  realtime_before?: string;
  monotonic_raw?: string;
  realtime_after?: string;
}

/** The record a line of the reader's output holds, or null for anything else. */
export function parseReaderLine(line: string): ReaderLine | null {
  return line.startsWith("{") ? (JSON.parse(line) as ReaderLine) : null;
}

/** The clock pair a line read with --clocks carries, or null. */
export function readerClockPair(record: ReaderLine): ClockPair | null {
  if (record.realtime_before === undefined || record.monotonic_raw === undefined || record.realtime_after === undefined) return null;
  return {
    realtimeBeforeNs: BigInt(record.realtime_before),
    monotonicRawNs: BigInt(record.monotonic_raw),
    realtimeAfterNs: BigInt(record.realtime_after),
  };
}

/**
 * The reader's records, one after the other, as distinct published samples: a record that holds no
 * master (zeros), an error, or the publication before again (the same local_time) is no sample.
 */
export class PublishedSamples {
  private lastLocalTime = -1n;

  constructor(private readonly trueOffset: OffsetTruth) {}

  /** The sample `record` is, seen `seenAtMs` into the sampling, or null. */
  take(record: ReaderLine | null, seenAtMs: number): PublishedSample | null {
    if (record === null || record.error || !record.local_time || !record.offset || BigInt(record.clock_id ?? "0") === 0n) return null;
    const localTimeNs = BigInt(record.local_time);
    if (localTimeNs === this.lastLocalTime) return null;
    this.lastLocalTime = localTimeNs;
    const published = BigInt.asIntN(64, BigInt(record.offset));
    return { seenAtMs, clockId: BigInt(record.clock_id!), localTimeNs, errorNs: published - this.trueOffset.at(localTimeNs) };
  }
}

/** The control message that makes the daemon follow `master` on interface `version`. */
export function followCommands(version: number, shmName: string, master: string): string[] {
  return version >= 8 ? [`${shmName} T ${master}\0`, ...(version >= 9 ? [`${shmName} B\0`] : [])] : [`T ${master}\0`];
}

/**
 * Runs the C reader inside the slave namespace every `intervalMs` for `durationMs` and hands
 * back each distinct published sample (a new local_time) with its error. Records that are all
 * zeros (no master yet) are skipped.
 */
export async function collectSamples(options: {
  lab: PtpLab;
  reader: string;
  shmName: string;
  version: number;
  durationMs: number;
  intervalMs: number;
  trueOffset: OffsetTruth;
  /** Stop early once this returns true. */
  enough?: (samples: PublishedSample[]) => boolean;
}): Promise<PublishedSample[]> {
  const { lab, trueOffset } = options;
  const reader = lab.spawn(lab.slaveNs, [
    options.reader,
    options.shmName,
    String(options.version),
    "--loop-ms",
    String(options.durationMs),
    "--interval-ms",
    String(options.intervalMs),
  ]);
  const samples: PublishedSample[] = [];
  const started = performance.now();
  const parser = new PublishedSamples(trueOffset);
  let consumed = 0;
  const take = () => {
    const text = reader.output();
    const end = text.lastIndexOf("\n");
    if (end < consumed) return;
    for (const line of text.slice(consumed, end).split("\n")) {
      const sample = parser.take(parseReaderLine(line), performance.now() - started);
      if (sample !== null) samples.push(sample);
    }
    consumed = end + 1;
  };
  while (reader.proc.exitCode === null) {
    await Bun.sleep(50);
    take();
    if (options.enough?.(samples)) {
      reader.proc.kill("SIGTERM");
      break;
    }
  }
  await reader.proc.exited;
  take();
  if (reader.proc.exitCode !== 0 && !options.enough?.(samples) && reader.proc.signalCode === null) {
    throw new Error(`shm-reader exited ${reader.proc.exitCode}: ${reader.output().slice(-500)}`);
  }
  return samples;
}

/** |x| quantiles in µs, for reports. */
export function summarize(errorsNs: bigint[]): { n: number; median: number; p95: number; p99: number; max: number } {
  const a = errorsNs.map((e) => Math.abs(Number(e)) / 1000).sort((x, y) => x - y);
  const q = (p: number) => (a.length === 0 ? NaN : a[Math.min(a.length - 1, Math.floor(p * a.length))]!);
  return { n: a.length, median: q(0.5), p95: q(0.95), p99: q(0.99), max: a.length ? a[a.length - 1]! : NaN };
}
