// `nqptp status`: what the daemon publishes (read from the shared memory of whatever interface
// version it serves); where it hears PTP when it runs with --interface, and for interfaces 8-10
// every client region it serves (both asked over the control port); with --clocks every clock
// it tracks (asked the same way).
// runStatus takes a StatusIo: where it writes, the clock, how it reads the region and asks the
// daemon. systemStatusIo(io) gives the real ones.

import { defineCommand, renderUsage, type ArgsDef } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { EXIT } from "../cli/exit-status.ts";
import { parseCommandLine, parseIpAddress, parsePort, parseSeconds, parseShmNameOption, usageError } from "../cli/args.ts";
import { formatClockId } from "../ptp/clock-identity.ts";
import { STATUS_REQUEST, type PtpInterfaceStatus } from "../control/status.ts";
import { traitsOf } from "../rules/interface-version.ts";
import { DEFAULTS } from "../daemon/options.ts";
import { readRegion, type RegionRecord } from "../shm/read.ts";
import { SHM_DIRECTORY } from "../shm/region.ts";
import { HOST_ARCH, type Arch } from "../sys/linux.ts";
import { readClock, type LocalClock } from "../time/clocks.ts";
import { toI64 } from "../time/ns.ts";
import type { Io } from "./io.ts";

/** Warn (and exit 1) when the record is older than this, unless --stale-after says otherwise. */
const DEFAULT_STALE_AFTER_S = 5;
/** The daemon listens on each of its control addresses by default; status asks the first. */
const DEFAULT_CONTROL_ADDRESS = DEFAULTS.controlAddresses[0]!;

const args = {
  "shm-name": { type: "string", valueHint: "/name", description: "Shared memory name", default: DEFAULTS.shmName },
  json: { type: "boolean", description: "Print JSON" },
  watch: { type: "boolean", alias: ["w"], description: "Refresh every second until interrupted" },
  clocks: { type: "boolean", description: "Also ask the daemon for every clock it tracks (over the control port)" },
  "control-port": { type: "string", valueHint: "port", description: "The daemon's control port", default: String(DEFAULTS.controlPort) },
  "control-address": { type: "string", valueHint: "addr", description: "The daemon's control address", default: DEFAULT_CONTROL_ADDRESS },
  "stale-after": { type: "string", valueHint: "seconds", description: "Warn when the last update is older", default: String(DEFAULT_STALE_AFTER_S) },
  help: { type: "boolean", alias: ["h"], description: "Show this help" },
} as const satisfies ArgsDef;

const command = defineCommand({
  meta: {
    name: "nqptp status",
    description:
      "Show the master clock nqptp publishes (for interfaces 8-10 in every client region), where it hears PTP when it runs with --interface, and optionally every clock it sees",
  },
  args,
});

export interface MasterView {
  clockId: string;
  ip: string | null;
  offsetNs: string;
  offsetS: number;
  localTimeNs: string;
  startTimeNs: string;
  lastUpdateAgoS: number;
  masterForS: number;
  stale: boolean;
}

export interface StatusView {
  shmName: string;
  interfaceVersion: number;
  localClock: string;
  /** With --interface, the daemon's named interfaces and their state (absent: every interface, or not known). */
  ptpInterfaces?: PtpInterfaceStatus[];
  master: MasterView | null;
}

export function viewOf(shmName: string, record: RegionRecord, nowNs: bigint, staleAfterS: number): StatusView {
  const base = { shmName, interfaceVersion: record.version, localClock: record.layout.localClock };
  if (record.clockId === 0n && record.localTimeNs === 0n) return { ...base, master: null };
  const ageS = Number(nowNs - record.localTimeNs) / 1e9;
  return {
    ...base,
    master: {
      clockId: formatClockId(record.clockId),
      ip: record.ip,
      offsetNs: record.offsetNs.toString(),
      offsetS: Number(toI64(record.offsetNs)) / 1e9,
      localTimeNs: record.localTimeNs.toString(),
      startTimeNs: record.startTimeNs.toString(),
      lastUpdateAgoS: ageS,
      masterForS: Number(nowNs - record.startTimeNs) / 1e9,
      stale: ageS > staleAfterS,
    },
  };
}

