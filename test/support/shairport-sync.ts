// Real Shairport Sync for end-to-end tests: built from the source in the shared clients directory
// (beside the repository, ../shared/clients, or NQPTP_CLIENTS_DIR) by its build-shairport-sync.sh,
// once per version, into a cache under the system's temporary directory that outlives the run,
// so a CI run builds each version once. Nothing of Shairport Sync is part of this project.
//
// The script builds in a directory of its own and renames it into place only when the build has
// succeeded, and finds a finished build by its executable; builds of one version are serialised
// here with flock(1), so two test runs never share (or remove) a half-built tree.

import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ROOT } from "./daemon.ts";

export const SHAIRPORT_SYNC_VERSIONS = ["4.3.7", "5.2.1", "5.3-dev"] as const;
export type ShairportSyncVersion = (typeof SHAIRPORT_SYNC_VERSIONS)[number];

const BUILD_SCRIPT = "build-shairport-sync.sh";
export const SHAIRPORT_SYNC_CACHE = join(tmpdir(), "nqptp-shairport-sync");
/** A cold build takes about 20 s on 2 cores; waiting for another run's build of it counts too. */
const BUILD_TIMEOUT_MS = 600_000;

/** The shared clients directory: NQPTP_CLIENTS_DIR, else ../shared/clients beside the repository. */
export function clientsDir(): string {
  const given = process.env.NQPTP_CLIENTS_DIR;
  return given !== undefined && given !== "" ? resolve(given) : resolve(ROOT, "..", "shared", "clients");
}

/**
 * What the build needs, each found by a command or a pkg-config module its Debian package
 * provides (scripts/test.sh, as root, installs what is missing the same way).
 */
const BUILD_NEEDS: readonly { command?: string; module?: string; pkg: string }[] = [
  { command: "g++", pkg: "g++" },
  { command: "make", pkg: "make" },
  { command: "autoreconf", pkg: "autoconf" },
  { command: "automake", pkg: "automake" },
  { command: "libtoolize", pkg: "libtool" },
  { command: "pkg-config", pkg: "pkg-config" },
  { command: "xxd", pkg: "xxd" },
  { command: "plistutil", pkg: "libplist-utils" },
  { module: "popt", pkg: "libpopt-dev" },
  { module: "libconfig", pkg: "libconfig-dev" },
  { module: "openssl", pkg: "libssl-dev" },
  { module: "soxr", pkg: "libsoxr-dev" },
  { module: "libplist-2.0", pkg: "libplist-dev" },
  { module: "libsodium", pkg: "libsodium-dev" },
  { module: "libavutil", pkg: "libavutil-dev" },
  { module: "libavcodec", pkg: "libavcodec-dev" },
  { module: "libavformat", pkg: "libavformat-dev" },
  { module: "uuid", pkg: "uuid-dev" },
  { module: "libgcrypt", pkg: "libgcrypt20-dev" },
];

