// --interface in this process, on loopback ("lo") and unprivileged ports: both ports bound to the
// interface and stamped by the kernel in the reader thread; sends go out of it; an interface
// that is not there is waited for and picked up, one that goes away or is re-created is followed,
// one whose port is held fails clearly (src/net/interface-bound-sockets.ts, interface-ports.ts).
// The kernel's list is substituted where a test needs an interface to come and go.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { PtpInterfaceStatus } from "../../src/control/status.ts";
import { NqptpError } from "../../src/errors.ts";
import type { ListedInterface, Notice } from "../../src/net/interface-watch.ts";
import { openPtpSockets, type PtpDatagram, type PtpSocketsOptions } from "../../src/net/ptp-sockets.ts";
import { listInterfaces } from "../../src/sys/posix.ts";
import { readClock } from "../../src/time/clocks.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { onFreePorts, udpSender, until } from "../support/sockets.ts";

setDefaultTimeout(20_000);

const cleanups = cleanupAfterEach();
const loopback = listInterfaces().find((i) => i.name === "lo")!;

interface Opened {
  sockets: Awaited<ReturnType<typeof openPtpSockets>>;
  eventPort: number;
  generalPort: number;
  received: PtpDatagram[];
  errors: string[];
  notices: Notice[];
  changes: PtpInterfaceStatus[][];
}

/** openPtpSockets with --interface on random ports (retried if a port is taken). */
async function open(interfaces: string[], extra: Partial<PtpSocketsOptions> = {}): Promise<Opened> {
  return onFreePorts(async (eventPort) => {
    const got: Omit<Opened, "sockets"> = { eventPort, generalPort: eventPort + 1, received: [], errors: [], notices: [], changes: [] };
    const sockets = await openPtpSockets({
      eventPort,
      generalPort: eventPort + 1,
      addresses: [],
      interfaces,
      localClock: "monotonic-raw",
      readClock,
      onDatagram: (d) => got.received.push(d),
      onError: (role, e) => got.errors.push(`${role}: ${e.message}`),
      onNotice: (n) => got.notices.push(n),
      onInterfacesChanged: (s) => got.changes.push(s),
      interfaceWatchMs: 20,
      ...extra,
    });
    cleanups.push(() => sockets.close());
    return { sockets, ...got };
  });
}

const sender = (hostname?: string) => udpSender(cleanups, hostname);

/** A port is free when a socket without an interface can bind it. */
async function portIsFree(port: number): Promise<boolean> {
  try {
    const socket = await Bun.udpSocket({ hostname: "::", port });
    socket.close();
    return true;
  } catch {
    return false;
  }
}

describe("--interface lo", () => {
  test("both ports are read by the reader thread with kernel stamps; the state is 'served'", async () => {
    const o = await open(["lo"]);
    expect(o.sockets.eventStamping).toBe("worker");
    expect(o.sockets.interfaces()).toEqual([{ name: "lo", state: "served", problem: null }]);
    expect(o.changes).toEqual([[{ name: "lo", state: "served", problem: null }]]);
    const s = await sender();
    const before = readClock("monotonic-raw");
    s.send(new Uint8Array([1]), o.eventPort, "127.0.0.1");
    s.send(new Uint8Array([2]), o.generalPort, "127.0.0.1");
    await until(() => o.received.length >= 2);
    const after = readClock("monotonic-raw");
    expect(o.received.map((d) => [d.role, d.data[0], d.address, d.port]).sort()).toEqual([
      ["event", 1, "::ffff:127.0.0.1", s.port],
      ["general", 2, "::ffff:127.0.0.1", s.port],
    ]);
    for (const d of o.received) {
      expect(d.kernelStamp).toBe(true);
      expect(d.receivedAtNs).toBeGreaterThanOrEqual(before);
      expect(d.receivedAtNs).toBeLessThanOrEqual(after);
    }
    expect(o.errors).toEqual([]);
    expect(o.notices).toEqual([]);
  });

  test("datagrams the reader gets without their kernel stamp are said once, naming the port and interface, and still handed on", async () => {
    const o = await open(["lo"], { workerUrl: new URL("./unstamped-worker.ts", import.meta.url) });
    expect(o.sockets.eventStamping).toBe("worker");
    const s = await sender();
    s.send(new Uint8Array([1]), o.eventPort, "127.0.0.1");
    s.send(new Uint8Array([2]), o.generalPort, "127.0.0.1");
    await until(() => o.received.length >= 2);
    expect(o.received.map((d) => d.kernelStamp)).toEqual([false, false]);
    expect(o.errors).toHaveLength(1);
    expect(o.errors[0]).toMatch(
      /^(event|general): kernel receive timestamps are missing on the PTP (event|general) port on interface lo \(a datagram from ::ffff:127\.0\.0\.1 came without SCM_TIMESTAMPNS\)/,
    );
  });

  test("sendGeneral goes out of the interface's general port (here it comes back to that same port, over loopback)", async () => {
    const o = await open(["lo"]);
    const s = await sender("127.0.0.3");
    // Heard first from 127.0.0.3, so the answer goes out where it was heard.
    s.send(new Uint8Array([0]), o.generalPort, "127.0.0.1");
    await until(() => o.received.length >= 1);
    expect(o.sockets.sendGeneral(new Uint8Array([9, 9]), "127.0.0.3")).toBe(true);
    await until(() => o.received.length >= 2);
    const echo = o.received[1]!;
    expect([echo.role, [...echo.data], echo.port]).toEqual(["general", [9, 9], o.generalPort]);
  });

  test("the port stays held against sockets without an interface; close() frees both ports before it returns", async () => {
    const o = await open(["lo"]);
    expect(await portIsFree(o.eventPort)).toBe(false);
    expect(await portIsFree(o.generalPort)).toBe(false);
    o.sockets.close();
    expect(await portIsFree(o.eventPort)).toBe(true);
    expect(await portIsFree(o.generalPort)).toBe(true);
    o.sockets.close(); // idempotent
  });

  test("a port held on the interface at start-up is the same clear error as without --interface, naming the interface", async () => {
    const squatter = await Bun.udpSocket({ hostname: "::" });
    cleanups.push(() => squatter.close());
    const error = await openPtpSockets({
      eventPort: squatter.port,
      generalPort: squatter.port + 1,
      addresses: [],
      interfaces: ["lo"],
      localClock: "realtime",
      readClock,
      onDatagram: () => {},
      onError: () => {},
    }).catch((e) => e);
    expect(error).toBeInstanceOf(NqptpError);
    expect((error as NqptpError).code).toBe("bind-in-use");
    expect((error as Error).message).toContain(`PTP event port on interface lo [::]:${squatter.port}: the port is already in use`);
    // Nothing was left open: the general port is free.
    expect(await portIsFree(squatter.port + 1)).toBe(true);
  });

  test("an interface the kernel lists but that does not exist (it went at that moment) fails start-up clearly", async () => {
    const error = await open(["lo", "nqptp-gone0"], { listInterfaces: () => [loopback, { name: "nqptp-gone0", index: 99999 }] }).catch((e) => e);
    expect(error).toBeInstanceOf(NqptpError);
    expect((error as Error).message).toContain("on interface nqptp-gone0");
    expect((error as Error).message).toContain("there is no such interface");
  });
});