/** "eth0, wlan0 (waiting: the kernel does not list it)", for the "PTP on:" line. */
export function formatPtpInterfaces(interfaces: readonly PtpInterfaceStatus[]): string {
  return interfaces
    .map((i) =>
      i.state === "served"
        ? i.name
        : i.state === "waiting"
          ? `${i.name} (waiting: the kernel does not list it)`
          : `${i.name} (cannot use it: ${i.problem})`,
    )
    .join(", ");
}

export function formatView(view: StatusView): string {
  const lines = [`nqptp: ${view.shmName}, interface ${view.interfaceVersion} (${view.localClock} clock)`];
  if (view.ptpInterfaces !== undefined) lines.push(`PTP on:       ${formatPtpInterfaces(view.ptpInterfaces)}`);
  const m = view.master;
  if (!m) {
    lines.push("master clock: none (the region holds zeros: no timing peer is a usable master, or play has not begun)");
    return lines.join("\n");
  }
  lines.push(`master clock: ${m.clockId}${m.ip ? ` at ${m.ip}` : ""}`);
  lines.push(`offset:       ${m.offsetS >= 0 ? "+" : ""}${m.offsetS.toFixed(9)} s (u64 ${m.offsetNs})`);
  lines.push(`last update:  ${m.lastUpdateAgoS.toFixed(3)} s ago`);
  lines.push(`master for:   ${m.masterForS.toFixed(1)} s`);
  if (m.stale) {
    lines.push(`warning: no update for ${m.lastUpdateAgoS.toFixed(1)} s: the master may have stopped sending, or play has ended`);
  }
  return lines.join("\n");
}

interface ClockRow {
  ip: string;
  clockId: string | null;
  isTimingPeer: boolean;
  qualified: boolean;
  valid: boolean;
  isMaster: boolean;
  /** 8-10: the clients following it (absent from daemons before several clients). */
  followedBy?: string[];
  lastHeardAgoNs: string | null;
  latestOffsetNs: string | null;
  sampleCount: number;
}

export function formatClocks(rows: ClockRow[], withClients = false): string {
  if (rows.length === 0) return "clocks: none seen";
  const header = ["IP", "CLOCK ID", "ROLE", "QUALIFIED", "VALID", "LAST HEARD", "OFFSET (s)", "SAMPLES", ...(withClients ? ["FOLLOWED BY"] : [])];
  const table = rows.map((r) => [
    r.ip,
    r.clockId === null ? "-" : formatClockId(BigInt(r.clockId)),
    r.isMaster ? "master" : r.isTimingPeer ? "peer" : "other",
    r.qualified ? "yes" : "no",
    r.valid ? "yes" : "no",
    r.lastHeardAgoNs === null ? "never" : `${(Number(r.lastHeardAgoNs) / 1e9).toFixed(1)} s ago`,
    r.latestOffsetNs === null ? "-" : (Number(toI64(BigInt(r.latestOffsetNs))) / 1e9).toFixed(9),
    String(r.sampleCount),
    ...(withClients ? [r.followedBy && r.followedBy.length > 0 ? r.followedBy.join(",") : "-"] : []),
  ]);
  return formatTable(header, table);
}

