// `nqptp status`: the pure view and table, then runStatus in-process (real regions made with the
// daemon's own shm writer, a real UDP responder for --clocks, an injected clock and output), then
// one check that the compiled binary's `status` reads a running daemon.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { askDaemon, formatClocks, formatView, parseStatusArgs, runStatus, systemStatusIo, viewOf, type StatusIo } from "../../src/commands/status.ts";
import { encodeStatusReport, isStatusRequest, type StatusReport } from "../../src/control/status.ts";
import { DEFAULTS } from "../../src/daemon/options.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { openShm, type ShmWriter } from "../../src/shm/writer.ts";
import { realtimeNs } from "../../src/time/clocks.ts";
import type { LocalClock } from "../../src/time/clocks.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { compiledBinary, startDaemon, uniqueShmName } from "../support/daemon.ts";
import { startPtpMaster } from "../support/ptp-master.ts";
import { sendControl, waitForShm } from "../e2e/support.ts";

setDefaultTimeout(60_000);
const S = 1_000_000_000n;

const cleanups = cleanupAfterEach();

describe("status view (pure)", () => {
  const record = {
    version: 5 as const,
    layout: layoutFor(5, "x64"),
    clockId: 0xabcn,
    ip: "10.0.0.5",
    localTimeNs: 100n * S,
    offsetNs: (1n << 64n) - 2n * S,
    startTimeNs: 40n * S,
  };

  test("a master: signed offset, age, mastership duration", () => {
    const view = viewOf("/nqptp", record, 100n * S + S / 2n, 5);
    expect(view.master).toMatchObject({
      clockId: "0x0000000000000abc",
      ip: "10.0.0.5",
      offsetS: -2,
      lastUpdateAgoS: 0.5,
      masterForS: 60.5,
      stale: false,
    });
    const text = formatView(view);
    expect(text).toContain("master clock: 0x0000000000000abc at 10.0.0.5");
    expect(text).toContain("offset:       -2.000000000 s");
    expect(text).not.toContain("warning");
  });

  test("stale after the threshold, with a warning", () => {
    const view = viewOf("/nqptp", record, 110n * S, 5);
    expect(view.master!.stale).toBe(true);
    expect(formatView(view)).toContain("warning: no update for 10.0 s");
  });

  test("zeros mean no master", () => {
    const view = viewOf("/nqptp", { ...record, clockId: 0n, localTimeNs: 0n, offsetNs: 0n, startTimeNs: 0n }, 5n * S, 5);
    expect(view.master).toBeNull();
    expect(formatView(view)).toContain("master clock: none");
  });

  test("the clock table", () => {
    const text = formatClocks([
      {
        ip: "10.0.0.5",
        clockId: "2748",
        isTimingPeer: true,
        qualified: true,
        valid: true,
        isMaster: true,
        lastHeardAgoNs: "200000000",
        latestOffsetNs: "1500000000",
        sampleCount: 12,
      },
      {
        ip: "10.0.0.9",
        clockId: null,
        isTimingPeer: true,
        qualified: false,
        valid: false,
        isMaster: false,
        lastHeardAgoNs: null,
        latestOffsetNs: null,
        sampleCount: 0,
      },
    ]);
    expect(text.split("\n")).toHaveLength(3);
    expect(text).toMatch(/10\.0\.0\.5\s+0x0000000000000abc\s+master\s+yes\s+yes\s+0\.2 s ago\s+1\.500000000\s+12/);
    expect(text).toMatch(/10\.0\.0\.9\s+-\s+peer\s+no\s+no\s+never\s+-\s+0/);
    expect(formatClocks([])).toBe("clocks: none seen");
  });
});

