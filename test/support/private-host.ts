// A private host for end-to-end tests that run real clients against dist/nqptp on its default
// ports and names: a mount namespace with its own /dev/shm and /etc/hosts, and a network
// namespace with loopback and one Ethernet-like link (a veth) to a LAN peer in a namespace of
// its own (a PTP master can send from there: the daemon ignores packets from its own addresses).
//
//   private host (unshare --mount --net)                        LAN peer (ip netns)
//   lo: 127.0.0.1, ::1; 224.0.0.0/4 routed to lo                lo
//   lan0 192.0.2.1/24  ────────────── veth ──────────────────  lan1 192.0.2.2/24
//   /dev/shm: a tmpfs of its own; /etc/hosts: Debian's default
//
// The namespaces are held by one process (sh, then sleep) that unshare starts; programs enter
// them with nsenter, which execs them (no fork), so every PID the tests hold is the program's.
// Each is ended by that PID on stop(), SIGTERM first, SIGKILL after a grace period; an "exit"
// hook kills what is left if the test process ends first. Root only.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnCollecting, type CollectedProcess } from "./process.ts";

/** /etc/hosts as Debian installs it: localhost is both 127.0.0.1 and ::1 (glibc then prefers ::1). */
export const DEBIAN_HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n";

const NAMESPACE_PREFIX = "nqptp-host-";

/** null when this machine can make private hosts, else why not (for a skip message). */
export function privateHostUnavailable(): string | null {
  if (process.platform !== "linux") return "mount and network namespaces need Linux";
  if (process.getuid?.() !== 0) return "a private mount and network namespace (own /dev/shm, ports 319/320 and 9000) needs root (CI runs as root)";
  const missing = [
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["ip", "iproute2"],
  ].filter(([tool]) => Bun.which(tool!) === null);
  if (missing.length > 0) return `missing ${missing.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(", ")}`;
  return null;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A program started in the private host (or on the LAN peer), ended by its PID. */
export interface HostProcess extends CollectedProcess {
  readonly label: string;
  /** SIGTERM (or `signal`), SIGKILL after `graceMs`; resolves with the exit code (null if killed by a signal) and signal. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: string | null }>;
}

export interface PrivateHost {
  /** PID of the process that holds the namespaces. */
  readonly pid: number;
  /** A scratch directory on the real file system, visible inside too (configuration files). */
  readonly dir: string;
  /** The private host's address on lan0, and the LAN peer's. */
  readonly address: string;
  readonly peerAddress: string;
  /** Starts argv inside, collecting its output; ended by stop() at the latest. Paths must be absolute. */
  spawn(label: string, argv: string[]): HostProcess;
  /** Starts argv on the LAN peer. */
  spawnOnPeer(label: string, argv: string[]): HostProcess;
  /** Runs argv inside to completion (SIGKILLed after timeoutMs). */
  run(argv: string[], timeoutMs?: number): Promise<RunResult>;
  /** What every program started here printed last, for failure messages. */
  tails(lines?: number): string;
  /** Ends every program by PID, then the holder; deletes the peer's namespace and the scratch directory. */
  stop(): Promise<void>;
}

function runSync(argv: string[]): { ok: boolean; out: string } {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  return { ok: result.exitCode === 0, out: `${result.stdout.toString()}${result.stderr.toString()}`.trim() };
}

function must(argv: string[]): void {
  const result = runSync(argv);
  if (!result.ok) throw new Error(`${argv.join(" ")} failed: ${result.out}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Peer namespaces left by test processes that no longer exist (killed before their cleanup). */
function sweepStalePeers(): void {
  let names: string[] = [];
  try {
    names = readdirSync("/run/netns");
  } catch {
    return;
  }
  for (const name of names) {
    const match = name.match(new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-\\d+$`));
    if (match && !isAlive(Number(match[1]))) runSync(["ip", "netns", "del", name]);
  }
}

