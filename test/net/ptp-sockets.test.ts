// The PTP sockets in this process, on loopback and unprivileged ports: kernel receive stamps on
// both ports, in both local clocks, through the Worker (event port) and the ioctl (general
// port); synchronous close; bind errors; the fallbacks.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { NqptpError } from "../../src/errors.ts";
import { startEventReader, workerUrl } from "../../src/net/event-reader.ts";
import type { ReceivedDatagram } from "../../src/net/event-reader-protocol.ts";
import { LastDatagramStamper, readClockPair } from "../../src/net/kernel-stamps.ts";
import { openPtpSockets, type PtpDatagram } from "../../src/net/ptp-sockets.ts";
import { bindTimestampedSocket } from "../../src/net/timestamped-socket.ts";
import { readClock, type LocalClock } from "../../src/time/clocks.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { onFreePorts, randomPortPair, udpSender, until } from "../support/sockets.ts";

setDefaultTimeout(20_000);

const cleanups = cleanupAfterEach();

async function open(options: { clock?: LocalClock; addresses?: string[]; workerUrl?: URL } = {}) {
  const received: PtpDatagram[] = [];
  const errors: string[] = [];
  return onFreePorts(async (eventPort) => {
    const sockets = await openPtpSockets({
      eventPort,
      generalPort: eventPort + 1,
      addresses: options.addresses ?? ["127.0.0.1"],
      localClock: options.clock ?? "realtime",
      readClock,
      onDatagram: (d) => received.push(d),
      onError: (role, e) => errors.push(`${role}: ${e.message}`),
      workerUrl: options.workerUrl,
      multicastRefreshMs: 0,
    });
    cleanups.push(() => sockets.close());
    return { sockets, eventPort, generalPort: eventPort + 1, received, errors };
  });
}

const sender = (hostname?: string) => udpSender(cleanups, hostname);

describe("kernel receive timestamps", () => {
  for (const clock of ["realtime", "monotonic-raw"] as const) {
    test(`event (Worker) and general (ioctl) datagrams are stamped by the kernel, ${clock}`, async () => {
      const { sockets, eventPort, generalPort, received, errors } = await open({ clock });
      expect(sockets.eventStamping).toBe("worker");
      const s = await sender();
      for (let i = 0; i < 5; i++) {
        const before = readClock(clock);
        s.send(new Uint8Array([i, 1, 2, 3]), eventPort, "127.0.0.1");
        s.send(new Uint8Array([i, 4, 5]), generalPort, "127.0.0.1");
        await until(() => received.length >= 2 * (i + 1));
        const after = readClock(clock);
        for (const d of received.slice(-2)) {
          expect(d.kernelStamp).toBe(true);
          expect(d.receivedAtNs).toBeGreaterThanOrEqual(before);
          expect(d.receivedAtNs).toBeLessThanOrEqual(after);
          expect(d.address).toBe("127.0.0.1");
          expect(d.port).toBe(s.port);
        }
      }
      const event = received.filter((d) => d.role === "event");
      expect(event.map((d) => [...d.data])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 1, 2, 3]));
      expect(Buffer.isBuffer(event[0]!.data)).toBe(true);
      expect(errors).toEqual([]);
    });
  }

  test("datagrams that queue up while the main thread is busy keep their own arrival times", async () => {
    const { eventPort, received } = await open();
    const s = await sender();
    const sentAt: bigint[] = [];
    // Block this thread for 20 ms between sends: a stamp taken in a data callback would give
    // all of them a time after the last send (when the loop got free); the Worker's kernel
    // stamps each lie between their own send and the next one. (Loopback stamps a datagram
    // inside the sender's send call, so that order does not depend on scheduling.)
    for (let i = 0; i < 5; i++) {
      sentAt.push(readClock("realtime"));
      s.send(new Uint8Array([i]), eventPort, "127.0.0.1");
      const until20 = performance.now() + 20;
      while (performance.now() < until20) {
        // busy
      }
    }
    sentAt.push(readClock("realtime"));
    await until(() => received.length >= 5);
    expect(received.map((d) => d.data[0])).toEqual([0, 1, 2, 3, 4]);
    received.forEach((d, i) => {
      expect(d.kernelStamp).toBe(true);
      expect(d.receivedAtNs).toBeGreaterThanOrEqual(sentAt[i]!);
      expect(d.receivedAtNs).toBeLessThan(sentAt[i + 1]!);
    });
  });

  test("dual-stack wildcard sockets report IPv4 senders as ::ffff:a.b.c.d and IPv6 senders plainly", async () => {
    const { eventPort, generalPort, received } = await open({ addresses: [] });
    const v4 = await sender("127.0.0.1");
    const v6 = await sender("::1");
    v4.send(new Uint8Array([4]), eventPort, "127.0.0.1");
    await until(() => received.length >= 1);
    v6.send(new Uint8Array([6]), eventPort, "::1");
    await until(() => received.length >= 2);
    v4.send(new Uint8Array([4]), generalPort, "127.0.0.1");
    await until(() => received.length >= 3);
    v6.send(new Uint8Array([6]), generalPort, "::1");
    await until(() => received.length >= 4);
    expect(received.map((d) => [d.role, d.address, d.port, d.kernelStamp])).toEqual([
      ["event", "::ffff:127.0.0.1", v4.port, true],
      ["event", "::1", v6.port, true],
      ["general", "::ffff:127.0.0.1", v4.port, true],
      ["general", "::1", v6.port, true],
    ]);
  });

  test("close() frees the event port before it returns", async () => {
    const { sockets, eventPort } = await open();
    sockets.close();
    const again = await Bun.udpSocket({ hostname: "127.0.0.1", port: eventPort });
    again.close();
    sockets.close(); // idempotent
  });

  test("an event port in use is the same clear error as for Bun's sockets", async () => {
    const squatter = await Bun.udpSocket({ hostname: "127.0.0.1" });
    cleanups.push(() => squatter.close());
    const error = await openPtpSockets({
      eventPort: squatter.port,
      generalPort: squatter.port + 1,
      addresses: ["127.0.0.1"],
      localClock: "realtime",
      readClock,
      onDatagram: () => {},
      onError: () => {},
    }).catch((e) => e);
    expect(error).toBeInstanceOf(NqptpError);
    expect((error as NqptpError).code).toBe("bind-in-use");
    expect((error as Error).message).toContain(`127.0.0.1:${squatter.port}`);
    expect((error as Error).message).toContain("ptp4l");
  });
});