describe("the status command line", () => {
  test("defaults are the daemon's (src/daemon/options.ts)", () => {
    expect(parseStatusArgs([])).toEqual({
      kind: "run",
      options: {
        shmName: DEFAULTS.shmName,
        json: false,
        watch: false,
        clocks: false,
        controlPort: DEFAULTS.controlPort,
        controlAddress: "127.0.0.1",
        staleAfterS: 5,
      },
    });
  });

  test("every option, in both spellings", () => {
    const plan = parseStatusArgs([
      "--shm-name=/x",
      "--json",
      "-w",
      "--clocks",
      "--control-port",
      "9100",
      "--control-address=::1",
      "--stale-after",
      "0.5",
    ]);
    expect(plan).toEqual({
      kind: "run",
      options: { shmName: "/x", json: true, watch: true, clocks: true, controlPort: 9100, controlAddress: "::1", staleAfterS: 0.5 },
    });
    expect(parseStatusArgs(["-h"]).kind).toBe("help");
  });

  test.each([
    [["--bogus"], 'unknown option "--bogus"'],
    [["stray"], 'unexpected argument "stray"'],
    [["--json=yes"], "option --json takes no value"],
    [["--control-port"], "option --control-port needs a value"],
    [["--control-port", "1e3"], '--control-port: "1e3" is not a port number 1-65535'],
    [["--control-port", "0"], "is not a port number"],
    [["--control-address", "localhost"], '--control-address: "localhost" is not an IP address'],
    [["--stale-after", "1e3"], '--stale-after: "1e3" is not a number of seconds'],
    [["--stale-after", "-1"], "option --stale-after needs a value"],
    [["--shm-name", "nqptp"], 'does not begin with "/"'],
    [["--shm-name", "/a b"], "holds a space"],
    [["--shm-name", `/${"x".repeat(63)}`], "is 64 bytes of UTF-8"],
  ])("%j is refused (%s)", (args, message) => {
    const plan = parseStatusArgs(args);
    expect(plan.kind).toBe("error");
    if (plan.kind === "error") expect(plan.message).toContain(message);
  });
});

interface Captured {
  io: StatusIo;
  out: string[];
  err: string[];
  read: string[];
  sleeps: number[];
  clears: number;
}

/** The real region reading and daemon asking, with a fixed clock and captured output. */
/**
 * runStatus with the real region files and an injected clock. Status always asks the daemon; here
 * no daemon answers unless the test passes askDaemon (the real one, to a responder's port).
 */
function captured(nowNs: (clock: LocalClock) => bigint, overrides: Partial<StatusIo> = {}): Captured {
  const c: Captured = { out: [], err: [], read: [], sleeps: [], clears: 0, io: undefined as unknown as StatusIo };
  const system = systemStatusIo({ out: (t) => c.out.push(t), err: (t) => c.err.push(t) });
  c.io = {
    ...system,
    askDaemon: async () => ({ error: "no daemon in this test" }),
    now: nowNs,
    readRegionFile: (path) => {
      c.read.push(path);
      return system.readRegionFile(path);
    },
    clearScreen: () => c.clears++,
    sleep: async (ms) => {
      c.sleeps.push(ms);
    },
    ...overrides,
  };
  return c;
}

function region(version: 5 | 9 | 10, record: Parameters<ShmWriter["publish"]>[0]): ShmWriter {
  const writer = openShm({ name: uniqueShmName("status"), version });
  cleanups.push(() => writer.close());
  writer.publish(record);
  return writer;
}

const MASTER = { clockId: 0x77n, ip: "10.0.0.5", localTimeNs: 100n * S, offsetNs: 3n * S, masterStartTimeNs: 40n * S };

type RecordSnapshot = StatusReport["snapshot"]["records"][number];
const peerRecord = (ip: string, extra: Partial<RecordSnapshot>): RecordSnapshot => ({
  ip,
  clockId: null,
  isTimingPeer: true,
  qualified: false,
  valid: false,
  isMaster: false,
  followedBy: [],
  lastHeardAgoNs: null,
  latestOffsetNs: null,
  sampleCount: 0,
  grandmasterIdentity: null,
  grandmasterPriority1: null,
  ...extra,
});

