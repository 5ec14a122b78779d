// startDaemon (src/daemon/daemon.ts) in this process, on unprivileged loopback ports with a unique
// region: it serves a simulated master (published, counted, reported over the control port, told
// to systemd's STATUS), reads only the interface's local clock (through DaemonDeps.now), stops
// cleanly, and a start-up that fails leaves nothing behind, least of all another daemon's region.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { askDaemon } from "../../src/commands/status.ts";
import { startDaemon, type Daemon } from "../../src/daemon/daemon.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import type { DaemonOptions } from "../../src/daemon/options.ts";
import { DEFAULTS } from "../../src/daemon/options.ts";
import { NqptpError } from "../../src/errors.ts";
import { formatClockId } from "../../src/ptp/clock-identity.ts";
import { readRegion } from "../../src/shm/read.ts";
import { HOST_ARCH } from "../../src/sys/linux.ts";
import { readClock, type LocalClock } from "../../src/time/clocks.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { randomPorts, uniqueShmName } from "../support/daemon.ts";
import { startPtpMaster } from "../support/ptp-master.ts";

setDefaultTimeout(30_000);

const cleanups = cleanupAfterEach();

const MASTER = "127.0.0.2";
const CLOCK = 0x00aa_bbff_fecc_dd42n;
const OFFSET = 1_234n * 1_000_000_000n;

function options(overrides: Partial<DaemonOptions> = {}): DaemonOptions {
  const ports = randomPorts();
  return {
    ...DEFAULTS,
    controlAddresses: ["127.0.0.1"],
    ptpAddresses: ["127.0.0.1"],
    shmName: uniqueShmName("daemon"),
    eventPort: ports.event,
    generalPort: ports.general,
    controlPort: ports.control,
    verbosity: 1,
    ...overrides,
  };
}

async function start(o: DaemonOptions) {
  const lines: { level: number; tag: string; message: string }[] = [];
  const clocksRead = new Set<LocalClock>();
  const statuses: string[] = [];
  const daemon = await startDaemon(o, {
    logger: createLogger({ verbosity: 1, reporters: [memoryReporter(lines)] }),
    now: (clock) => {
      clocksRead.add(clock);
      return readClock(clock);
    },
    onStatus: (status) => statuses.push(status),
  });
  cleanups.push(() => daemon.stop());
  return { daemon, clocksRead, statuses, logged: () => lines.map((l) => l.message) };
}