describe("fallbacks", () => {
  test("if the Worker cannot start, the event port falls back to a Bun socket with ioctl stamps, and says so once", async () => {
    const { sockets, eventPort, received, errors } = await open({ workerUrl: new URL("file:///nonexistent/worker.ts") });
    expect(sockets.eventStamping).toBe("ioctl");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("kernel receive timestamps per datagram are not available");
    const s = await sender();
    const before = readClock("realtime");
    s.send(new Uint8Array([1]), eventPort, "127.0.0.1");
    await until(() => received.length >= 1);
    expect(received[0]!.kernelStamp).toBe(true);
    expect(received[0]!.receivedAtNs).toBeGreaterThanOrEqual(before);
  });

  test("event datagrams the Worker gets without their kernel stamp are said once, and still handed on", async () => {
    const { sockets, eventPort, received, errors } = await open({ workerUrl: new URL("./unstamped-worker.ts", import.meta.url) });
    expect(sockets.eventStamping).toBe("worker");
    expect(errors).toEqual([]);
    const s = await sender();
    for (let i = 0; i < 3; i++) s.send(new Uint8Array([i]), eventPort, "127.0.0.1");
    await until(() => received.length >= 3);
    expect(received.map((d) => d.kernelStamp)).toEqual([false, false, false]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toStartWith(
      "event: kernel receive timestamps are missing on the PTP event port (a datagram from 127.0.0.1 came without SCM_TIMESTAMPNS)",
    );
  });

  test("a stamper whose ioctl is refused reads the clock instead", () => {
    let reported = "";
    const stamper = new LastDatagramStamper(-1, "realtime", readClock, (why) => (reported = why));
    expect(stamper.prime()).toBe("ioctl(SIOCGSTAMPNS) failed with EBADF");
    expect(stamper.usingKernelStamps).toBe(false);
    const before = readClock("realtime");
    expect(stamper.stamp()).toBeGreaterThanOrEqual(before);
    expect(stamper.softwareStamps).toBe(1);
    expect(reported).toBe(""); // prime() leaves the reporting to its caller
  });

  test("ioctl stamps of datagrams read in one batch are the last one's: between arrival and callback", async () => {
    const stamps: { stamp: bigint; callback: bigint }[] = [];
    let stamper: LastDatagramStamper | null = null;
    const socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      socket: {
        data() {
          stamps.push({ stamp: stamper!.stamp(), callback: readClock("realtime") });
        },
      },
    });
    cleanups.push(() => socket.close());
    stamper = new LastDatagramStamper((socket as unknown as { fd: number }).fd, "realtime");
    expect(stamper.prime()).toBeNull();
    const s = await sender();
    const sentAt = readClock("realtime");
    // Sent while this thread is busy: Bun reads them together afterwards.
    for (let i = 0; i < 3; i++) s.send(new Uint8Array([i]), socket.port, "127.0.0.1");
    const until10 = performance.now() + 10;
    while (performance.now() < until10) {
      // busy
    }
    await until(() => stamps.length >= 3);
    for (const { stamp, callback } of stamps) {
      expect(stamp).toBeGreaterThanOrEqual(sentAt);
      expect(stamp).toBeLessThanOrEqual(callback);
    }
  });
});

