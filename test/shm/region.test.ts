// A region's name appears only once the region is complete. Shairport Sync 5.3 polls for a new
// client's region right after asking nqptp for it, and maps and reads it as soon as it opens:
// a region seen between its creation and its initialisation is an empty file (reading it is a
// SIGBUS) or a version of 0 ("does not seem to be initialised"). test/c/region-watch.c opens each
// region the moment inotify reports its name, as such a client would, and says what it found.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { INTERFACE_VERSIONS } from "../../src/rules/interface-version.ts";
import { createRegion, destroyRegion, placeRegion } from "../../src/shm/region.ts";
import { fieldAt, layoutFor } from "../../src/shm/layouts.ts";
import { openShm, type ShmWriter } from "../../src/shm/writer.ts";
import { SysError } from "../../src/sys/errors.ts";
import { HOST_ARCH as HOST_ARCH_OR_NULL } from "../../src/sys/linux.ts";
import { buildCProgram } from "../support/c.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { spawnCollecting } from "../support/process.ts";

setDefaultTimeout(30_000);

if (HOST_ARCH_OR_NULL === null) throw new Error(`no shared-memory layout for ${process.arch}`);
const HOST_ARCH = HOST_ARCH_OR_NULL;

const cleanups = cleanupAfterEach();
let counter = 0;

function uniqueName(tag: string): string {
  const name = `/nqptp-region-${tag}-${process.pid}-${++counter}`;
  cleanups.push(() => rmSync(`/dev/shm${name}`, { force: true }));
  return name;
}

/** Files in /dev/shm whose names say they are this process's temporary regions. */
function ourTemporaryNames(): string[] {
  return readdirSync("/dev/shm").filter((n) => n.startsWith(".nqptp-region-") && n.includes(`.new-${process.pid}-`));
}

const REGIONS_PER_VERSION = 20;

describe("a new region's name appears only when the region is complete", () => {
  for (const version of INTERFACE_VERSIONS) {
    test(`interface ${version}: a client opening it the moment it appears finds its full size and version`, async () => {
      const watcher = await buildCProgram("region-watch");
      const layout = layoutFor(version, HOST_ARCH);
      const names = Array.from({ length: REGIONS_PER_VERSION }, () => uniqueName(`v${version}`));
      const watch = spawnCollecting([watcher, "0", String(fieldAt(layout, "version").offset), "20000", ...names]);
      cleanups.push(async () => {
        watch.proc.kill("SIGKILL");
        await watch.proc.exited;
      });
      await watch.waitForOutput(/^ready$/m);
      const writers: ShmWriter[] = [];
      cleanups.push(() => {
        for (const writer of writers) writer.close();
      });
      for (const name of names) {
        writers.push(openShm({ name, version }));
        await Bun.sleep(2); // let the watcher look at each before the next comes
      }
      expect(await watch.exited(20_000)).toBe(0);
      const seen = watch
        .output()
        .split("\n")
        .filter((l) => l.startsWith("region "));
      expect(seen).toHaveLength(names.length);
      for (const line of seen) expect(line).toMatch(new RegExp(` size=${layout.size} version=${version}$`));
      expect(ourTemporaryNames()).toEqual([]);
    });
  }
});

describe("placing a region", () => {
  test("until placed, the region has only its temporary name; placing gives it its name and removes the other", () => {
    const name = uniqueName("place");
    const layout = layoutFor(10, HOST_ARCH);
    const region = createRegion(name, layout.size, layout.mode, HOST_ARCH);
    cleanups.push(() => destroyRegion(region));
    expect(region.reusedStale).toBe(false);
    expect(existsSync(`/dev/shm${name}`)).toBe(false);
    expect(ourTemporaryNames()).toHaveLength(1);
    placeRegion(region);
    expect(existsSync(`/dev/shm${name}`)).toBe(true);
    expect(ourTemporaryNames()).toEqual([]);
    expect(region.pendingName).toBeNull();
  });

  test("a name taken while the region was built is not replaced: a clear error, and nothing of ours is left", () => {
    const name = uniqueName("taken");
    const layout = layoutFor(10, HOST_ARCH);
    const region = createRegion(name, layout.size, layout.mode, HOST_ARCH);
    writeFileSync(`/dev/shm${name}`, "someone else's");
    let error: unknown = null;
    try {
      placeRegion(region);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SysError);
    expect((error as SysError).code).toBe("EEXIST");
    expect((error as Error).message).toContain("appeared while nqptp was creating it");
    destroyRegion(region);
    expect(ourTemporaryNames()).toEqual([]);
    expect(Bun.file(`/dev/shm${name}`).size).toBe("someone else's".length);
  });

  test("a region that fails to open leaves no temporary name behind", () => {
    const name = uniqueName("fails");
    // A size that ftruncate refuses: the region is never made, under either name.
    expect(() => createRegion(name, -1, 0o644, HOST_ARCH)).toThrow(SysError);
    expect(existsSync(`/dev/shm${name}`)).toBe(false);
    expect(ourTemporaryNames()).toEqual([]);
  });
});
