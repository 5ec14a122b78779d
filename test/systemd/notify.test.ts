// sd_notify: the protocol's pure part, and the compiled daemon talking to a stand-in for
// systemd's notification socket (test/c/notify-listen.c).

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { notifyTarget, statusLine, watchdogIntervalMs } from "../../src/systemd/notify-protocol.ts";
import { createNotifier } from "../../src/systemd/notify.ts";
import { realtimeNs } from "../../src/time/clocks.ts";
import { buildCProgram } from "../support/c.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { startDaemon } from "../support/daemon.ts";
import { startPtpMaster } from "../support/ptp-master.ts";
import { sendControl } from "../e2e/support.ts";

setDefaultTimeout(60_000);

describe("the protocol", () => {
  test("NOTIFY_SOCKET: a path, an abstract name, or nothing", () => {
    expect(notifyTarget({})).toBeNull();
    expect(notifyTarget({ NOTIFY_SOCKET: "/run/systemd/notify" })).toEqual({
      path: new TextEncoder().encode("/run/systemd/notify"),
      abstract: false,
    });
    const abstract = notifyTarget({ NOTIFY_SOCKET: "@sd-notify" });
    expect(abstract).toEqual({ path: new Uint8Array([0, ...new TextEncoder().encode("sd-notify")]), abstract: true });
    expect(notifyTarget({ NOTIFY_SOCKET: "relative" })).toHaveProperty("error");
    expect(notifyTarget({ NOTIFY_SOCKET: `/${"x".repeat(200)}` })).toHaveProperty("error");
  });

  test("the watchdog interval is half of WATCHDOG_USEC, only for our pid", () => {
    expect(watchdogIntervalMs({}, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "41" }, 42)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "junk" }, 42)).toBeNull();
  });

  test("STATUS is one line", () => {
    expect(statusLine("master 0x01\nat 10.0.0.5")).toBe("STATUS=master 0x01 at 10.0.0.5");
  });

  test("outside systemd the notifier does nothing; a socket that is gone is warned about once", () => {
    const warnings: string[] = [];
    const none = createNotifier({ env: {}, warn: (m) => warnings.push(m) });
    expect(none.active).toBe(false);
    none.ready("x");
    const gone = createNotifier({ env: { NOTIFY_SOCKET: `/tmp/nqptp-no-such-socket-${process.pid}` }, warn: (m) => warnings.push(m) });
    gone.ready("a");
    gone.status("b");
    gone.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("could not notify systemd");
  });
});

describe("the daemon under a stand-in for systemd", () => {
  const cleanups = cleanupAfterEach();

  async function listen(address: string) {
    const listener = Bun.spawn([await buildCProgram("notify-listen"), address, "20000"], { stdout: "pipe", stderr: "pipe" });
    cleanups.push(() => listener.kill("SIGKILL"));
    const lines: { text: string; atMs: number }[] = [];
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of listener.stdout) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const text = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (text === "listening") ready();
          else lines.push({ text, atMs: performance.now() });
        }
      }
    })();
    await listening;
    return { listener, lines };
  }

  async function until(lines: { text: string }[], pattern: RegExp, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = lines.find((l) => pattern.test(l.text));
      if (found) return found;
      await Bun.sleep(20);
    }
    throw new Error(`no notification matched ${pattern}: ${JSON.stringify(lines)}`);
  }

  test("READY only once the control port answers, STATUS follows the master, WATCHDOG pets, STOPPING last", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nqptp-notify-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, "notify");
    const { lines } = await listen(socketPath);
    const d = await startDaemon({ env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "200000" } });
    cleanups.push(() => d.stop("SIGKILL"));

    const ready = await until(lines, /^READY=1/);
    expect(ready.text).toMatch(/STATUS=serving interface 5 at \/nqptp-e2e-.* no master yet/);
    expect(lines[0]!.text).toBe(ready.text); // nothing before READY
    // The control port was bound before READY: a status request is answered.
    let answered: (text: string) => void = () => {};
    const answer = new Promise<string>((resolve, reject) => {
      answered = resolve;
      setTimeout(() => reject(new Error("no status answer")), 2000);
    });
    const s = await Bun.udpSocket({ hostname: "127.0.0.1", socket: { data: (_s, data) => answered(new TextDecoder().decode(data)) } });
    s.send(new TextEncoder().encode("STATUS"), d.ports.control, "127.0.0.1");
    expect(JSON.parse(await answer).interfaceVersion).toBe(5);
    s.close();

    const m = await startPtpMaster({
      address: "127.0.0.2",
      target: "127.0.0.1",
      eventPort: d.ports.event,
      generalPort: d.ports.general,
      clockIdentity: 0x5151n,
      offsetNs: 0n,
      clock: realtimeNs,
    });
    cleanups.push(() => m.stop());
    await sendControl("T 127.0.0.2", d.ports.control);
    await until(lines, /^STATUS=master 0x0000000000005151 at 127\.0\.0\.2/);
    await until(lines, /^WATCHDOG=1$/);
    const pets = () => lines.filter((l) => l.text === "WATCHDOG=1").length;
    const before = pets();
    await Bun.sleep(600);
    expect(pets() - before).toBeGreaterThanOrEqual(3); // every 100 ms

    expect(await d.stop("SIGTERM")).toBe(0);
    await until(lines, /STOPPING=1/);
    expect(lines.at(-1)!.text).toContain("STOPPING=1");
  });

  test("an abstract-namespace NOTIFY_SOCKET works too", async () => {
    const name = `@nqptp-notify-${process.pid}`;
    const { lines } = await listen(name);
    const d = await startDaemon({ env: { NOTIFY_SOCKET: name } });
    cleanups.push(() => d.stop("SIGKILL"));
    await until(lines, /^READY=1/);
    expect(lines.some((l) => l.text.includes("WATCHDOG=1"))).toBe(false); // no WATCHDOG_USEC, no pets
  });
});
