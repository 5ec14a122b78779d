// The compiled daemon, end to end: a PTP master simulator sends real UDP to it, a C program
// reads the shared memory the way a client does.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { monotonicRawNs, realtimeNs } from "../../src/time/clocks.ts";
import { startPtpMaster, type PtpMaster } from "../support/ptp-master.ts";
import { compiledBinary, startDaemon, type RunningDaemon } from "../support/daemon.ts";
import { buildCReader } from "../support/c.ts";
import { offsetError, readShm, sendControl, U64, waitForShm } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(60_000);

const MS = 1_000_000n;
const cleanups = cleanupAfterEach();

async function daemon(options: Parameters<typeof startDaemon>[0] = {}): Promise<RunningDaemon> {
  const d = await startDaemon(options);
  cleanups.push(() => d.stop("SIGKILL"));
  return d;
}

async function master(d: RunningDaemon, options: Partial<Parameters<typeof startPtpMaster>[0]> = {}): Promise<PtpMaster> {
  const m = await startPtpMaster({
    address: "127.0.0.2",
    target: "127.0.0.1",
    eventPort: d.ports.event,
    generalPort: d.ports.general,
    clockIdentity: 0x00aa_bbff_fecc_dd01n,
    offsetNs: 1_234_567_890_123n,
    clock: realtimeNs,
    ...options,
  });
  cleanups.push(() => m.stop());
  return m;
}

const isZero = (r: { clock_id: string }) => BigInt(r.clock_id) === 0n;