function tailOf(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

let hostCounter = 0;

export async function startPrivateHost(tag: string): Promise<PrivateHost> {
  sweepStalePeers();
  const dir = mkdtempSync(join(tmpdir(), `nqptp-${tag}-`));
  const hostsFile = join(dir, "hosts");
  writeFileSync(hostsFile, DEBIAN_HOSTS);
  const peerNamespace = `${NAMESPACE_PREFIX}${process.pid}-${++hostCounter}`;
  const children: HostProcess[] = [];
  let peerCreated = false;
  let stopped = false;

  const holder = spawnCollecting([
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--net",
    "sh",
    "-c",
    'mount -t tmpfs -o size=4m,mode=1777 tmpfs /dev/shm && mount --bind "$1" /etc/hosts && echo ready && exec sleep infinity',
    "holder",
    hostsFile,
  ]);
  const pid = holder.proc.pid;

  const killEverything = () => {
    for (const child of children) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill("SIGKILL");
    if (holder.proc.exitCode === null && holder.proc.signalCode === null) holder.proc.kill("SIGKILL");
    if (peerCreated) runSync(["ip", "netns", "del", peerNamespace]);
  };
  const onExit = () => killEverything();
  process.on("exit", onExit);

  const track = (label: string, argv: string[]): HostProcess => {
    if (stopped) throw new Error(`private host ${tag} is stopped: not starting ${label}`);
    const child = spawnCollecting(argv);
    const hostProcess: HostProcess = {
      ...child,
      label,
      async stop(signal = "SIGTERM", graceMs = 5000) {
        const { proc } = child;
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill(signal);
          const ended = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
          if (!ended) {
            console.error(`${label}: still running ${graceMs} ms after ${signal}; killing it`);
            proc.kill("SIGKILL");
          }
        }
        await child.exited(graceMs);
        return { code: proc.signalCode === null ? proc.exitCode : null, signal: proc.signalCode === null ? null : String(proc.signalCode) };
      },
    };
    children.push(hostProcess);
    return hostProcess;
  };
  // Entering a mount namespace moves the working directory to its root: paths must be absolute.
  const inside = (argv: string[]) => {
    if (!argv[0]?.startsWith("/") && Bun.which(argv[0] ?? "") === null)
      throw new Error(`${argv[0]}: give programs in a private host by absolute path`);
    return ["nsenter", "-t", String(pid), "-m", "-n", "--", ...argv];
  };

  const host: PrivateHost = {
    pid,
    dir,
    address: "192.0.2.1",
    peerAddress: "192.0.2.2",
    spawn: (label, argv) => track(label, inside(argv)),
    spawnOnPeer: (label, argv) => track(label, ["ip", "netns", "exec", peerNamespace, ...argv]),
    async run(argv, timeoutMs = 10_000) {
      const proc = Bun.spawn(inside(argv), { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { code, stdout, stderr };
    },
    tails(lines = 25) {
      return children
        .map((c) => `--- ${c.label} (exit ${c.proc.signalCode ?? c.proc.exitCode ?? "running"}), last ${lines} lines:\n${tailOf(c.output(), lines)}`)
        .join("\n");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const child of [...children].reverse()) await child.stop("SIGTERM", 3000);
      killEverything();
      await holder.exited(5000);
      process.off("exit", onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await holder.waitForOutput(/^ready$/m, 10_000);
    const inNet = ["nsenter", "-t", String(pid), "-n", "--"];
    must([...inNet, "ip", "link", "set", "lo", "up"]);
    must(["ip", "netns", "add", peerNamespace]);
    peerCreated = true;
    must(["ip", "-n", peerNamespace, "link", "set", "lo", "up"]);
    // Both ends are made directly in their namespaces: the names never meet in the host's.
    must(["ip", "link", "add", "lan0", "netns", String(pid), "type", "veth", "peer", "name", "lan1", "netns", peerNamespace]);
    must([...inNet, "ip", "addr", "add", `${host.address}/24`, "dev", "lan0"]);
    must([...inNet, "ip", "link", "set", "lan0", "up"]);
    must(["ip", "-n", peerNamespace, "addr", "add", `${host.peerAddress}/24`, "dev", "lan1"]);
    must(["ip", "-n", peerNamespace, "link", "set", "lan1", "up"]);
    // Multicast stays on this host (Shairport Sync's tinysvcmdns joins its mDNS group).
    must([...inNet, "ip", "route", "add", "224.0.0.0/4", "dev", "lo"]);
  } catch (error) {
    await host.stop();
    throw error;
  }
  return host;
}