describe("the Worker", () => {
  test("its script is src/worker.ts in a checkout and beside the executable in a compiled build", () => {
    expect(workerUrl().pathname.endsWith("/src/worker.ts")).toBe(true);
    expect(workerUrl("file:///$bunfs/root/nqptp").href).toBe("file:///$bunfs/root/worker.ts");
  });

  test("drops datagrams beyond its backlog when the main thread falls behind, and says how many", async () => {
    const port = randomPortPair();
    const socket = bindTimestampedSocket({ hostname: "127.0.0.1", port, role: "PTP event port" });
    const received: ReceivedDatagram[] = [];
    const errors: string[] = [];
    const reader = await startEventReader({
      sockets: [socket],
      localClock: "realtime",
      maxBacklog: 10,
      onDatagram: (d) => received.push(d),
      onError: (e) => errors.push(e.message),
    });
    cleanups.push(() => reader.close());
    expect(reader.running).toBe(true);
    const s = await sender();
    // The main thread handles nothing until this test awaits, so the first 10 datagrams the
    // Worker reads fill the backlog; whenever it reads the rest (now, or in one burst later),
    // more than 10 are waiting unhandled and the surplus is dropped.
    for (let i = 0; i < 50; i++) s.send(new Uint8Array([i]), port, "127.0.0.1");
    const dropped = () => errors.reduce((n, e) => n + Number(/^dropped (\d+) event datagram/.exec(e)?.[1] ?? 0), 0);
    await until(() => received.length + dropped() >= 50);
    expect(errors.every((e) => e.startsWith("dropped "))).toBe(true);
    expect(dropped()).toBeGreaterThan(0);
    expect(received.length).toBeGreaterThanOrEqual(10);
    // Each one kept is one that was sent, once, in order; the first 10 sent are among them.
    const payloads = received.map((d) => d.data[0]!);
    expect(payloads.slice(0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let i = 1; i < payloads.length; i++) expect(payloads[i]).toBeGreaterThan(payloads[i - 1]!);
    expect(payloads[payloads.length - 1]).toBeLessThan(50);
    expect(received.length + dropped()).toBe(50);
    reader.close();
    expect(reader.running).toBe(false);
  });

  test("a clock pair is three reads in order: realtime, monotonic-raw, realtime", () => {
    for (let i = 0; i < 100; i++) {
      const realtimeBefore = readClock("realtime");
      const rawBefore = readClock("monotonic-raw");
      const p = readClockPair();
      const rawAfter = readClock("monotonic-raw");
      const realtimeAfter = readClock("realtime");
      expect(p.realtimeBeforeNs).toBeGreaterThanOrEqual(realtimeBefore);
      expect(p.realtimeAfterNs).toBeGreaterThanOrEqual(p.realtimeBeforeNs);
      expect(p.realtimeAfterNs).toBeLessThanOrEqual(realtimeAfter);
      expect(p.monotonicRawNs).toBeGreaterThanOrEqual(rawBefore);
      expect(p.monotonicRawNs).toBeLessThanOrEqual(rawAfter);
    }
  });
});