function hasModule(module: string): boolean {
  if (Bun.which("pkg-config") === null) return false;
  return Bun.spawnSync(["pkg-config", "--exists", module], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

/** null when Shairport Sync can be built here, else why not (for a skip message). */
export function shairportSyncUnavailable(): string | null {
  const dir = clientsDir();
  if (!existsSync(join(dir, BUILD_SCRIPT))) {
    const where = process.env.NQPTP_CLIENTS_DIR
      ? "NQPTP_CLIENTS_DIR"
      : "the shared clients directory beside the repository; NQPTP_CLIENTS_DIR names another";
    return `no ${BUILD_SCRIPT} in ${dir} (${where})`;
  }
  const missing = BUILD_NEEDS.filter((need) => (need.command ? Bun.which(need.command) === null : !hasModule(need.module!))).map((need) => need.pkg);
  if (Bun.which("flock") === null) missing.push("util-linux (flock)");
  if (missing.length > 0) return `building Shairport Sync needs the Debian packages ${missing.join(" ")} (npm test installs them when run as root)`;
  return null;
}

export interface BuiltShairportSync {
  version: ShairportSyncVersion;
  path: string;
  /** `shairport-sync -V`, e.g. "5.2.1-AirPlay2-smi10-OpenSSL-tinysvcmdns-dummy-stdout-pipe-soxr-sysconfdir:/usr/local/etc". */
  versionString: string;
  /** Time spent in the build script: a build, or waiting for another run's, or finding it cached. */
  buildMs: number;
  /** True when this call built it (it was not in the cache). */
  built: boolean;
}

const builds = new Map<ShairportSyncVersion, Promise<BuiltShairportSync>>();

async function run(argv: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Shairport Sync `version`, built once (see the top of this file). Fails with the build's last lines. */
export function buildShairportSync(version: ShairportSyncVersion): Promise<BuiltShairportSync> {
  let build = builds.get(version);
  if (!build) {
    build = (async () => {
      mkdirSync(SHAIRPORT_SYNC_CACHE, { recursive: true, mode: 0o755 });
      const before = new Set(readdirSync(SHAIRPORT_SYNC_CACHE));
      const started = performance.now();
      const script = join(clientsDir(), BUILD_SCRIPT);
      const lock = join(SHAIRPORT_SYNC_CACHE, `.lock-${version}`);
      const result = await run(["flock", "-w", String(BUILD_TIMEOUT_MS / 1000), lock, script, version, SHAIRPORT_SYNC_CACHE], BUILD_TIMEOUT_MS);
      const buildMs = performance.now() - started;
      if (result.code !== 0) {
        throw new Error(
          `building Shairport Sync ${version} with ${script} failed (exit ${result.code}):\n${result.stderr.trimEnd()}\n${result.stdout.trimEnd()}`,
        );
      }
      const path = result.stdout.trim().split("\n").at(-1) ?? "";
      if (!path.startsWith(`${SHAIRPORT_SYNC_CACHE}/`) || !existsSync(path) || (statSync(path).mode & 0o111) === 0) {
        throw new Error(`${script} ${version} printed ${JSON.stringify(path)}, not an executable under ${SHAIRPORT_SYNC_CACHE}`);
      }
      const probe = await run([path, "-V"], 10_000);
      const versionString = `${probe.stdout}${probe.stderr}`.trim().split("\n")[0] ?? "";
      if (!versionString.startsWith(version) || !/-AirPlay2-/.test(versionString)) {
        throw new Error(`${path} -V says ${JSON.stringify(versionString)}: not an AirPlay 2 build of ${version}`);
      }
      const built = !before.has(path.slice(SHAIRPORT_SYNC_CACHE.length + 1).split("/")[0]!);
      return { version, path, versionString, buildMs, built };
    })();
    builds.set(version, build);
    build.catch(() => builds.delete(version));
  }
  return build;
}

/** One instance's settings; what must differ between instances on one host. */
export interface InstanceSettings {
  name: string;
  /** RTSP port (general.port); AirPlay 2's default is 7000. */
  port?: number;
  udpPortBase?: number;
  airplayDeviceIdOffset?: number;
  /** general.nqptp_shared_memory_interface_name (5.3-dev with upstream's #2273): the region's name. */
  interfaceName?: string;
}

/** A shairport-sync.conf (libconfig syntax) with those settings in `general`. */
export function instanceConfig(settings: InstanceSettings): string {
  const lines = [`  name = ${JSON.stringify(settings.name)};`];
  if (settings.port !== undefined) lines.push(`  port = ${settings.port};`);
  if (settings.udpPortBase !== undefined) lines.push(`  udp_port_base = ${settings.udpPortBase};`);
  if (settings.airplayDeviceIdOffset !== undefined) lines.push(`  airplay_device_id_offset = ${settings.airplayDeviceIdOffset};`);
  if (settings.interfaceName !== undefined) lines.push(`  nqptp_shared_memory_interface_name = ${JSON.stringify(settings.interfaceName)};`);
  return `general = {\n${lines.join("\n")}\n};\n`;
}

/**
 * The command line: no sound card (dummy output), tinysvcmdns instead of avahi, AirPlay 2, -vv.
 * 4.3 has no --service-type (an AirPlay 2 build of it is always AirPlay 2); 5.x would fall back to
 * classic AirPlay without nqptp unless told, so it is told.
 */
export function instanceArgv(built: BuiltShairportSync, configPath: string): string[] {
  const serviceType = Number(built.version.split(".")[0]) >= 5 ? ["--service-type", "airplay2"] : [];
  return [built.path, "-c", configPath, "-o", "dummy", "-m", "tinysvcmdns", ...serviceType, "-vv"];
}

// ---------------------------------------------------------------------------------------------
// Reading its -vv log (standard error). Each line: seconds since the previous line, "file:line", text.

/** Shairport Sync found nqptp's region and its version matched: 5.x and 4.3 say it differently. */
export const FOUND_NQPTP = /NQPTP service found\.|NQPTP is online\.|NQPTP came online after [\d.]+ milliseconds\./;
/** What it says when it finds no region or the wrong interface (4.3 in lower case). */
export const NQPTP_COMPLAINT = /can not be found|can not find the nqptp service|does not seem to be initialised|too old for|is not compatible with/i;
/** In AirPlay 2 mode. */
export const AIRPLAY2_STARTUP = /Startup in AirPlay 2 mode/;

/** The lines of `text` that match `pattern`, trimmed. */
export function linesMatching(text: string, pattern: RegExp): string[] {
  return text
    .split("\n")
    .filter((l) => pattern.test(l))
    .map((l) => l.trim());
}

/**
 * How long after sending "<name> T" Shairport Sync logged that it found the region, from its own
 * log (the time on a line is since the line before): null unless the two lines are adjacent.
 */
export function foundAfterMs(log: string, interfaceName: string): number | null {
  const lines = log.split("\n");
  const sent = lines.findIndex((l) => l.includes(`Send control message to NQPTP: "${interfaceName} T"`));
  const next = sent >= 0 ? lines[sent + 1] : undefined;
  if (next === undefined || !FOUND_NQPTP.test(next)) return null;
  const seconds = Number(next.trim().split(/\s+/)[0]);
  return Number.isFinite(seconds) ? seconds * 1000 : null;
}

/** The RTSP port it says it listens on ("rtsp listening port is 7000."), or null. */
export function rtspPort(log: string): number | null {
  const match = log.match(/rtsp listening port is (\d+)\./);
  return match ? Number(match[1]) : null;
}
