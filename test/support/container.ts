// Throw-away Debian systems for end-to-end tests that need a real systemd (PID 1 of the test
// machine may not be systemd) or an older C library: a root filesystem built once with
// mmdebstrap and cached outside the checkout, booted with `systemd-nspawn -b` on an overlay of
// its own (so the cached root stays clean), entered with nsenter (machined is not needed).
//
// Root only. `containerSupport()` says why a machine cannot run them; the tests skip with that.
// The Debian mirror is the machine's own, read from its apt sources at run time.

import {
  closeSync,
  copyFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { cachedBuild } from "./build-cache.ts";
import { checkCommand as checkHost, runCommand as runHost, spawnCollecting, type CollectedProcess, type RunResult } from "./process.ts";

export type { RunResult } from "./process.ts";

/** What a root needs to boot under systemd-nspawn and be reached: systemctl, a bus, `ip`. */
export const BOOTABLE_PACKAGES: readonly string[] = Object.freeze(["systemd", "systemd-sysv", "dbus", "iproute2"]);

/** PATH inside the containers: Debian's default for root. */
const CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ---------------------------------------------------------------------------------------------
// Can this machine do it?

/** The Debian mirror of this machine's apt sources (the main archive, not security), or null. */
export function debianMirror(): string | null {
  const sources: { uris: string[]; suites: string[] }[] = [];
  const dir = "/etc/apt/sources.list.d";
  const names = existsSync(dir) ? readdirSync(dir).sort() : [];
  // debian.sources is where Debian 12 puts the archive: ask it first.
  names.sort((a, b) => Number(b === "debian.sources") - Number(a === "debian.sources"));
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith(".sources")) sources.push(...deb822Sources(readText(path)));
    else if (name.endsWith(".list")) sources.push(...oneLineSources(readText(path)));
  }
  sources.push(...oneLineSources(readText("/etc/apt/sources.list")));
  for (const { uris, suites } of sources) {
    // The main archive carries plain suite names; bookworm-security lives elsewhere.
    if (!suites.some((s) => /^[a-z]+$/.test(s))) continue;
    const uri = uris.find((u) => /^(https?|file):/.test(u));
    if (uri) return uri;
  }
  return null;
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** deb822 stanzas (sources.list.d/*.sources) of Types: deb that are not disabled. */
function deb822Sources(text: string): { uris: string[]; suites: string[] }[] {
  const out: { uris: string[]; suites: string[] }[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (key: string) =>
      stanza
        .split("\n")
        .find((l) => l.toLowerCase().startsWith(`${key.toLowerCase()}:`))
        ?.slice(key.length + 1)
        .trim()
        .split(/\s+/) ?? [];
    if (!field("Types").includes("deb") || field("Enabled")[0]?.toLowerCase() === "no") continue;
    out.push({ uris: field("URIs"), suites: field("Suites") });
  }
  return out;
}

/** One-line `deb [options] uri suite components` entries. */
function oneLineSources(text: string): { uris: string[]; suites: string[] }[] {
  const out: { uris: string[]; suites: string[] }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw
      .replace(/#.*/, "")
      .replace(/\[[^\]]*\]/, "")
      .trim()
      .split(/\s+/);
    if (line[0] !== "deb" || line.length < 3) continue;
    out.push({ uris: [line[1]!], suites: [line[2]!] });
  }
  return out;
}

/**
 * null when this machine can build and boot the containers, else why not (for a skip message).
 * CI, as root, installs what is missing (scripts/test.sh).
 */
export function containerSupport(): string | null {
  if (process.getuid?.() !== 0) return "root only: mmdebstrap, systemd-nspawn and overlay mounts need it";
  const missing = [
    ["mmdebstrap", "mmdebstrap"],
    ["systemd-nspawn", "systemd-container"],
    ["nsenter", "util-linux"],
    ["ip", "iproute2"],
  ].filter(([tool]) => Bun.which(tool!) === null);
  if (missing.length > 0) return `missing ${missing.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(", ")}`;
  if (
    !readText("/proc/filesystems")
      .split("\n")
      .some((l) => l.trim().endsWith("overlay"))
  )
    return "the kernel has no overlay filesystem";
  if (debianMirror() === null) return "no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d";
  return null;
}

// ---------------------------------------------------------------------------------------------
// Running things

/** The PIDs of `pid`'s children (Linux 3.5+: /proc/PID/task/PID/children). */
function childrenOf(pid: number): number[] {
  return readText(`/proc/${pid}/task/${pid}/children`)
    .trim()
    .split(/\s+/)
    .filter((s) => s !== "")
    .map(Number);
}