function formatTable(header: string[], table: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  return [header, ...table]
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** One client of the daemon's answer (control/status.ts; bigints as decimal strings). */
interface ClientRow {
  name: string;
  follow: { ip: string | null; active: boolean; validForNs: string | null };
}

/** A client region as status shows it: what the daemon says it follows, what its region holds. */
export interface ClientView {
  name: string;
  following: string | null;
  /** "active" (play on), "valid" (still published after T or E), or "idle" (zeros). */
  state: "active" | "valid" | "idle";
  validForS: number | null;
  /** What its region holds; null for zeros or a region that could not be read (`problem`). */
  master: MasterView | null;
  problem?: string;
}

export function formatClients(clients: ClientView[]): string {
  const header = ["CLIENT", "FOLLOWING", "STATE", "CLOCK ID", "OFFSET (s)", "LAST UPDATE"];
  const table = clients.map((c) => [
    c.name,
    c.following ?? "-",
    c.state === "valid" && c.validForS !== null ? `valid ${c.validForS.toFixed(1)} s` : c.state,
    c.master?.clockId ?? "-",
    c.master ? `${c.master.offsetS >= 0 ? "+" : ""}${c.master.offsetS.toFixed(9)}` : "-",
    c.problem ?? (c.master ? `${c.master.lastUpdateAgoS.toFixed(3)} s ago` : "-"),
  ]);
  return formatTable(header, table);
}

/** The region's bytes; two identical copies in a row are a consistent read (the writer may be mid-update). */
function readConsistent(path: string): Uint8Array {
  let previous = new Uint8Array(readFileSync(path));
  for (let i = 0; i < 10; i++) {
    const next = new Uint8Array(readFileSync(path));
    if (Buffer.compare(previous, next) === 0) return next;
    previous = next;
  }
  return previous;
}

/** What status uses of the daemon's answer to STATUS (src/control/status.ts). */
export type DaemonAnswer = {
  snapshot: { records: ClockRow[]; clients?: ClientRow[] };
  /** Absent from daemons before --interface; null without --interface. */
  ptpInterfaces?: PtpInterfaceStatus[] | null;
};

/** Sends STATUS to the daemon's control port; the parsed answer, or why there is none. */
export async function askDaemon(address: string, port: number, timeoutMs = 1000): Promise<DaemonAnswer | { error: string }> {
  let settle: (answer: DaemonAnswer | { error: string }) => void = () => {};
  const answered = new Promise<DaemonAnswer | { error: string }>((resolve) => (settle = resolve));
  let socket: Bun.udp.Socket<"buffer">;
  try {
    socket = await Bun.udpSocket({
      hostname: address.includes(":") ? "::" : "0.0.0.0",
      socket: {
        data(_s, data) {
          try {
            settle(JSON.parse(new TextDecoder().decode(data)) as DaemonAnswer);
          } catch {
            settle({ error: "its answer was not the JSON status report" });
          }
        },
      },
    });
  } catch (error) {
    return { error: `could not open a socket to ask it: ${(error as Error).message}` };
  }
  const timer = setTimeout(
    () => settle({ error: `no answer within ${timeoutMs / 1000} s: is it running, and is that its control port?` }),
    timeoutMs,
  );
  try {
    socket.send(new TextEncoder().encode(STATUS_REQUEST), port, address);
    return await answered;
  } catch (error) {
    return { error: `could not send the request: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
    socket.close();
  }
}

/** Everything runStatus reaches outside itself. */
export interface StatusIo extends Io {
  /** The host's architecture, which fixes the region's layout; null when unsupported. */
  arch: Arch | null;
  /** The region's bytes at `path` (e.g. /dev/shm/nqptp), or null when there is none. */
  readRegionFile(path: string): Uint8Array | null;
  /** Now, in ns of the region's local clock. */
  now(clock: LocalClock): bigint;
  askDaemon(address: string, port: number): Promise<DaemonAnswer | { error: string }>;
  sleep(ms: number): Promise<void>;
  /** Before each --watch refresh (not with --json): clears a terminal, does nothing to a pipe. */
  clearScreen(): void;
  /** Ends --watch once aborted (the command line ends it with SIGINT). */
  stop?: AbortSignal;
}

/** The real clock, /dev/shm, the control port and the process's stdout. */
export function systemStatusIo(io: Io): StatusIo {
  return {
    ...io,
    arch: HOST_ARCH,
    readRegionFile: (path) => (existsSync(path) ? readConsistent(path) : null),
    now: readClock,
    askDaemon: (address, port) => askDaemon(address, port),
    sleep: (ms) => Bun.sleep(ms),
    clearScreen: () => {
      if (process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
    },
  };
}

interface StatusOptions {
  shmName: string;
  json: boolean;
  watch: boolean;
  clocks: boolean;
  controlPort: number;
  controlAddress: string;
  staleAfterS: number;
}

type StatusPlan = { kind: "run"; options: StatusOptions } | { kind: "help" } | { kind: "error"; message: string };

export function parseStatusArgs(rawArgs: readonly string[]): StatusPlan {
  const parsed = parseCommandLine(rawArgs, args);
  if (!parsed.ok) return { kind: "error", message: parsed.reason };
  const line = parsed.line;
  if (line.flag("help")) return { kind: "help" };
  const options: StatusOptions = {
    shmName: line.take("shm-name", parseShmNameOption, DEFAULTS.shmName),
    json: line.flag("json"),
    watch: line.flag("watch"),
    clocks: line.flag("clocks"),
    controlPort: line.take("control-port", parsePort, DEFAULTS.controlPort),
    controlAddress: line.take("control-address", parseIpAddress, DEFAULT_CONTROL_ADDRESS),
    staleAfterS: line.take("stale-after", parseSeconds, DEFAULT_STALE_AFTER_S),
  };
  if (line.error) return { kind: "error", message: line.error };
  return { kind: "run", options };
}

/** One look: 0, 1 when the record is stale, EXIT.notRunning when there is no region or no answer. */
async function showOnce(options: StatusOptions, arch: Arch, io: StatusIo): Promise<number> {
  const path = `${SHM_DIRECTORY}${options.shmName}`;
  const bytes = io.readRegionFile(path);
  if (bytes === null) {
    io.err(`nqptp does not seem to be running: there is no shared memory at ${path}`);
    return EXIT.notRunning;
  }
  const result = readRegion(bytes, arch);
  if (!result.ok) {
    io.err(`${path} ${result.reason}`);
    return EXIT.notRunning;
  }
  const nowNs = io.now(result.record.layout.localClock);
  const namedClients = traitsOf(result.record.version).namedClients;
  // The daemon alone knows its other clients' names, where it hears PTP, and its clocks.
  const answer = await io.askDaemon(options.controlAddress, options.controlPort);
  const unanswered = "error" in answer ? `no answer from nqptp on ${options.controlAddress}:${options.controlPort}: ${answer.error}` : null;
  if (options.clocks && unanswered !== null) {
    io.err(unanswered);
    return EXIT.notRunning;
  }
  const view = viewOf(options.shmName, result.record, nowNs, options.staleAfterS);
  if (!("error" in answer) && answer.ptpInterfaces) view.ptpInterfaces = answer.ptpInterfaces;
  const snapshot = "error" in answer ? null : answer.snapshot;
  const clocks = options.clocks && snapshot !== null ? snapshot.records : null;
  const clients = namedClients && snapshot?.clients ? snapshot.clients.map((c) => clientView(c, arch, io, nowNs, options.staleAfterS)) : null;
  if (options.json) {
    io.out(JSON.stringify({ ...view, ...(clients ? { clients } : {}), ...(clocks ? { clocks } : {}) }));
  } else {
    const parts = [formatView(view)];
    if (clients && clients.length > 1) parts.push(formatClients(clients));
    else if (namedClients && unanswered !== null) parts.push(`clients: not known (${unanswered})`);
    if (clocks) parts.push(formatClocks(clocks, namedClients));
    io.out(parts.join("\n\n"));
  }
  return view.master?.stale ? EXIT.stale : EXIT.ok;
}

function clientView(client: ClientRow, arch: Arch, io: StatusIo, nowNs: bigint, staleAfterS: number): ClientView {
  const validForNs = client.follow.validForNs === null ? null : BigInt(client.follow.validForNs);
  const state =
    client.follow.ip !== null && client.follow.active
      ? "active"
      : client.follow.ip !== null && validForNs !== null && validForNs > 0n
        ? "valid"
        : "idle";
  const base = { name: client.name, following: client.follow.ip, state, validForS: validForNs === null ? null : Number(validForNs) / 1e9 } as const;
  const path = `${SHM_DIRECTORY}${client.name}`;
  const bytes = io.readRegionFile(path);
  if (bytes === null) return { ...base, master: null, problem: `no region at ${path}` };
  const read = readRegion(bytes, arch);
  if (!read.ok) return { ...base, master: null, problem: `${path} ${read.reason}` };
  return { ...base, master: viewOf(client.name, read.record, nowNs, staleAfterS).master };
}

export async function runStatus(rawArgs: readonly string[], io: StatusIo): Promise<number> {
  const plan = parseStatusArgs(rawArgs);
  if (plan.kind === "help") {
    io.out(await renderUsage(command));
    return EXIT.ok;
  }
  if (plan.kind === "error") {
    io.err(usageError("nqptp status", plan.message));
    return EXIT.usage;
  }
  const arch = io.arch;
  if (arch === null) {
    io.err(`nqptp status: unsupported architecture ${process.arch}`);
    return EXIT.unavailable;
  }
  const options = plan.options;
  if (!options.watch) return showOnce(options, arch, io);
  let status: number = EXIT.ok;
  while (!io.stop?.aborted) {
    if (!options.json) io.clearScreen();
    status = await showOnce(options, arch, io);
    await io.sleep(1000);
  }
  return status;
}
