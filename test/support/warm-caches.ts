// What npm test starts in the background before the first tests (scripts/test.sh): the slow,
// cached builds the end-to-end tests need later, the booted arm64 system and the three Shairport
// Sync versions, so that they are built while the unit tests run. Each build is the one its test
// would make (the same function, the same cache); a test that gets there first waits for it (the
// build cache's rule, flock for Shairport Sync). What cannot be built here is left to the test,
// which says why. Run: bun test/support/warm-caches.ts

import { arm64System, arm64VmSupport, enableArm64Binfmt } from "./arm64-vm.ts";
import { SHAIRPORT_SYNC_VERSIONS, buildShairportSync, shairportSyncUnavailable } from "./shairport-sync.ts";

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);

async function warmArm64(): Promise<string> {
  const unavailable = arm64VmSupport();
  if (unavailable !== null) return `arm64 system: not built (${unavailable})`;
  await enableArm64Binfmt();
  const system = await arm64System();
  return `arm64 system: ${system.buildMs > 0 ? `ready after ${(system.buildMs / 1000).toFixed(1)} s` : "cached"}`;
}

async function warmShairportSync(): Promise<string> {
  const unavailable = shairportSyncUnavailable();
  if (unavailable !== null) return `Shairport Sync: not built (${unavailable})`;
  const built = await Promise.all(SHAIRPORT_SYNC_VERSIONS.map((version) => buildShairportSync(version)));
  return `Shairport Sync ${built.map((b) => `${b.version}${b.built ? "" : " (cached)"}`).join(", ")}: ready`;
}

const results = await Promise.allSettled([warmArm64(), warmShairportSync()]);
for (const result of results) {
  console.log(
    `warm-caches: ${result.status === "fulfilled" ? result.value : `failed, left to its test: ${(result.reason as Error).message.split("\n")[0]}`} (${seconds()} s)`,
  );
}
