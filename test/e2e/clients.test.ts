// Several Shairport Sync instances on one host (spec section 11): one dist/nqptp, one region and
// one followed clock per client name, read the way Shairport Sync 4.3+ reads them.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { monotonicRawNs } from "../../src/time/clocks.ts";
import { buildCReader } from "../support/c.ts";
import { compiledBinary, randomPorts, startDaemon, uniqueShmName, type RunningDaemon } from "../support/daemon.ts";
import { spawnCollecting } from "../support/process.ts";
import { startPtpMaster } from "../support/ptp-master.ts";
import { offsetError, readShm, sendControl, waitForShm, type ShmRecord } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(60_000);

const MS = 1_000_000n;
const GM_LIVING = 0x0aa0_00ff_fe00_0002n;
const GM_KITCHEN = 0x0cc0_00ff_fe00_0004n;
const OFFSET_LIVING = 4_321_000_000_000n;
const OFFSET_KITCHEN = 9_876_000_000_000n;

const cleanups = cleanupAfterEach();

const isZero = (r: ShmRecord) => BigInt(r.clock_id) === 0n;
const say = (d: RunningDaemon, text: string) => sendControl(`${text}\0`, d.ports.control);
const shmPath = (name: string) => `/dev/shm${name}`;

/** A daemon serving interface 10, and masters on 127.0.0.2 (living room) and 127.0.0.3 (kitchen). */
async function twoRooms(extraArgs: string[] = []) {
  const d = await startDaemon({ interfaceVersion: 10, args: extraArgs });
  const kitchen = `${d.shmName}-kitchen`;
  cleanups.push(async () => {
    await d.stop("SIGKILL");
    rmSync(shmPath(kitchen), { force: true });
  });
  const master = (address: string, clockIdentity: bigint, grandmasterIdentity: bigint, offsetNs: bigint) =>
    startPtpMaster({
      address,
      target: "127.0.0.1",
      eventPort: d.ports.event,
      generalPort: d.ports.general,
      clockIdentity,
      grandmasterIdentity,
      offsetNs,
      clock: monotonicRawNs,
    });
  const living = await master("127.0.0.2", 0x0aa0_00ff_fe00_0001n, GM_LIVING, OFFSET_LIVING);
  cleanups.push(() => living.stop());
  const kitchenMaster = await master("127.0.0.3", 0x0cc0_00ff_fe00_0003n, GM_KITCHEN, OFFSET_KITCHEN);
  cleanups.push(() => kitchenMaster.stop());
  return { d, kitchen };
}

function expectClock(record: ShmRecord, grandmaster: bigint, offset: bigint) {
  expect(record.version).toBe(10);
  expect(BigInt(record.clock_id)).toBe(grandmaster);
  expect(offsetError(record.offset, offset)).toBeLessThan(50n * MS);
}

describe("two rooms, two clocks", () => {
  test("each region holds its own master; T from one room leaves the other's offset and start time untouched", async () => {
    const { d, kitchen } = await twoRooms();
    await say(d, `${d.shmName} T 127.0.0.2`);
    await say(d, `${d.shmName} B`);
    await say(d, `${kitchen} T 127.0.0.3`);
    await say(d, `${kitchen} B`);
    await d.waitForOutput(new RegExp(`new client ${kitchen}: created /dev/shm${kitchen}`));
    expectClock(await waitForShm(d.shmName, 10, (r) => !isZero(r)), GM_LIVING, OFFSET_LIVING);
    const before = await waitForShm(kitchen, 10, (r) => !isZero(r));
    expectClock(before, GM_KITCHEN, OFFSET_KITCHEN);
    expect(readFileSync(shmPath(kitchen)).byteLength).toBe(72);

    // The living room leaves its group: "/nqptp T". Its region zeros; the kitchen goes on.
    await say(d, `${d.shmName} T`);
    await waitForShm(d.shmName, 10, isZero, 3000);
    const after = await waitForShm(kitchen, 10, (r) => BigInt(r.local_time) > BigInt(before.local_time) + 500n * MS);
    expectClock(after, GM_KITCHEN, OFFSET_KITCHEN);
    expect(after.start_time).toBe(before.start_time);
    // The same clock, so the same offset to within the smoothing of a perfect master's samples.
    expect(offsetError(after.offset, BigInt(before.offset))).toBeLessThan(1n * MS);
  });

  test("E from the kitchen makes only its region lapse, 2.25 s later", async () => {
    const { d, kitchen } = await twoRooms();
    await say(d, `${d.shmName} T 127.0.0.2`);
    await say(d, `${kitchen} T 127.0.0.3`);
    await say(d, `${d.shmName} B`);
    await say(d, `${kitchen} B`);
    await waitForShm(kitchen, 10, (r) => !isZero(r));
    // Past T's 5 s: only play keeps a region published now.
    await Bun.sleep(5200);
    await say(d, `${kitchen} E`);
    const endedAt = Date.now();
    await waitForShm(kitchen, 10, isZero, 4000);
    const lapsedAfterMs = Date.now() - endedAt;
    expect(lapsedAfterMs).toBeGreaterThan(2000);
    expect(lapsedAfterMs).toBeLessThan(3500);
    expectClock(await readShm(d.shmName, 10), GM_LIVING, OFFSET_LIVING);
  });
});

