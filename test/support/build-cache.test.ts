// The build cache (test/support/build-cache.ts) that the slow end-to-end builds share: a second
// process waits for a first that is building the same thing, rather than build it twice.

import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CACHE_DIR, cachedBuild } from "./build-cache.ts";

test("a build another live process has under way is waited for, not made again", async () => {
  const name = `build-cache-test-${process.pid}`;
  const key = { test: Math.random() };
  const dir = join(CACHE_DIR, `${name}-${createHash("sha256").update(JSON.stringify(key)).digest("hex").slice(0, 16)}`);
  mkdirSync(CACHE_DIR, { recursive: true });
  // The other builder: a live process, and its half-built copy named after it.
  const other = Bun.spawn(["sleep", "30"]);
  const partial = `${dir}.partial-${other.pid}-1`;
  mkdirSync(partial);
  try {
    setTimeout(() => renameSync(partial, dir), 1500); // it finishes
    let built = false;
    const result = await cachedBuild(name, key, async () => {
      built = true;
    });
    expect(built).toBe(false);
    expect(result.dir).toBe(dir);
    expect(result.buildMs).toBeGreaterThanOrEqual(1000);
  } finally {
    other.kill();
    rmSync(dir, { recursive: true, force: true });
    rmSync(partial, { recursive: true, force: true });
  }
  expect(existsSync(dir)).toBe(false);
});