function commOf(pid: number): string {
  return readText(`/proc/${pid}/comm`).trim();
}

/** The parent PID of `pid` from /proc/PID/stat, or null when there is no such process. */
function parentOf(pid: number): number | null {
  const stat = readText(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return stat === "" ? null : Number(fields[1]);
}

async function waitUntil<T>(what: string, probe: () => T | null | Promise<T | null>, timeoutMs: number, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Roots, built once and cached

export interface DebianRoot {
  /** The root filesystem: never written to (containers boot on an overlay of it). */
  dir: string;
  /** ms spent building it now; 0 when it came from the cache. */
  buildMs: number;
}

/**
 * A `mmdebstrap --variant=apt` root of `suite` with `packages`, from this machine's mirror, kept
 * under the system's temporary directory keyed by suite, packages and mirror (build-cache.ts), so
 * a test run builds each once; a half-built root is never used.
 */
export function debianRoot(suite: string, packages: readonly string[] = BOOTABLE_PACKAGES): Promise<DebianRoot> {
  const mirror = debianMirror();
  if (mirror === null) return Promise.reject(new Error("no Debian mirror in this machine's apt sources"));
  const list = [...packages].sort();
  return cachedBuild(suite, { variant: "apt", suite, list, mirror }, async (partial) => {
    await checkHost(["mmdebstrap", "--quiet", "--variant=apt", `--include=${list.join(",")}`, suite, partial, mirror], 600_000);
  });
}

// ---------------------------------------------------------------------------------------------
// Booted containers

/** A program started inside a container, through nsenter. */
export interface ContainerProcess extends CollectedProcess {
  /** The program's PID on the host (nsenter forks it; signals must go to it, not to nsenter). */
  hostPid(): Promise<number>;
  /** Sends `signal` to the program itself (SIGCONT goes to nsenter too: see there). */
  signal(signal: NodeJS.Signals): Promise<void>;
}

export interface Container {
  readonly name: string;
  /** The container's `/`, seen from the host: files written under it appear inside. */
  readonly rootDir: string;
  /** Host PID of the container's systemd. */
  readonly leaderPid: number;
  /** From starting systemd-nspawn to `systemctl is-system-running` answering running (or degraded). */
  readonly bootMs: number;
  /** Runs argv inside (all of the container's namespaces, a clean environment). */
  run(argv: string[], timeoutMs?: number): Promise<RunResult>;
  /** As run, but fails with the output unless it exits 0; returns stdout. */
  check(argv: string[], timeoutMs?: number): Promise<string>;
  /** Starts argv inside and collects its output; ended when the container stops. */
  spawn(argv: string[]): ContainerProcess;
  /** Starts a host program in the container's network namespace only (the host's files). */
  spawnInNetwork(argv: string[]): CollectedProcess;
  /** Writes a file inside the container. */
  put(path: string, content: string | Uint8Array, mode: number): void;
  /** Copies a host file inside the container. */
  copyIn(hostPath: string, path: string, mode: number): void;
  /** What the container printed on its console so far (for failure messages). */
  console(): string;
  /** Halts it (SIGTERM to nspawn, SIGKILL as a fallback), unmounts and removes its overlay. */
  stop(): Promise<void>;
}

let containerCounter = 0;

/**
 * Boots `root` with `systemd-nspawn -b --private-network` on a fresh overlay and waits until its
 * systemd says the system is up. `tag` goes into the names (directories, hostname).
 */
export async function bootContainer(root: DebianRoot, tag: string): Promise<Container> {
  const name = `nqptp-${tag}-${process.pid}-${++containerCounter}`;
  const runDir = mkdtempSync(join(tmpdir(), `${name}-`));
  const upper = join(runDir, "upper");
  const work = join(runDir, "work");
  const merged = join(runDir, "root");
  for (const dir of [upper, work, merged]) mkdirSync(dir);
  const consolePath = join(runDir, "console.log");
  let mounted = false;
  let nspawn: Subprocess | null = null;
  let leaderPid = 0;
  const started: { proc: Subprocess; program: () => number | null }[] = [];

  const unmountAndRemove = async () => {
    if (mounted) {
      let result = await runHost(["umount", merged]);
      for (let i = 0; result.code !== 0 && i < 20; i++) {
        await Bun.sleep(100);
        result = await runHost(["umount", merged]);
      }
      if (result.code !== 0) {
        console.error(`container ${name}: umount ${merged} failed (${result.stderr.trim()}); detaching it lazily`);
        await runHost(["umount", "-l", merged]);
      }
      mounted = false;
    }
    rmSync(runDir, { recursive: true, force: true });
  };

  const stop = async () => {
    // First what the tests started inside, by PID, then the container itself.
    for (const { proc, program } of started.splice(0)) {
      const pid = program();
      // Only while its nsenter still holds it: a reaped PID may belong to someone else by now.
      if (pid !== null && proc.exitCode === null && parentOf(pid) === proc.pid) process.kill(pid, "SIGKILL");
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
    if (nspawn && nspawn.exitCode === null) {
      const leader = leaderPid;
      nspawn.kill("SIGTERM"); // nspawn asks the container's systemd to halt
      const halted = await Promise.race([nspawn.exited.then(() => true), Bun.sleep(20_000).then(() => false)]);
      if (!halted) {
        console.error(`container ${name}: no clean halt within 20 s; killing it`);
        if (leader > 0 && parentOf(leader) === nspawn.pid) process.kill(leader, "SIGKILL");
        nspawn.kill("SIGKILL");
        await nspawn.exited;
      }
    }
    await unmountAndRemove();
  };

  const consoleText = () => readText(consolePath);
  try {
    await checkHost(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${root.dir},upperdir=${upper},workdir=${work}`, merged]);
    mounted = true;
    const bootStart = performance.now();
    const consoleFd = openSync(consolePath, "w");
    try {
      nspawn = Bun.spawn(
        [
          "systemd-nspawn",
          "-D",
          merged,
          `--machine=${name}`,
          "-b",
          "--register=no",
          "--keep-unit",
          "--private-network",
          "--link-journal=no",
          "--console=read-only",
        ],
        { stdin: "ignore", stdout: consoleFd, stderr: consoleFd },
      );
    } finally {
      closeSync(consoleFd);
    }
    const spawned = nspawn;
    // The container's systemd is the nspawn process's child once it has exec'd systemd.
    leaderPid = await waitUntil(
      "the container's systemd",
      () => {
        if (spawned.exitCode !== null) throw new Error(`systemd-nspawn exited with ${spawned.exitCode}:\n${consoleText()}`);
        return childrenOf(spawned.pid).find((pid) => commOf(pid) === "systemd") ?? null;
      },
      20_000,
    );
    const leader = leaderPid;
    // Until systemd has made its socket, systemctl cannot ask it; then --wait blocks until boot ends.
    await waitUntil(
      "the container to finish booting",
      async () => {
        if (spawned.exitCode !== null) throw new Error(`systemd-nspawn exited with ${spawned.exitCode}:\n${consoleText()}`);
        const result = await runInside(leader, ["systemctl", "is-system-running", "--wait"], 30_000);
        return /^(running|degraded)$/m.test(result.stdout) ? true : null;
      },
      30_000,
      50,
    );
    const bootMs = performance.now() - bootStart;

    const container: Container = {
      name,
      rootDir: merged,
      leaderPid: leader,
      bootMs,
      run: (argv, timeoutMs) => runInside(leader, argv, timeoutMs),
      async check(argv, timeoutMs) {
        const result = await runInside(leader, argv, timeoutMs);
        if (result.code !== 0) throw new Error(`in ${name}: ${argv.join(" ")} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
        return result.stdout;
      },
      spawn(argv) {
        const child = spawnCollecting(nsenterArgv(leader, argv));
        let programPid: number | null = null;
        const program = () => (programPid ??= childrenOf(child.proc.pid)[0] ?? null);
        started.push({ proc: child.proc, program });
        const hostPid = () =>
          waitUntil(
            `the host PID of ${argv[0]}`,
            () => {
              if (child.proc.exitCode !== null) throw new Error(`${argv.join(" ")} exited with ${child.proc.exitCode}:\n${child.output()}`);
              return program();
            },
            10_000,
            5,
          );
        return {
          ...child,
          hostPid,
          async signal(signal) {
            const pid = await hostPid();
            if (child.proc.exitCode !== null || parentOf(pid) !== child.proc.pid) throw new Error(`${argv[0]} has exited: not sending ${signal}`);
            process.kill(pid, signal);
            // nsenter stops itself when it sees its child stop, and would wait stopped for ever
            // (and never reap the child): continue it too.
            if (signal === "SIGCONT" && child.proc.exitCode === null) child.proc.kill("SIGCONT");
          },
        };
      },
      spawnInNetwork(argv) {
        const child = spawnCollecting(["nsenter", "-t", String(leader), "-n", ...argv]);
        started.push({ proc: child.proc, program: () => null });
        return child;
      },
      put(path, content, mode) {
        const target = join(merged, path);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, content, { mode });
        chmodSync(target, mode);
      },
      copyIn(hostPath, path, mode) {
        const target = join(merged, path);
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(hostPath, target);
        chmodSync(target, mode);
      },
      console: consoleText,
      stop,
    };
    return container;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** nsenter into every namespace of the container's systemd, with Debian's root environment. */
function nsenterArgv(leaderPid: number, argv: string[]): string[] {
  return [
    "nsenter",
    "-t",
    String(leaderPid),
    "-a",
    "env",
    "-i",
    `PATH=${CONTAINER_PATH}`,
    "LANG=C.UTF-8",
    "SYSTEMD_COLORS=0",
    "SYSTEMD_PAGER=",
    ...argv,
  ];
}

function runInside(leaderPid: number, argv: string[], timeoutMs?: number): Promise<RunResult> {
  return runHost(nsenterArgv(leaderPid, argv), timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// A LAN for the container

export interface LanPeer {
  /** The network namespace at the far end of the link. */
  readonly namespace: string;
  readonly address: string;
  readonly containerAddress: string;
  /** The link's name inside the container (a network interface there). */
  readonly containerInterface: string;
  /** Starts a host program in the peer's namespace. */
  spawn(argv: string[]): CollectedProcess;
  /** Ends what spawn started and deletes the namespace (and with it the link). */
  remove(): Promise<void>;
}

let lanCounter = 0;

/**
 * A veth link from the container to a network namespace of its own, IPv4 on both ends: a host on
 * the container's LAN, for a PTP master that needs the ports 319/320 the container's daemon holds
 * on every address.
 */
export async function addLanPeer(container: Container, containerAddress = "192.0.2.1", address = "192.0.2.2", prefix = 24): Promise<LanPeer> {
  const n = ++lanCounter;
  const namespace = `nqptp-lan-${process.pid}-${n}`;
  // Interface names: at most 15 characters.
  const inside = `nqc${process.pid}x${n}`.slice(0, 15);
  const outside = `nqp${process.pid}x${n}`.slice(0, 15);
  const started: CollectedProcess[] = [];
  const remove = async () => {
    for (const child of started.splice(0)) {
      if (child.proc.exitCode === null) child.proc.kill("SIGKILL");
      await child.proc.exited;
    }
    await runHost(["ip", "netns", "del", namespace]);
    await runHost(["ip", "link", "del", inside]); // only if it never left the host: otherwise a no-op
  };
  try {
    await checkHost(["ip", "netns", "add", namespace]);
    await checkHost(["ip", "link", "add", inside, "type", "veth", "peer", "name", outside]);
    await checkHost(["ip", "link", "set", inside, "netns", String(container.leaderPid)]);
    await checkHost(["ip", "link", "set", outside, "netns", namespace]);
    const inContainer = ["nsenter", "-t", String(container.leaderPid), "-n"];
    await checkHost([...inContainer, "ip", "addr", "add", `${containerAddress}/${prefix}`, "dev", inside]);
    await checkHost([...inContainer, "ip", "link", "set", inside, "up"]);
    await checkHost(["ip", "-n", namespace, "addr", "add", `${address}/${prefix}`, "dev", outside]);
    await checkHost(["ip", "-n", namespace, "link", "set", outside, "up"]);
    await checkHost(["ip", "-n", namespace, "link", "set", "lo", "up"]);
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    namespace,
    address,
    containerAddress,
    containerInterface: inside,
    spawn(argv) {
      const child = spawnCollecting(["ip", "netns", "exec", namespace, ...argv]);
      started.push(child);
      return child;
    },
    remove,
  };
}

/**
 * Sends one UDP datagram from inside the container (bash's /dev/udp), e.g. a control message to a
 * daemon on the container's loopback. `endWithNul` adds the NUL a C client sends (an argument
 * cannot carry one).
 */
export async function sendUdpInside(container: Container, address: string, port: number, text: string, endWithNul: boolean): Promise<void> {
  const format = endWithNul ? "%s\\0" : "%s";
  await container.check(["bash", "-c", `printf '${format}' "$1" > "/dev/udp/$2/$3"`, "send", text, address, String(port)]);
}
