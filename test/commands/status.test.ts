import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { formatClocks, formatView, viewOf } from "../../src/commands/status.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { realtimeNs } from "../../src/time/clocks.ts";
import { compiledBinary, startDaemon, type RunningDaemon } from "../support/daemon.ts";
import { startPtpMaster, type PtpMaster } from "../support/ptp-master.ts";
import { sendControl, waitForShm } from "../e2e/support.ts";

setDefaultTimeout(60_000);
const S = 1_000_000_000n;

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
    expect(view.master).toMatchObject({ clockId: "0x0000000000000abc", ip: "10.0.0.5", offsetS: -2, lastUpdateAgoS: 0.5, masterForS: 60.5, stale: false });
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
      { ip: "10.0.0.5", clockId: "2748", isTimingPeer: true, qualified: true, valid: true, isMaster: true, lastHeardAgoNs: "200000000", latestOffsetNs: "1500000000", sampleCount: 12 },
      { ip: "10.0.0.9", clockId: null, isTimingPeer: true, qualified: false, valid: false, isMaster: false, lastHeardAgoNs: null, latestOffsetNs: null, sampleCount: 0 },
    ]);
    expect(text.split("\n")).toHaveLength(3);
    expect(text).toMatch(/10\.0\.0\.5\s+0x0000000000000abc\s+master\s+yes\s+yes\s+0\.2 s ago\s+1\.500000000\s+12/);
    expect(text).toMatch(/10\.0\.0\.9\s+-\s+peer\s+no\s+no\s+never\s+-\s+0/);
    expect(formatClocks([])).toBe("clocks: none seen");
  });
});

describe("nqptp status against the running daemon", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function status(args: string[]) {
    const proc = Bun.spawn([await compiledBinary(), "status", ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { stdout, stderr, code };
  }

  async function running(): Promise<{ d: RunningDaemon; m: PtpMaster }> {
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
    return { d, m };
  }

  test("--json shows the master the test master created", async () => {
    const { d } = await running();
    const { stdout, code } = await status(["--shm-name", d.shmName, "--json"]);
    expect(code).toBe(0);
    const view = JSON.parse(stdout);
    expect(view).toMatchObject({ shmName: d.shmName, interfaceVersion: 5, localClock: "realtime" });
    expect(view.master.clockId).toBe("0x0000000000000077");
    expect(view.master.ip).toBe("127.0.0.2");
    expect(Math.abs(view.master.offsetS - 3)).toBeLessThan(0.05);
    expect(view.master.lastUpdateAgoS).toBeLessThan(2);
    expect(view.master.stale).toBe(false);
  });

  test("--clocks asks the daemon for its table over the control port", async () => {
    const { d } = await running();
    const { stdout, code } = await status(["--shm-name", d.shmName, "--clocks", "--control-port", String(d.ports.control)]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/127\.0\.0\.2\s+0x0000000000000077\s+master\s+yes\s+yes/);
    expect(stdout).toMatch(/127\.0\.0\.9\s+-\s+peer\s+no\s+no\s+never/);
    const json = JSON.parse((await status(["--shm-name", d.shmName, "--clocks", "--json", "--control-port", String(d.ports.control)])).stdout);
    expect(json.clocks).toHaveLength(2);
  });

  test("a clear message when the daemon is not running", async () => {
    const missing = await status(["--shm-name", `/nqptp-absent-${process.pid}`]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("nqptp does not seem to be running");
    const { d } = await running();
    const unreachable = await status(["--shm-name", d.shmName, "--clocks", "--control-port", "1"]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain("no answer from nqptp on 127.0.0.1:1");
  });

  test("an unknown option is refused", async () => {
    const { code, stderr } = await status(["--bogus"]);
    expect(code).toBe(64);
    expect(stderr).toContain("unknown option");
  });
});