async function until<T>(read: () => T | Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last ${String(value)}`);
    await Bun.sleep(20);
  }
}

function region(daemon: Daemon) {
  const read = readRegion(new Uint8Array(readFileSync(`/dev/shm${daemon.shmName}`)), HOST_ARCH!);
  if (!read.ok) throw new Error(read.reason);
  return read.record;
}

async function control(text: string, port: number) {
  const socket = await Bun.udpSocket({ hostname: "127.0.0.1" });
  socket.send(new TextEncoder().encode(`${text}\0`), port, "127.0.0.1");
  socket.close();
}

describe("a daemon in this process", () => {
  test("interface 10: follows the master it is told to, publishes it, reports it, and reads only CLOCK_MONOTONIC_RAW", async () => {
    const o = options({ interfaceVersion: 10 });
    const { daemon, clocksRead, statuses, logged } = await start(o);
    expect(logged()[0]).toBe(
      `serving shared memory interface 10 at ${o.shmName} (monotonic-raw clock, up to 8 clients); PTP on 127.0.0.1 ports ` +
        `${o.eventPort}/${o.generalPort} (Sync stamped by the kernel); control on 127.0.0.1 port ${o.controlPort}`,
    );
    expect(region(daemon)).toMatchObject({ version: 10, clockId: 0n });

    const master = await startPtpMaster({
      address: MASTER,
      target: "127.0.0.1",
      eventPort: o.eventPort,
      generalPort: o.generalPort,
      clockIdentity: CLOCK,
      offsetNs: OFFSET,
      clock: () => readClock("monotonic-raw"),
    });
    cleanups.push(() => master.stop());
    await control(`${o.shmName} T ${MASTER}`, o.controlPort);
    await control(`${o.shmName} B`, o.controlPort);

    const published = await until(
      () => region(daemon),
      (r) => r.clockId === CLOCK,
      "the master in the region",
    );
    // Stamped by the kernel on loopback: well within a millisecond of the truth.
    const error = BigInt.asIntN(64, published.offsetNs - OFFSET);
    expect(error < 1_000_000n && error > -1_000_000n).toBe(true);
    expect(statuses).toContain(`master ${formatClockId(CLOCK)} at ${MASTER}; interface 10 at ${o.shmName}`);
    // The master was woken at its first Announce (spec section 7): two Announces back.
    await until(
      () => master.received.length,
      (n) => n >= 2,
      "the wake-up Announces",
    );

    const answer = await askDaemon("127.0.0.1", o.controlPort);
    if ("error" in answer) throw new Error(answer.error);
    expect(answer).toMatchObject({ interfaceVersion: 10, shmName: o.shmName });
    expect(answer.snapshot.records.map((r) => r.ip)).toEqual([MASTER]);

    const stats = daemon.stats();
    expect(stats.control.datagrams).toBe(3); // T, B and the status request
    expect(stats.ptp.datagrams.event).toBeGreaterThan(0);
    expect(stats.ptp.datagrams.general).toBeGreaterThan(0);
    expect(stats.shm.written).toBeGreaterThan(0);
    expect(stats.announcesSent).toBeGreaterThanOrEqual(2);
    expect([...clocksRead]).toEqual(["monotonic-raw"]);
  });

  test("interface 5 reads CLOCK_REALTIME; stop() closes the ports, removes the region, says so, once", async () => {
    const o = options({ interfaceVersion: 5 });
    const { daemon, clocksRead, logged } = await start(o);
    await control("T 10.0.0.5", o.controlPort);
    await until(
      () => daemon.stats().control.datagrams,
      (n) => n === 1,
      "the peer list",
    );
    const answer = await askDaemon("127.0.0.1", o.controlPort);
    if ("error" in answer) throw new Error(answer.error);
    expect(answer.snapshot.records.map((r) => [r.ip, r.isTimingPeer])).toEqual([["10.0.0.5", true]]);
    expect([...clocksRead]).toEqual(["realtime"]);

    const path = `/dev/shm${o.shmName}`;
    expect(existsSync(path)).toBe(true);
    daemon.stop();
    daemon.stop();
    expect(existsSync(path)).toBe(false);
    expect(logged().filter((l) => l.startsWith("stopped"))).toEqual([`stopped; shared memory removed (${o.shmName})`]);
    for (const port of [o.eventPort, o.generalPort, o.controlPort]) {
      const socket = await Bun.udpSocket({ hostname: "127.0.0.1", port });
      socket.close();
    }
  });
});

describe("a start-up that fails", () => {
  test("a second daemon on the same ports and region fails on the ports, before touching the first one's region", async () => {
    const o = options({ interfaceVersion: 9 });
    const first = await start(o);
    const before = region(first.daemon);
    const failed = await startDaemon(o, { logger: createLogger({ verbosity: 0, reporters: [memoryReporter([])] }) }).then(
      (daemon) => {
        daemon.stop();
        throw new Error("the second daemon started");
      },
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(NqptpError);
    expect(failed).toMatchObject({ code: "bind-in-use" });
    expect(existsSync(`/dev/shm${o.shmName}`)).toBe(true);
    expect(region(first.daemon)).toEqual(before);
    // The first one still answers.
    const answer = await askDaemon("127.0.0.1", o.controlPort);
    expect("error" in answer).toBe(false);
  });

  test("the control port in use: the PTP ports it had bound are closed again and no region is made", async () => {
    const o = options();
    const squatter = await Bun.udpSocket({ hostname: "127.0.0.1", port: o.controlPort });
    cleanups.push(() => squatter.close());
    await expect(startDaemon(o, { logger: createLogger({ verbosity: 0, reporters: [memoryReporter([])] }) })).rejects.toMatchObject({
      code: "bind-in-use",
      message: expect.stringContaining(`control port 127.0.0.1:${o.controlPort}`),
    });
    expect(existsSync(`/dev/shm${o.shmName}`)).toBe(false);
    for (const port of [o.eventPort, o.generalPort]) {
      const socket = await Bun.udpSocket({ hostname: "127.0.0.1", port });
      socket.close();
    }
  });
});