/** A UDP socket on loopback that answers STATUS with `records`, encoded as the daemon does (or never answers). */
async function responder(
  records: RecordSnapshot[] | "silent",
  clients: StatusReport["snapshot"]["clients"] = [],
  ptpInterfaces: StatusReport["ptpInterfaces"] = null,
): Promise<number> {
  const report: StatusReport = {
    nqptp: "test",
    interfaceVersion: 5,
    shmName: "/nqptp",
    uptimeS: 1,
    ptpInterfaces,
    snapshot: {
      records: records === "silent" ? [] : records,
      peers: [],
      master: null,
      overflow: { active: false, evicted: 0, dropped: 0 },
      follow: null,
      clients,
    },
    stats: {},
  };
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data(s, data, port, address) {
        if (records !== "silent" && isStatusRequest(data)) s.send(encodeStatusReport(report), port, address);
      },
    },
  });
  cleanups.push(() => socket.close());
  return socket.port;
}

describe("runStatus, in-process", () => {
  test("interfaces 8-10: every client region the daemon serves, what it follows and holds; --json and --clocks carry them", async () => {
    const main = region(10, MASTER);
    const kitchen = region(10, { ...MASTER, clockId: 0x99n, offsetNs: (1n << 64n) - S, localTimeNs: 100n * S + S / 4n });
    const idle = region(10, null);
    const port = await responder(
      [
        peerRecord("10.0.0.5", { clockId: 0x77n, isMaster: true, followedBy: [main.name] }),
        peerRecord("10.0.0.6", { clockId: 0x99n, isMaster: true, followedBy: [kitchen.name] }),
      ],
      [
        {
          name: main.name,
          follow: { ip: "10.0.0.5", active: true, validForNs: 0n, sequenceStartNs: 40n * S, grandmasterIdentity: 0x77n, restartPending: false },
          published: MASTER,
        },
        {
          name: kitchen.name,
          follow: { ip: "10.0.0.6", active: false, validForNs: 2n * S, sequenceStartNs: 40n * S, grandmasterIdentity: 0x99n, restartPending: false },
          published: null,
        },
        {
          name: idle.name,
          follow: { ip: null, active: false, validForNs: null, sequenceStartNs: null, grandmasterIdentity: null, restartPending: false },
          published: null,
        },
      ],
    );
    const c = captured(() => 101n * S, { askDaemon });
    expect(await runStatus(["--shm-name", main.name, "--control-port", String(port), "--clocks"], c.io)).toBe(0);
    const text = c.out[0]!;
    expect(text).toMatch(new RegExp(`${main.name}\\s+10\\.0\\.0\\.5\\s+active\\s+0x0000000000000077\\s+\\+3\\.000000000\\s+1\\.000 s ago`));
    expect(text).toMatch(new RegExp(`${kitchen.name}\\s+10\\.0\\.0\\.6\\s+valid 2\\.0 s\\s+0x0000000000000099\\s+-1\\.000000000\\s+0\\.750 s ago`));
    expect(text).toMatch(new RegExp(`${idle.name}\\s+-\\s+idle\\s+-\\s+-\\s+-`));
    expect(text).toMatch(new RegExp(`10\\.0\\.0\\.6\\s+0x0000000000000099\\s+master.*${kitchen.name}$`, "m"));

    const json = captured(() => 101n * S, { askDaemon });
    expect(await runStatus(["--shm-name", main.name, "--control-port", String(port), "--json"], json.io)).toBe(0);
    const view = JSON.parse(json.out[0]!);
    expect(
      view.clients.map((client: { name: string; following: string | null; state: string }) => [client.name, client.following, client.state]),
    ).toEqual([
      [main.name, "10.0.0.5", "active"],
      [kitchen.name, "10.0.0.6", "valid"],
      [idle.name, null, "idle"],
    ]);
    expect(view.clients[1].master.offsetS).toBe(-1);
    expect(view.clocks).toBeUndefined();
  });

  test("interfaces 8-10 when the daemon does not answer: the main region still shows, exit 0, and says the clients are not known", async () => {
    const main = region(9, MASTER);
    const c = captured(() => 101n * S, { askDaemon: async () => ({ error: "no answer within 1 s" }) });
    expect(await runStatus(["--shm-name", main.name], c.io)).toBe(0);
    expect(c.out[0]).toContain("master clock: 0x0000000000000077 at 10.0.0.5");
    expect(c.out[0]).toContain("clients: not known (no answer from nqptp on 127.0.0.1:9000: no answer within 1 s)");
  });

  test("a master, as text: exit 0", async () => {
    const writer = region(5, MASTER);
    const c = captured(() => 100n * S + S / 2n);
    expect(await runStatus(["--shm-name", writer.name], c.io)).toBe(0);
    expect(c.read).toEqual([writer.path]);
    expect(c.err).toEqual([]);
    expect(c.out).toHaveLength(1);
    expect(c.out[0]).toContain(`nqptp: ${writer.name}, interface 5 (realtime clock)`);
    expect(c.out[0]).toContain("master clock: 0x0000000000000077 at 10.0.0.5");
    expect(c.out[0]).toContain("offset:       +3.000000000 s (u64 3000000000)");
    expect(c.out[0]).toContain("last update:  0.500 s ago");
  });

  test("--json, from a version 10 region read at its own clock", async () => {
    const writer = region(10, MASTER);
    const clocks: LocalClock[] = [];
    const asked: number[] = [];
    const c = captured(
      (clock) => {
        clocks.push(clock);
        return 101n * S;
      },
      // Interface 10 asks the daemon for its other clients; none answers here.
      {
        askDaemon: async (_address, port) => {
          asked.push(port);
          return { error: "no answer" };
        },
      },
    );
    expect(await runStatus(["--json", `--shm-name=${writer.name}`], c.io)).toBe(0);
    expect(asked).toEqual([9000]);
    expect(clocks).toEqual(["monotonic-raw"]);
    const view = JSON.parse(c.out[0]!);
    expect(view).toEqual({
      shmName: writer.name,
      interfaceVersion: 10,
      localClock: "monotonic-raw",
      master: {
        clockId: "0x0000000000000077",
        ip: null,
        offsetNs: "3000000000",
        offsetS: 3,
        localTimeNs: "100000000000",
        startTimeNs: "40000000000",
        lastUpdateAgoS: 1,
        masterForS: 61,
        stale: false,
      },
    });
  });

  test("stale: exit 1 with the warning; --stale-after moves the threshold", async () => {
    const writer = region(5, MASTER);
    const c = captured(() => 106n * S);
    expect(await runStatus(["--shm-name", writer.name], c.io)).toBe(1);
    expect(c.out[0]).toContain("warning: no update for 6.0 s");
    const later = captured(() => 106n * S);
    expect(await runStatus(["--shm-name", writer.name, "--stale-after", "6.5"], later.io)).toBe(0);
    expect(later.out[0]).not.toContain("warning");
  });

  test("no master: zeros, exit 0", async () => {
    const writer = region(5, null);
    const c = captured(() => 5n * S);
    expect(await runStatus(["--shm-name", writer.name], c.io)).toBe(0);
    expect(c.out[0]).toContain("master clock: none");
  });

  test("not running (no region), or a region that is not nqptp's: exit 3", async () => {
    const absent = `/nqptp-absent-${process.pid}`;
    const c = captured(() => 0n);
    expect(await runStatus(["--shm-name", absent], c.io)).toBe(3);
    expect(c.err).toEqual([`nqptp does not seem to be running: there is no shared memory at /dev/shm${absent}`]);
    expect(c.out).toEqual([]);
    const odd = captured(() => 0n, { readRegionFile: () => new Uint8Array(7) });
    expect(await runStatus([], odd.io)).toBe(3);
    expect(odd.err).toEqual(["/dev/shm/nqptp holds no interface version this nqptp knows (7 bytes)"]);
  });

  test("--clocks asks the daemon over UDP and prints its table; --json carries it too", async () => {
    const writer = region(5, MASTER);
    const port = await responder([
      peerRecord("10.0.0.5", {
        clockId: 0x77n,
        qualified: true,
        valid: true,
        isMaster: true,
        lastHeardAgoNs: S / 10n,
        latestOffsetNs: 3n * S,
        sampleCount: 47,
      }),
      peerRecord("10.0.0.9", {}),
    ]);
    const c = captured(() => 100n * S, { askDaemon });
    expect(await runStatus(["--shm-name", writer.name, "--clocks", "--control-port", String(port)], c.io)).toBe(0);
    expect(c.out[0]).toMatch(/\n\nIP\s+CLOCK ID/);
    expect(c.out[0]).toMatch(/10\.0\.0\.5\s+0x0000000000000077\s+master\s+yes\s+yes\s+0\.1 s ago\s+3\.000000000\s+47/);
    expect(c.out[0]).toMatch(/10\.0\.0\.9\s+-\s+peer\s+no\s+no\s+never/);
    const json = captured(() => 100n * S, { askDaemon });
    expect(await runStatus(["--shm-name", writer.name, "--clocks", "--json", "--control-port", String(port)], json.io)).toBe(0);
    expect(JSON.parse(json.out[0]!).clocks.map((r: { ip: string }) => r.ip)).toEqual(["10.0.0.5", "10.0.0.9"]);
  });

  test("--interface: where the daemon hears PTP, from its answer (interfaces 5 and 6 ask too); nothing said without --interface", async () => {
    const writer = region(5, MASTER);
    const port = await responder(
      [],
      [],
      [
        { name: "eth0", state: "served", problem: null },
        { name: "wlan0", state: "waiting", problem: null },
        { name: "eth1", state: "failed", problem: "cannot listen on PTP event port on interface eth1 [::]:319: the port is already in use" },
      ],
    );
    const c = captured(() => 100n * S, { askDaemon });
    expect(await runStatus(["--shm-name", writer.name, "--control-port", String(port)], c.io)).toBe(0);
    const lines = c.out[0]!.split("\n");
    expect(lines[1]).toBe(
      "PTP on:       eth0, wlan0 (waiting: the kernel does not list it), " +
        "eth1 (cannot use it: cannot listen on PTP event port on interface eth1 [::]:319: the port is already in use)",
    );
    expect(lines[2]).toBe("master clock: 0x0000000000000077 at 10.0.0.5");
    const json = captured(() => 100n * S, { askDaemon });
    expect(await runStatus(["--shm-name", writer.name, "--control-port", String(port), "--json"], json.io)).toBe(0);
    expect(JSON.parse(json.out[0]!).ptpInterfaces.map((i: { name: string; state: string }) => `${i.name} ${i.state}`)).toEqual([
      "eth0 served",
      "wlan0 waiting",
      "eth1 failed",
    ]);

    const every = await responder([]);
    const plain = captured(() => 100n * S, { askDaemon });
    expect(await runStatus(["--shm-name", writer.name, "--control-port", String(every)], plain.io)).toBe(0);
    expect(plain.out[0]).not.toContain("PTP on:");
    const unanswered = captured(() => 100n * S);
    expect(await runStatus(["--shm-name", writer.name], unanswered.io)).toBe(0);
    expect(plain.out).toEqual(unanswered.out);
  });

  test("--clocks with no answer: exit 3, naming where it asked", async () => {
    const writer = region(5, MASTER);
    const port = await responder("silent");
    const c = captured(() => 100n * S, { askDaemon: (address, p) => askDaemon(address, p, 200) });
    expect(await runStatus(["--shm-name", writer.name, "--clocks", "--control-port", String(port)], c.io)).toBe(3);
    expect(c.err).toEqual([`no answer from nqptp on 127.0.0.1:${port}: no answer within 0.2 s: is it running, and is that its control port?`]);
    expect(c.out).toEqual([]);
  });

  test("a bad option: exit 64, the reason and the help line, and nothing read", async () => {
    const c = captured(() => 0n);
    expect(await runStatus(["--control-port", "1e3"], c.io)).toBe(64);
    expect(c.err).toEqual(['nqptp status: --control-port: "1e3" is not a port number 1-65535\nTry "nqptp status --help".']);
    expect(c.read).toEqual([]);
    expect(c.out).toEqual([]);
  });

  test("--help: exit 0, every option", async () => {
    const c = captured(() => 0n);
    expect(await runStatus(["--help"], c.io)).toBe(0);
    for (const word of ["--shm-name", "--json", "--watch", "--clocks", "--control-port", "--control-address", "--stale-after"]) {
      expect(c.out.join("\n")).toContain(word);
    }
    expect(c.read).toEqual([]);
  });

  test("an unsupported architecture: exit 69", async () => {
    const c = captured(() => 0n, { arch: null });
    expect(await runStatus([], c.io)).toBe(69);
    expect(c.err[0]).toContain("unsupported architecture");
  });

  test("--watch refreshes every second, clearing the screen (not for --json), until stopped", async () => {
    const writer = region(5, MASTER);
    for (const json of [false, true]) {
      const stop = new AbortController();
      let refreshes = 0;
      const c: Captured = captured(
        () => {
          if (++refreshes === 3) stop.abort();
          return 100n * S;
        },
        { stop: stop.signal },
      );
      const args = ["--shm-name", writer.name, "--watch", ...(json ? ["--json"] : [])];
      expect(await runStatus(args, c.io)).toBe(0);
      expect(c.out).toHaveLength(3);
      expect(c.sleeps).toEqual([1000, 1000, 1000]);
      expect(c.clears).toBe(json ? 0 : 3);
    }
  });
});