describe("interfaces that come and go (the kernel's list substituted)", () => {
  test("missing at start: one line, waited for, picked up at the next look, then followed as it goes, comes back and is re-created", async () => {
    let listed: ListedInterface[] = [];
    const o = await open(["lo"], { listInterfaces: () => listed });
    expect(o.sockets.interfaces()).toEqual([{ name: "lo", state: "waiting", problem: null }]);
    expect(o.notices).toEqual([{ level: "warn", text: "interface lo does not exist: waiting for it (PTP will be heard there once it appears)" }]);
    expect(await portIsFree(o.eventPort)).toBe(true);
    await Bun.sleep(100); // several looks: still one line
    expect(o.notices).toHaveLength(1);
    expect(o.sockets.sendGeneral(new Uint8Array([1]), "127.0.0.1")).toBe(false);

    listed = [loopback];
    await until(() => o.sockets.interfaces()?.[0]?.state === "served");
    expect(o.notices.at(-1)).toEqual({ level: "info", text: "interface lo appeared: PTP is heard there now" });
    const s = await sender();
    s.send(new Uint8Array([1]), o.eventPort, "127.0.0.1");
    await until(() => o.received.length >= 1);
    expect(o.received[0]!.kernelStamp).toBe(true);

    listed = [];
    await until(() => o.sockets.interfaces()?.[0]?.state === "waiting");
    expect(o.notices.at(-1)).toEqual({ level: "warn", text: "interface lo went away: PTP is not heard there until it comes back" });
    expect(await portIsFree(o.eventPort)).toBe(true);

    listed = [loopback];
    await until(() => o.sockets.interfaces()?.[0]?.state === "served");
    expect(o.notices.at(-1)!.text).toBe("interface lo appeared: PTP is heard there now");
    listed = [{ ...loopback, index: loopback.index + 1000 }]; // the same name, a new index
    await until(() => o.notices.at(-1)!.text === "interface lo was re-created: PTP is heard there again");
    expect(o.sockets.interfaces()).toEqual([{ name: "lo", state: "served", problem: null }]);
    s.send(new Uint8Array([2]), o.eventPort, "127.0.0.1");
    await until(() => o.received.length >= 2);
    expect(o.changes.map((c) => c[0]!.state)).toEqual(["waiting", "served", "waiting", "served"]);
    expect(o.errors).toEqual([]);
  });

  test("one that appears with its port held: said once, tried again at each look, heard once the port is free", async () => {
    let listed: ListedInterface[] = [];
    const o = await open(["lo"], { listInterfaces: () => listed });
    const squatter = await Bun.udpSocket({ hostname: "::", port: o.eventPort });
    let squatting = true;
    cleanups.push(() => squatting && squatter.close());
    listed = [loopback];
    await until(() => o.sockets.interfaces()?.[0]?.state === "failed");
    await Bun.sleep(100);
    const failures = o.notices.filter((n) => n.text.startsWith("cannot hear PTP on interface lo"));
    expect(failures).toHaveLength(1);
    expect(failures[0]!.text).toContain("the port is already in use");
    expect(failures[0]!.text).toEndWith("trying again every 0.02 s");
    expect(o.sockets.interfaces()![0]!.problem).toContain("the port is already in use");
    squatter.close();
    squatting = false;
    await until(() => o.sockets.interfaces()?.[0]?.state === "served");
    expect(o.notices.at(-1)).toEqual({ level: "info", text: "interface lo: PTP is heard there now" });
  });
});
