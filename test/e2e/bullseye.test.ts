// The x64 build on glibc 2.31: a Debian 11 (bullseye) container, the C library of Raspberry Pi OS
// bullseye and of Debian 11. Before glibc 2.34, shm_open lived in librt.so.1 and the pthread calls
// in libpthread.so.0, and before 2.33 fstat was reached through __fxstat: src/sys/libc.ts falls back
// to them, and only a system this old runs those paths. Here they run, and a client reads the
// region from inside the same system: test/c/shm-reader.c, linked statically on the host so that
// it runs on the older C library. It proves:
// - interface 5: the robust, process-shared mutex made through libpthread 2.31, including a reader
//   killed while it holds the lock (the daemon recovers it and publishes on);
// - interface 10: the double record, read consistently while the daemon writes it;
// - kernel receive timestamps: every Sync arrives while the daemon is stopped (SIGSTOP) and is
//   read 300 ms later. Stamped when read, the published offset is a good part of that off (about
//   0.1 s, seen with the kernel stamps switched off); the kernel's stamp of the arrival leaves it
//   within microseconds.
// The arm64 build runs the same code (its C library calls are the same), under qemu-user in
// arm64.test.ts on this machine's glibc.
//
// Root only, with mmdebstrap and systemd-nspawn (scripts/test.sh installs them): skipped otherwise,
// with the reason in the title.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { monotonicRawNs, realtimeNs } from "../../src/time/clocks.ts";
import { buildStaticCProgram } from "../support/c.ts";
import { bootContainer, containerSupport, debianRoot, sendUdpInside, type Container, type ContainerProcess } from "../support/container.ts";
import { compiledBinary, ROOT } from "../support/daemon.ts";
import type { CollectedProcess } from "../support/process.ts";
import { offsetError, type ShmRecord } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(120_000);

const WHY = containerSupport();
const title = (t: string) => (WHY === null ? t : `${t} (skipped: ${WHY})`);

const MASTER_ID = 0x00aa_bbff_fecc_3101n;
const MASTER_HEX = `0x${MASTER_ID.toString(16).padStart(16, "0")}`;
const OFFSET_NS = 1_234_567_890_123n;
const MS = 1_000_000n;
const NQPTP = "/usr/local/bin/nqptp";
const READER = "/root/shm-reader";
/** How long each Sync waits in the socket while the daemon is stopped. */
const HELD_MS = 300;

let box: Container | null = null;

beforeAll(async () => {
  if (WHY !== null) return;
  const [root, binary, reader] = await Promise.all([debianRoot("bullseye"), compiledBinary(), buildStaticCProgram("shm-reader")]);
  box = await bootContainer(root, "bullseye");
  console.log(
    `bullseye root: ${root.buildMs > 0 ? `built in ${(root.buildMs / 1000).toFixed(1)} s` : "cached"}; container booted in ${box.bootMs.toFixed(0)} ms`,
  );
  box.copyIn(binary, NQPTP, 0o755);
  box.copyIn(reader, READER, 0o755);
}, 600_000);

afterAll(async () => {
  await box?.stop();
});

const cleanups = cleanupAfterEach();

function container(): Container {
  if (!box) throw new Error("the container did not boot (see the beforeAll error)");
  return box;
}

/** dist/nqptp inside, on the real PTP ports of the container's 127.0.0.1 (the master is 127.0.0.2). */
async function startDaemon(version: 5 | 10): Promise<ContainerProcess> {
  const daemon = container().spawn([NQPTP, `--interface-version=${version}`, "--ptp-address=127.0.0.1", "-v"]);
  cleanups.push(async () => {
    if (daemon.proc.exitCode === null) {
      await daemon.signal("SIGCONT").catch(() => {});
      await daemon.signal("SIGKILL").catch(() => {});
    }
    await daemon.proc.exited;
    await container().run(["rm", "-f", "/dev/shm/nqptp"]); // a killed daemon cannot remove it
  });
  await daemon.waitForOutput(/serving shared memory interface/);
  return daemon;
}

async function stopDaemon(daemon: ContainerProcess): Promise<void> {
  await daemon.signal("SIGTERM");
  const code = await daemon.exited();
  if (code !== 0) throw new Error(`the daemon exited with ${code} after SIGTERM:\n${daemon.output()}`);
  expect((await container().run(["test", "-e", "/dev/shm/nqptp"])).code).toBe(1);
}