describe("two rooms, one clock", () => {
  test("both follow it; when one stops, the other keeps its record", async () => {
    const { d, kitchen } = await twoRooms();
    await say(d, `${d.shmName} T 127.0.0.2`);
    await say(d, `${kitchen} T 127.0.0.2`);
    await say(d, `${d.shmName} B`);
    await say(d, `${kitchen} B`);
    expectClock(await waitForShm(d.shmName, 10, (r) => !isZero(r)), GM_LIVING, OFFSET_LIVING);
    const before = await waitForShm(kitchen, 10, (r) => !isZero(r));
    expectClock(before, GM_LIVING, OFFSET_LIVING);
    await say(d, `${d.shmName} T`);
    await waitForShm(d.shmName, 10, isZero, 3000);
    const after = await waitForShm(kitchen, 10, (r) => BigInt(r.local_time) > BigInt(before.local_time) + 300n * MS);
    expect(after.start_time).toBe(before.start_time);
    expectClock(after, GM_LIVING, OFFSET_LIVING);
  });
});

describe("bounded, and careful with names", () => {
  test("a ninth client is refused with a warning naming --max-clients; the eight go on", async () => {
    const d = await startDaemon({ interfaceVersion: 10 });
    const names = Array.from({ length: 8 }, (_, i) => `${d.shmName}-room${i + 1}`);
    cleanups.push(async () => {
      await d.stop("SIGKILL");
      for (const name of names) rmSync(shmPath(name), { force: true });
    });
    for (const name of names) await say(d, `${name} T 127.0.0.2`);
    await d.waitForOutput(/refused client .*-room8: 8 clients are served already \(--max-clients 8/);
    for (const name of names.slice(0, 7)) expect(existsSync(shmPath(name))).toBe(true);
    expect(existsSync(shmPath(names[7]!))).toBe(false);
    expect(d.output()).toContain(`(8 of at most 8)`);
  });

  test("hostile names create nothing; another user's region of that name is refused and left as it is", async () => {
    const d = await startDaemon({ interfaceVersion: 10 });
    cleanups.push(() => d.stop("SIGKILL"));
    const before = new Set(readdirSync("/dev/shm"));
    const long = `/${"n".repeat(63)}`;
    for (const name of ["/../x", "/a/b", long, "/", "/ctl\u0001x", "/sp ace"]) await say(d, `${name} T 127.0.0.2`);
    // The first says why (the rest are rate-limited: a local program could send them in a loop).
    await d.waitForOutput(/ignored a control message for client "\/\.\.\/x": has a "\/" after the first character/);
    if (process.getuid?.() === 0) {
      const foreign = `${d.shmName}-foreign`;
      writeFileSync(shmPath(foreign), "not ours");
      chownSync(shmPath(foreign), 65534, 65534);
      cleanups.push(() => rmSync(shmPath(foreign), { force: true }));
      await say(d, `${foreign} T 127.0.0.2`);
      await d.waitForOutput(/refused client .*-foreign: .*belongs to uid 65534/);
      expect(readFileSync(shmPath(foreign), "utf8")).toBe("not ours");
    } else {
      console.log("skipped the foreign-region case: giving a region to another user needs root (CI runs as root)");
    }
    const now = readdirSync("/dev/shm").filter((n) => !before.has(n) && !n.endsWith("-foreign"));
    expect(now).toEqual([]);
    // Still serving.
    await say(d, `${d.shmName} T 127.0.0.2`);
    await d.waitForOutput(/following 127\.0\.0\.2/);
  });

  test("SIGTERM removes every region", async () => {
    const { d, kitchen } = await twoRooms();
    const third = `${d.shmName}-office`;
    cleanups.push(() => rmSync(shmPath(third), { force: true }));
    await say(d, `${kitchen} T 127.0.0.3`);
    await say(d, `${third} T 127.0.0.2`);
    await d.waitForOutput(/new client .*-office/);
    for (const name of [d.shmName, kitchen, third]) expect(existsSync(shmPath(name))).toBe(true);
    expect(await d.stop("SIGTERM")).toBe(0);
    for (const name of [d.shmName, kitchen, third]) expect(existsSync(shmPath(name))).toBe(false);
  });
});

// /dev/shm is a size-limited tmpfs (64 MB in a Docker container). A region created on a full
// one used to be a SIGBUS at the first write; now its pages are reserved when it is created.
// A private mount namespace with a one-page tmpfs on /dev/shm needs root.
const noMountNamespace = process.getuid?.() !== 0 ? "a private mount namespace with its own /dev/shm needs root (CI runs as root)" : null;

describe("a full /dev/shm", () => {
  test.skipIf(noMountNamespace !== null)(
    `at start: a clear error and the shared-memory exit status, no crash${noMountNamespace ? ` (skipped: ${noMountNamespace})` : ""}`,
    async () => {
      const binary = await compiledBinary();
      const ports = randomPorts();
      const script =
        "mount -t tmpfs -o size=4k tmpfs /dev/shm && dd if=/dev/zero of=/dev/shm/filler bs=4096 count=1 2>/dev/null; " +
        `exec "$0" --interface-version=10 --shm-name=${uniqueShmName("full")} --event-port=${ports.event} ` +
        `--general-port=${ports.general} --control-port=${ports.control} --ptp-address=127.0.0.1`;
      const child = spawnCollecting(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, binary]);
      expect(await child.proc.exited).toBe(71);
      const output = child.output();
      expect(output).toMatch(/posix_fallocate.*(No space left on device|ENOSPC)/);
      expect(output).not.toMatch(/Bus error|panic|SIGBUS/);
    },
  );

  test.skipIf(noMountNamespace !== null)(
    `for a new client: that client is refused, every other one goes on${noMountNamespace ? ` (skipped: ${noMountNamespace})` : ""}`,
    async () => {
      const binary = await compiledBinary();
      const reader = await buildCReader();
      const ports = randomPorts();
      const name = uniqueShmName("full");
      // One page: the main region takes it, so the next region finds no room.
      const script =
        "mount -t tmpfs -o size=4k tmpfs /dev/shm && " +
        `exec "$0" --interface-version=10 --shm-name=${name} --event-port=${ports.event} --general-port=${ports.general} ` +
        `--control-port=${ports.control} --ptp-address=127.0.0.1 -v`;
      const child = spawnCollecting(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, binary]);
      cleanups.push(async () => {
        child.proc.kill("SIGKILL");
        await child.proc.exited;
      });
      await child.waitForOutput(/serving shared memory interface 10/);
      const m = await startPtpMaster({
        address: "127.0.0.2",
        target: "127.0.0.1",
        eventPort: ports.event,
        generalPort: ports.general,
        clockIdentity: 0x0aa0_00ff_fe00_0001n,
        grandmasterIdentity: GM_LIVING,
        offsetNs: OFFSET_LIVING,
        clock: monotonicRawNs,
      });
      cleanups.push(() => m.stop());
      await sendControl(`${name}-kitchen T 127.0.0.3\0`, ports.control);
      await child.waitForOutput(/refused client .*-kitchen: .*posix_fallocate.*(No space left on device|ENOSPC)/);
      await sendControl(`${name} T 127.0.0.2\0`, ports.control);
      await sendControl(`${name} B\0`, ports.control);
      // The main region, read inside the daemon's mount namespace, is served.
      const deadline = Date.now() + 10_000;
      let record: ShmRecord | null = null;
      while (Date.now() < deadline) {
        const proc = Bun.spawn(["nsenter", "-t", String(child.proc.pid), "-m", reader, name, "10"], { stdout: "pipe", stderr: "pipe" });
        const out = await new Response(proc.stdout).text();
        if ((await proc.exited) === 0) {
          record = JSON.parse(out.trim().split("\n").at(-1)!) as ShmRecord;
          if (!isZero(record)) break;
        }
        await Bun.sleep(100);
      }
      expect(record).not.toBeNull();
      expectClock(record!, GM_LIVING, OFFSET_LIVING);
      child.proc.kill("SIGTERM");
      expect(await child.proc.exited).toBe(0);
      expect(child.output()).not.toMatch(/Bus error|panic/);
    },
  );
});
