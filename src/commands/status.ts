// `nqptp status`: what the daemon publishes (read from the shared memory of whatever interface
// version it serves) and, with --clocks, every clock it tracks (asked over the control port).

import { parseArgs, renderUsage, defineCommand, type ArgsDef } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { formatClockId } from "../ptp/clock-identity.ts";
import { STATUS_REQUEST } from "../control/status.ts";
import { parseAddress } from "../net/address.ts";
import { readRegion, type RegionRecord } from "../shm/read.ts";
import { HOST_ARCH } from "../sys/linux.ts";
import { readClock } from "../time/clocks.ts";
import { toI64 } from "../time/ns.ts";

const args = {
  "shm-name": { type: "string", valueHint: "/name", description: "Shared memory name", default: "/nqptp" },
  json: { type: "boolean", description: "Print JSON" },
  watch: { type: "boolean", alias: ["w"], description: "Refresh every second until interrupted" },
  clocks: { type: "boolean", description: "Also ask the daemon for every clock it tracks (over the control port)" },
  "control-port": { type: "string", valueHint: "port", description: "The daemon's control port", default: "9000" },
  "control-address": { type: "string", valueHint: "addr", description: "The daemon's control address", default: "127.0.0.1" },
  "stale-after": { type: "string", valueHint: "seconds", description: "Warn when the last update is older", default: "5" },
  help: { type: "boolean", alias: ["h"], description: "Show this help" },
} as const satisfies ArgsDef;

const command = defineCommand({
  meta: { name: "nqptp status", description: "Show the master clock nqptp publishes, and optionally every clock it sees" },
  args,
});

/** Exit status when the daemon is not running or does not answer. */
const NOT_RUNNING = 3;

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

export function formatView(view: StatusView): string {
  const lines = [`nqptp: ${view.shmName}, interface ${view.interfaceVersion} (${view.localClock} clock)`];
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
  lastHeardAgoNs: string | null;
  latestOffsetNs: string | null;
  sampleCount: number;
}

export function formatClocks(rows: ClockRow[]): string {
  if (rows.length === 0) return "clocks: none seen";
  const header = ["IP", "CLOCK ID", "ROLE", "QUALIFIED", "VALID", "LAST HEARD", "OFFSET (s)", "SAMPLES"];
  const table = rows.map((r) => [
    r.ip,
    r.clockId === null ? "-" : formatClockId(BigInt(r.clockId)),
    r.isMaster ? "master" : r.isTimingPeer ? "peer" : "other",
    r.qualified ? "yes" : "no",
    r.valid ? "yes" : "no",
    r.lastHeardAgoNs === null ? "never" : `${(Number(r.lastHeardAgoNs) / 1e9).toFixed(1)} s ago`,
    r.latestOffsetNs === null ? "-" : (Number(toI64(BigInt(r.latestOffsetNs))) / 1e9).toFixed(9),
    String(r.sampleCount),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  return [header, ...table].map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function readConsistent(path: string): Uint8Array {
  // The writer may be mid-update; two identical copies in a row are a consistent read.
  let previous = new Uint8Array(readFileSync(path));
  for (let i = 0; i < 10; i++) {
    const next = new Uint8Array(readFileSync(path));
    if (Buffer.compare(previous, next) === 0) return next;
    previous = next;
  }
  return previous;
}

type DaemonAnswer = { snapshot: { records: ClockRow[] } };

/** Sends STATUS to the daemon's control port; the parsed answer, or why there is none. */
async function askDaemon(address: string, port: number, timeoutMs = 1000): Promise<DaemonAnswer | { error: string }> {
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
  const timer = setTimeout(() => settle({ error: `no answer within ${timeoutMs / 1000} s: is it running, and is that its control port?` }), timeoutMs);
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

export async function runStatus(rawArgs: string[]): Promise<number> {
  const parsed = parseArgs(rawArgs, args) as Record<string, string | boolean | string[] | undefined>;
  if (parsed.help) {
    process.stdout.write(`${await renderUsage(command)}\n`);
    return 0;
  }
  const known = new Set(Object.keys(args).flatMap((k) => [`--${k}`]).concat(["-h", "-w"]));
  for (const arg of rawArgs) {
    const name = arg.split("=", 1)[0]!;
    if (name.startsWith("-") && !known.has(name)) {
      process.stderr.write(`nqptp status: unknown option ${JSON.stringify(arg)}\n`);
      return 64;
    }
  }
  const shmName = String(parsed["shm-name"]);
  const staleAfterS = Number(parsed["stale-after"]);
  const port = Number(parsed["control-port"]);
  const address = parseAddress(String(parsed["control-address"]))?.text;
  if (!/^\/[^/]+$/.test(shmName) || !Number.isFinite(staleAfterS) || !Number.isInteger(port) || port < 1 || port > 65535 || !address) {
    process.stderr.write("nqptp status: bad --shm-name, --stale-after, --control-port or --control-address\n");
    return 64;
  }
  if (HOST_ARCH === null) {
    process.stderr.write(`nqptp status: unsupported architecture ${process.arch}\n`);
    return 69;
  }
  const path = `/dev/shm${shmName}`;

  const once = async (): Promise<number> => {
    if (!existsSync(path)) {
      process.stderr.write(`nqptp does not seem to be running: there is no shared memory at ${path}\n`);
      return NOT_RUNNING;
    }
    const result = readRegion(readConsistent(path), HOST_ARCH!);
    if (!result.ok) {
      process.stderr.write(`${path} ${result.reason}\n`);
      return NOT_RUNNING;
    }
    const view = viewOf(shmName, result.record, readClock(result.record.layout.localClock), staleAfterS);
    let clocks: ClockRow[] | null = null;
    if (parsed.clocks) {
      const answer = await askDaemon(address, port);
      if ("error" in answer) {
        process.stderr.write(`no answer from nqptp on ${address}:${port}: ${answer.error}\n`);
        return NOT_RUNNING;
      }
      clocks = answer.snapshot.records;
    }
    if (parsed.json) {
      process.stdout.write(`${JSON.stringify(clocks ? { ...view, clocks } : view)}\n`);
    } else {
      process.stdout.write(`${formatView(view)}\n${clocks ? `\n${formatClocks(clocks)}\n` : ""}`);
    }
    return view.master?.stale ? 1 : 0;
  };

  if (!parsed.watch) return once();
  for (;;) {
    if (process.stdout.isTTY && !parsed.json) process.stdout.write("\x1b[2J\x1b[H");
    await once();
    await Bun.sleep(1000);
  }
}