/**
 * The PTP master simulator, run from the host in the container's network namespace, sending from
 * 127.0.0.2:319/320. It Announces on its own; Sync/Follow_Up pairs go one per SIGUSR1 ("sent N"),
 * or every 20 ms after SIGUSR2.
 */
async function startMaster(clock: "realtime" | "monotonic-raw"): Promise<CollectedProcess> {
  const clockFunction = clock === "realtime" ? "realtimeNs" : "monotonicRawNs";
  const script =
    `import { startPtpMaster } from ${JSON.stringify(join(ROOT, "test/support/ptp-master.ts"))};` +
    `import { ${clockFunction} } from ${JSON.stringify(join(ROOT, "src/time/clocks.ts"))};` +
    `const m = await startPtpMaster({ address: "127.0.0.2", target: "127.0.0.1", eventPort: 319, generalPort: 320, ` +
    `clockIdentity: ${MASTER_ID}n, offsetNs: ${OFFSET_NS}n, clock: ${clockFunction}, syncIntervalMs: 0 });` +
    `let sent = 0; let timer;` +
    `process.on("SIGUSR1", () => { m.sendSyncPair(); console.log("sent " + ++sent); });` +
    `process.on("SIGUSR2", () => { timer ??= setInterval(() => m.sendSyncPair(), 20); console.log("periodic"); });` +
    `console.log("master running"); setInterval(() => {}, 1000);`;
  const master = container().spawnInNetwork([process.execPath, "-e", script]);
  cleanups.push(async () => {
    if (master.proc.exitCode === null) master.proc.kill("SIGKILL");
    await master.proc.exited;
  });
  await master.waitForOutput(/master running/);
  return master;
}

async function readRegion(version: 5 | 10, extra: string[] = []): Promise<ShmRecord> {
  const out = await container().check([READER, "/nqptp", String(version), ...extra]);
  return JSON.parse(out.trim().split("\n").at(-1)!) as ShmRecord;
}

async function waitForRegion(version: 5 | 10, accept: (r: ShmRecord) => boolean, timeoutMs = 10_000): Promise<ShmRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: ShmRecord | null = null;
  while (Date.now() < deadline) {
    last = await readRegion(version);
    if (accept(last)) return last;
    await Bun.sleep(100);
  }
  throw new Error(`the region never matched; last read ${JSON.stringify(last)}`);
}

const control = (text: string) => sendUdpInside(container(), "127.0.0.1", 9000, text, true);

/** The shared objects a process has mapped, by file name. */
async function mappedLibraries(hostPid: number): Promise<Set<string>> {
  const maps = await Bun.file(`/proc/${hostPid}/maps`).text();
  return new Set(
    maps
      .split("\n")
      .map((line) => line.split(/\s+/)[5]?.split("/").at(-1) ?? "")
      .filter((name) => name.includes(".so")),
  );
}