describe("command line", () => {
  test("-V prints the version line and exits 0", async () => {
    const proc = Bun.spawn([await compiledBinary(), "-V"], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    expect(out).toMatch(/^Version: [0-9A-Za-z.+-]+\. Shared Memory Interface Version: 5\.\n$/);
    // The seed's other interface is a bare number too (8-10 are smiN: interfaces.test.ts).
    const six = Bun.spawnSync([await compiledBinary(), "-V", "--interface-version", "6"], { stdout: "pipe", stderr: "pipe" });
    expect(six.stdout.toString()).toMatch(/^Version: [0-9A-Za-z.+-]+\. Shared Memory Interface Version: 6\.\n$/);
  });

  test("an unknown option is an error with a non-zero exit", async () => {
    const proc = Bun.spawn([await compiledBinary(), "--frobnicate"], { stdout: "pipe", stderr: "pipe" });
    const err = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(64);
    expect(err).toContain('unknown option "--frobnicate"');
  });

  test("a port in use names the port and suggests another PTP daemon", async () => {
    const squatter = await Bun.udpSocket({ hostname: "127.0.0.1" });
    cleanups.push(() => squatter.close());
    const proc = Bun.spawn(
      [
        await compiledBinary(),
        `--event-port=${squatter.port}`,
        `--general-port=${squatter.port + 1}`,
        "--ptp-address=127.0.0.1",
        "--control-port=1",
        "--shm-name=/nqptp-e2e-inuse",
      ],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
    );
    const err = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(69);
    expect(err).toContain(`127.0.0.1:${squatter.port}`);
    expect(err).toContain("already in use");
    expect(err).toContain("ptp4l");
    expect(existsSync("/dev/shm/nqptp-e2e-inuse")).toBe(false);
  });
});

test("a second nqptp on the same ports and name fails without touching the first one's region", async () => {
  const first = await daemon();
  const before = statSync(`/dev/shm${first.shmName}`).ino;
  const second = Bun.spawn(
    [
      await compiledBinary(),
      `--shm-name=${first.shmName}`,
      `--event-port=${first.ports.event}`,
      `--general-port=${first.ports.general}`,
      `--control-port=${first.ports.control}`,
      "--ptp-address=127.0.0.1",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  expect(await second.exited).toBe(69);
  expect(statSync(`/dev/shm${first.shmName}`).ino).toBe(before);
  expect((await readShm(first.shmName, 5)).version).toBe(5);
  expect(first.proc.exitCode).toBeNull();
});

describe("a master in the timing peer list", () => {
  test("is published with its id, IP and offset; SIGTERM removes the region", async () => {
    const d = await daemon();
    const m = await master(d);
    expect(isZero(await readShm(d.shmName, 5))).toBe(true);

    await sendControl("T 127.0.0.2\0", d.ports.control);
    const record = await waitForShm(d.shmName, 5, (r) => !isZero(r));
    expect(record.version).toBe(5);
    expect(BigInt(record.clock_id)).toBe(m.options.clockIdentity);
    expect(record.ip).toBe("127.0.0.2");
    // Loose: the accuracy of the offset is measured in bench/, not asserted here.
    expect(offsetError(record.offset, m.options.offsetNs)).toBeLessThan(50n * MS);
    const localTime = BigInt(record.local_time);
    expect(localTime - realtimeNs()).toBeLessThan(1000n * MS);
    expect(BigInt(record.start_time)).toBeLessThanOrEqual(localTime);

    expect(await d.stop("SIGTERM")).toBe(0);
    expect(existsSync(`/dev/shm${d.shmName}`)).toBe(false);
    expect(d.output()).toContain("SIGTERM received");
  });

  test("a master behind the local clock is published as a wrapped u64 offset", async () => {
    const d = await daemon();
    const m = await master(d, { offsetNs: -5_000_000_000n });
    await sendControl("T 127.0.0.2\n", d.ports.control);
    const record = await waitForShm(d.shmName, 5, (r) => !isZero(r));
    expect(BigInt(record.offset)).toBeGreaterThan(U64 - 6_000_000_000n);
    expect(offsetError(record.offset, m.options.offsetNs)).toBeLessThan(50n * MS);
  });

  test("a clock that is not a timing peer is never published; clearing the list zeros the region", async () => {
    const d = await daemon();
    await master(d, { address: "127.0.0.3", clockIdentity: 0x99n, grandmasterPriority1: 0 });
    const peer = await master(d, { address: "127.0.0.2", clockIdentity: 0x42n, grandmasterPriority1: 200 });
    await sendControl("T 127.0.0.2", d.ports.control);
    const record = await waitForShm(d.shmName, 5, (r) => !isZero(r));
    expect(BigInt(record.clock_id)).toBe(peer.options.clockIdentity);
    await Bun.sleep(1500);
    expect(BigInt((await readShm(d.shmName, 5)).clock_id)).toBe(0x42n);

    await sendControl("T\0", d.ports.control);
    await waitForShm(d.shmName, 5, isZero, 3000);
  });

  test("control messages arrive on 127.0.0.1, ::1 and 0.0.0.0; garbage is ignored", async () => {
    const d = await daemon();
    await master(d);
    await sendControl("\u0001\u0002garbage\u00ff", d.ports.control);
    await sendControl("X 1.2.3.4", d.ports.control);
    await sendControl("T 127.0.0.2", d.ports.control, "::1");
    await waitForShm(d.shmName, 5, (r) => !isZero(r));
    await sendControl("T", d.ports.control, "0.0.0.0");
    await waitForShm(d.shmName, 5, isZero, 3000);
    await sendControl("T 127.0.0.2", d.ports.control, "127.0.0.1");
    await waitForShm(d.shmName, 5, (r) => !isZero(r));
    expect(d.proc.exitCode).toBeNull();
    expect(d.output()).toContain("ignored a control message");
  });
});

describe("clients that misbehave", () => {
  async function publishedMaster() {
    const d = await daemon();
    await master(d);
    await sendControl("T 127.0.0.2", d.ports.control);
    await waitForShm(d.shmName, 5, (r) => !isZero(r));
    return d;
  }

  async function holdLock(shmName: string, holdMs: number) {
    const reader = Bun.spawn([await buildCReader(), shmName, "5", "--hold-ms", String(holdMs)], { stdout: "pipe", stderr: "pipe" });
    cleanups.push(() => reader.kill("SIGKILL"));
    const stdout = reader.stdout.getReader();
    const { value } = await stdout.read();
    expect(new TextDecoder().decode(value)).toContain("locked");
    stdout.releaseLock();
    return reader;
  }

  test("a reader SIGKILLed while holding the mutex does not stop updates (robust mutex)", async () => {
    const d = await publishedMaster();
    const reader = await holdLock(d.shmName, 60_000);
    reader.kill("SIGKILL");
    await reader.exited;
    const killedAt = realtimeNs();
    // Let the daemon be the first to lock it (a reader locking first would recover it instead).
    await d.waitForOutput(/died holding the shared memory lock/, 3000);
    const after = await waitForShm(d.shmName, 5, (r) => BigInt(r.local_time) > killedAt, 5000);
    expect(BigInt(after.clock_id)).toBe(0x00aa_bbff_fecc_dd01n);
    expect(d.proc.exitCode).toBeNull();
  });

  test("a reader holding the lock for 2 s does not stall the daemon", async () => {
    const d = await publishedMaster();
    const reader = await holdLock(d.shmName, 2000);
    // While the lock is held, the daemon keeps handling packets: a control message is logged.
    await sendControl("T 127.0.0.2 127.0.0.9", d.ports.control);
    await d.waitForOutput(/timing peer list: 127\.0\.0\.2, 127\.0\.0\.9/, 1500);
    await d.waitForOutput(/holding the shared memory lock/, 1500);
    expect(reader.exitCode).toBeNull(); // still holding
    await reader.exited;
    const releasedAt = realtimeNs();
    await waitForShm(d.shmName, 5, (r) => BigInt(r.local_time) > releasedAt, 3000);
    await d.waitForOutput(/publishing resumed/, 3000);
  });
});

describe("a silent clock", () => {
  test("is woken with a better, then a worse Announce 150 ms later, from the general port", async () => {
    const d = await daemon();
    const m = await master(d, { silent: true, grandmasterPriority1: 100 });
    await sendControl("T 127.0.0.2", d.ports.control);
    const deadline = Date.now() + 5000;
    while (m.received.length < 2 && Date.now() < deadline) await Bun.sleep(50);
    expect(m.received.length).toBeGreaterThanOrEqual(2);
    const [better, worse] = m.received;
    expect(better!.announce.grandmasterPriority1).toBe(99);
    expect(worse!.announce.grandmasterPriority1).toBe(101);
    expect(better!.fromPort).toBe(d.ports.general);
    // The pause is a timer, not a sleep in the loop: about 150 ms, never much less.
    expect(worse!.atMs - better!.atMs).toBeGreaterThan(120);
    expect(worse!.atMs - better!.atMs).toBeLessThan(1000);
    expect(better!.announce.header.clockIdentity).not.toBe(m.options.clockIdentity);

    // Once woken it sends Sync/Follow_Up and is published.
    m.setSilent(false);
    const record = await waitForShm(d.shmName, 5, (r) => !isZero(r));
    expect(BigInt(record.clock_id)).toBe(m.options.clockIdentity);
  });
});

describe("interface version 6", () => {
  test("publishes against CLOCK_MONOTONIC_RAW", async () => {
    const d = await daemon({ interfaceVersion: 6 });
    const m = await master(d, { clock: monotonicRawNs, offsetNs: 987_654_321_000n });
    await sendControl("T 127.0.0.2", d.ports.control);
    const record = await waitForShm(d.shmName, 6, (r) => !isZero(r));
    expect(record.version).toBe(6);
    expect(offsetError(record.offset, m.options.offsetNs)).toBeLessThan(50n * MS);
    expect(BigInt(record.local_time) - monotonicRawNs()).toBeLessThan(1000n * MS);
  });
});