describe("the compiled binary's `nqptp status` against a running daemon", () => {
  test("--clocks --json shows the master a test master created and the daemon's table", async () => {
    const d = await startDaemon();
    cleanups.push(() => d.stop("SIGKILL"));
    const m = await startPtpMaster({
      address: "127.0.0.2",
      target: "127.0.0.1",
      eventPort: d.ports.event,
      generalPort: d.ports.general,
      clockIdentity: 0x77n,
      offsetNs: 3n * S,
      clock: realtimeNs,
    });
    cleanups.push(() => m.stop());
    await sendControl("T 127.0.0.2 127.0.0.9", d.ports.control);
    await waitForShm(d.shmName, 5, (r) => BigInt(r.clock_id) !== 0n);

    const proc = Bun.spawn(
      [await compiledBinary(), "status", "--shm-name", d.shmName, "--clocks", "--json", "--control-port", String(d.ports.control)],
      {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const view = JSON.parse(stdout);
    expect(view).toMatchObject({ shmName: d.shmName, interfaceVersion: 5, localClock: "realtime" });
    expect(view.master).toMatchObject({ clockId: "0x0000000000000077", ip: "127.0.0.2", stale: false });
    expect(Math.abs(view.master.offsetS - 3)).toBeLessThan(0.05);
    expect(view.master.lastUpdateAgoS).toBeLessThan(2);
    const roles = Object.fromEntries(
      view.clocks.map((r: { ip: string; isMaster: boolean; isTimingPeer: boolean }) => [r.ip, r.isMaster ? "master" : "peer"]),
    );
    expect(roles).toEqual({ "127.0.0.2": "master", "127.0.0.9": "peer" });
  });
});