describe("on glibc 2.31, in a Debian 11 (bullseye) container", () => {
  test.skipIf(WHY !== null)(title("the container is Debian 11 with glibc 2.31, and -V runs there"), async () => {
    const c = container();
    expect((await c.check(["getconf", "GNU_LIBC_VERSION"])).trim()).toBe("glibc 2.31");
    expect((await c.check(["cat", "/etc/debian_version"])).trim()).toMatch(/^11\./);
    expect(await c.check([NQPTP, "-V", "--interface-version", "10"])).toMatch(/^Version: .+\. Shared Memory Interface Version: smi10\.\n$/);
  });

  test.skipIf(WHY !== null)(
    title("interface 5: shm_open from librt, a robust mutex from libpthread, recovered from a reader killed holding it"),
    async () => {
      const c = container();
      const daemon = await startDaemon(5);
      const master = await startMaster("realtime");
      master.proc.kill("SIGUSR2");
      await control("T 127.0.0.2");
      const first = await waitForRegion(5, (r) => r.clock_id === MASTER_HEX).catch((error) => {
        throw new Error(`${(error as Error).message}\ndaemon:\n${daemon.output()}\nmaster:\n${master.output()}`);
      });
      expect(first.ip).toBe("127.0.0.2");
      expect(offsetError(first.offset, OFFSET_NS)).toBeLessThan(50n * MS);
      expect((await c.check(["stat", "-c", "%a", "/dev/shm/nqptp"])).trim()).toBe("666");

      // The glibc < 2.34 fallbacks, in use: shm_open came from librt (the binary does not link it),
      // all of it from the container's 2.31.
      const libraries = await mappedLibraries(await daemon.hostPid());
      expect(libraries).toContain("libc-2.31.so");
      expect(libraries).toContain("librt-2.31.so");
      expect(libraries).toContain("libpthread-2.31.so");

      // A client takes the lock and dies holding it.
      const holder = c.spawn([READER, "/nqptp", "5", "--hold-ms", "60000"]);
      await holder.waitForOutput(/^locked$/m);
      await holder.signal("SIGKILL");
      await holder.exited();
      await daemon.waitForOutput(/a client died holding the shared memory lock of \/nqptp; the lock was recovered/, 10_000);
      const before = await readRegion(5);
      const after = await waitForRegion(5, (r) => BigInt(r.local_time) > BigInt(before.local_time));
      expect(after.clock_id).toBe(MASTER_HEX);
      expect(offsetError(after.offset, OFFSET_NS)).toBeLessThan(50n * MS);
      expect(BigInt(after.local_time) - realtimeNs()).toBeLessThan(1000n * MS);

      await stopDaemon(daemon);
    },
  );

  test.skipIf(WHY !== null)(title("interface 10: kernel receive timestamps, and the double record read whole while it is written"), async () => {
    const c = container();
    const daemon = await startDaemon(10);
    expect(daemon.output()).toContain("(Sync stamped by the kernel)");
    expect((await c.check(["stat", "-c", "%a", "/dev/shm/nqptp"])).trim()).toBe("644");
    const master = await startMaster("monotonic-raw");
    await control("/nqptp T 127.0.0.2");
    await control("/nqptp B");
    await Bun.sleep(100);

    // Every Sync and Follow_Up of this clock arrives while the daemon is stopped and is read
    // HELD_MS later.
    try {
      for (let n = 1; n <= 8; n++) {
        await daemon.signal("SIGSTOP");
        master.proc.kill("SIGUSR1");
        await master.waitForOutput(new RegExp(`^sent ${n}$`, "m"));
        await Bun.sleep(HELD_MS);
        await daemon.signal("SIGCONT");
        await Bun.sleep(150);
      }
    } finally {
      await daemon.signal("SIGCONT");
    }
    const stamped = await waitForRegion(10, (r) => r.clock_id === MASTER_HEX).catch((error) => {
      throw new Error(`${(error as Error).message}\ndaemon:\n${daemon.output()}\nmaster:\n${master.output()}`);
    });
    const error = offsetError(stamped.offset, OFFSET_NS);
    console.log(`offset published from Syncs held ${HELD_MS} ms: ${Number(error) / 1e3} µs from the truth`);
    expect(error).toBeLessThan(20n * MS);
    expect(daemon.output()).not.toMatch(/timestamps.* not available/);

    // Now a write every 20 ms, and a reader copying the region as fast as it can for a second:
    // every read consistent (the first copy's main equals the second copy's secondary).
    master.proc.kill("SIGUSR2");
    await master.waitForOutput(/^periodic$/m);
    const summary = JSON.parse((await c.check([READER, "/nqptp", "10", "--loop-ms", "1000", "--summary"])).trim()) as {
      reads: number;
      accepted: number;
      torn: number;
      changes: number;
      last_clock_id: string;
    };
    expect(summary.reads).toBeGreaterThan(1000);
    expect(summary.torn).toBe(0);
    expect(summary.accepted).toBe(summary.reads);
    expect(summary.changes).toBe(0);
    expect(summary.last_clock_id).toBe(MASTER_HEX);
    const record = await readRegion(10);
    expect(record.version).toBe(10);
    expect(offsetError(record.offset, OFFSET_NS)).toBeLessThan(20n * MS);
    expect(BigInt(record.local_time) - monotonicRawNs()).toBeLessThan(1000n * MS);

    await stopDaemon(daemon);
  });
});
