// Things slow to build that tests share (Debian roots, an arm64 system image): built once into a
// directory under the system's temporary directory, keyed by what they are made of, so a test run
// (and the next one on the same machine) builds each once.
//
// A build happens beside its final place and is renamed into it only when it is complete: a
// half-built one (a run killed in the middle, a build that failed) is never taken for a finished
// one, and a second run waits for a first that is building it. What a killed run left half-built is removed by the next
// build of the same thing, once its process is gone; never while something is mounted inside it
// (mmdebstrap mounts /proc, /sys and device nodes into the root it builds, and a killed mmdebstrap
// leaves them there): those are unmounted first, so that removing it never reaches into them.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { runCommand } from "./process.ts";

/** Where the builds live: outside any checkout, shared by every test run of this machine. */
export const CACHE_DIR = join(tmpdir(), "nqptp-roots");

export interface CachedBuild {
  /** The finished build: never written to by its users. */
  dir: string;
  /** ms spent building it now; 0 when it came from the cache. */
  buildMs: number;
}

const builds = new Map<string, Promise<CachedBuild>>();

/**
 * The directory `name`-<hash of `key`> under CACHE_DIR, made by `build` (which must create the path
 * it is given, a fresh one that does not exist yet) if no earlier build finished. Once per
 * process: callers asking together share one build; a failed one is tried again by the next call.
 */
export function cachedBuild(name: string, key: unknown, build: (partialDir: string) => Promise<void>): Promise<CachedBuild> {
  const hash = createHash("sha256").update(JSON.stringify(key)).digest("hex").slice(0, 16);
  const dir = join(CACHE_DIR, `${name}-${hash}`);
  let building = builds.get(dir);
  if (!building) {
    building = (async () => {
      if (existsSync(dir)) return { dir, buildMs: 0 }; // only ever a complete build is renamed there
      mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 });
      // Another process building the same (npm test warms the caches in the background while the
      // first tests run): wait for it rather than build it twice on two cores.
      const waitedMs = await waitForLiveBuilder(dir);
      if (existsSync(dir)) return { dir, buildMs: waitedMs };
      await removeAbandoned(dir);
      const partial = `${dir}.partial-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
      const started = performance.now();
      try {
        await build(partial);
        try {
          renameSync(partial, dir);
        } catch (error) {
          // Another run finished first: theirs is as good as ours.
          if (!existsSync(dir)) throw error;
        }
      } finally {
        await removeBuildDir(partial);
      }
      return { dir, buildMs: performance.now() - started };
    })();
    builds.set(dir, building);
    building.catch(() => builds.delete(dir));
  }
  return building;
}

/** How long a build of another process is waited for at most (an arm64 system takes 2-3 minutes). */
const WAIT_FOR_BUILDER_MS = 20 * 60_000;

/** The pids of the processes building `dir` now (their half-built copies, `<dir>.partial-<pid>-…`). */
function liveBuilders(dir: string): number[] {
  const prefix = `${basename(dir)}.partial-`;
  const pids: number[] = [];
  for (const entry of readdirSync(CACHE_DIR)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && existsSync(`/proc/${pid}`)) pids.push(pid);
  }
  return pids;
}

/** Waits while another process builds `dir` (bounded); the ms waited. */
async function waitForLiveBuilder(dir: string): Promise<number> {
  const started = performance.now();
  while (!existsSync(dir) && liveBuilders(dir).length > 0 && performance.now() - started < WAIT_FOR_BUILDER_MS) await Bun.sleep(1000);
  return performance.now() - started;
}

/** Half-built copies of `dir` whose process is gone (a run killed while building). */
async function removeAbandoned(dir: string): Promise<void> {
  const prefix = `${basename(dir)}.partial-`;
  for (const entry of readdirSync(CACHE_DIR)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    await removeBuildDir(join(CACHE_DIR, entry)).catch((error) => console.error(`build cache: ${(error as Error).message}`));
  }
}

/** The mount points at or below `path`, deepest first (from /proc/self/mountinfo). */
function mountsUnder(path: string): string[] {
  let text = "";
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  // Field 5 is the mount point, with spaces and the like written as \ooo.
  const points = text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))));
  return points.filter((point) => point === path || point.startsWith(`${path}/`)).sort((a, b) => b.length - a.length);
}

/** Removes a build's directory, unmounting (lazily) whatever is mounted inside it first; refuses if that fails. */
async function removeBuildDir(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const point of mountsUnder(path)) await runCommand(["umount", "-l", point]);
  const left = mountsUnder(path);
  if (left.length > 0) throw new Error(`not removing ${path}: still mounted inside it: ${left.join(", ")}`);
  rmSync(path, { recursive: true, force: true });
}
