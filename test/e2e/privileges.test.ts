// Running without root: dist/nqptp as an unprivileged user (65534) with only
// CAP_NET_BIND_SERVICE, on the real PTP ports 319/320, as the systemd unit runs it.
//
// Root only (setpriv changes uid; a network namespace keeps ports 319/320 and
// net.ipv4.ip_unprivileged_port_start away from the host's): skipped otherwise, and said so.
// Inside the namespace: the daemon on 127.0.0.1, the PTP master simulator on 127.0.0.2, both on
// 319/320. /dev/shm is shared with the host, so the C reader reads the region from here.

import { spawnCollecting as spawnCollectingProcess, type CollectedProcess } from "../support/process.ts";
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { accessSync, constants, copyFileSync, existsSync, mkdtempSync, chmodSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary, ROOT, uniqueShmName } from "../support/daemon.ts";
import { readShm, waitForShm } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(60_000);

const IS_ROOT = process.getuid?.() === 0;
const CAN_RUN = IS_ROOT && Bun.which("ip") !== null && Bun.which("setpriv") !== null;
const WHY = "root with iproute2 and setpriv only: skipped, cannot change uid or create a network namespace";
const title = (t: string) => (CAN_RUN ? t : `${t} (${WHY})`);
const NOBODY = "65534";
const MASTER_ID = 0x00aa_bbff_fecc_dd01n;

const cleanups = cleanupAfterEach();

function run(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`);
  return result.stdout.toString();
}

let nsCounter = 0;
/** A network namespace with loopback up and the kernel's default for unprivileged ports (1024). */
function namespace(): string {
  const ns = `nqptp-priv-${process.pid}-${++nsCounter}`;
  run(["ip", "netns", "add", ns]);
  cleanups.push(() => run(["ip", "netns", "del", ns]));
  run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_unprivileged_port_start=1024"]);
  return ns;
}

/** dist/nqptp where user 65534 can execute it (a checkout under /root is not reachable). */
async function binaryForNobody(): Promise<string> {
  const binary = await compiledBinary();
  const probe = Bun.spawnSync(["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "test", "-x", binary]);
  if (probe.exitCode === 0) return binary;
  const dir = mkdtempSync(join(tmpdir(), "nqptp-priv-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const copy = join(dir, "nqptp");
  copyFileSync(binary, copy);
  chmodSync(copy, 0o755);
  accessSync(copy, constants.X_OK);
  return copy;
}

function spawnCollecting(argv: string[], env: Record<string, string> = {}): CollectedProcess {
  const child = spawnCollectingProcess(argv, env);
  cleanups.push(async () => {
    if (child.proc.exitCode === null) child.proc.kill("SIGKILL");
    await child.proc.exited;
  });
  return child;
}

const asNobody = (caps: "net_bind_service" | "none") =>
  caps === "none"
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--inh-caps=-all"]
    : ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"];

describe("as an unprivileged user on ports 319/320", () => {
  test.skipIf(!CAN_RUN)(title("with CAP_NET_BIND_SERVICE only: starts, publishes a master, exits cleanly"), async () => {
    const ns = namespace();
    const binary = await binaryForNobody();
    const shmName = uniqueShmName("priv");
    cleanups.push(() => rmSync(`/dev/shm${shmName}`, { force: true }));
    const controlPort = 20000 + Math.floor(Math.random() * 40000);
    const d = spawnCollecting([
      "ip",
      "netns",
      "exec",
      ns,
      ...asNobody("net_bind_service"),
      binary,
      "--ptp-address=127.0.0.1",
      `--control-port=${controlPort}`,
      `--shm-name=${shmName}`,
      "-v",
    ]);
    await d.waitForOutput(/serving shared memory interface 5 .* ports 319\/320/);
    const region = statSync(`/dev/shm${shmName}`);
    expect(region.uid).toBe(65534);
    expect(region.mode & 0o777).toBe(0o666);
    const status = Bun.file(`/proc/${d.proc.pid}/status`);
    const text = await status.text();
    expect(text).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    // Effective capabilities: exactly CAP_NET_BIND_SERVICE (bit 10).
    expect(text).toMatch(/^CapEff:\s+0000000000000400$/m);

    // The simulator needs 319/320 too: root, inside the same namespace.
    const script =
      `import { startPtpMaster } from ${JSON.stringify(join(ROOT, "test/support/ptp-master.ts"))};` +
      `import { realtimeNs } from ${JSON.stringify(join(ROOT, "src/time/clocks.ts"))};` +
      `await startPtpMaster({ address: "127.0.0.2", target: "127.0.0.1", eventPort: 319, generalPort: 320, ` +
      `clockIdentity: ${MASTER_ID}n, offsetNs: 1234567890123n, clock: realtimeNs });` +
      `const s = await Bun.udpSocket({}); s.send("T 127.0.0.2\\0", ${controlPort}, "127.0.0.1");` +
      `setInterval(() => {}, 1000);`;
    const sim = spawnCollecting(["ip", "netns", "exec", ns, process.execPath, "-e", script]);
    const record = await waitForShm(shmName, 5, (r) => BigInt(r.clock_id) === MASTER_ID, 10_000).catch((e) => {
      throw new Error(`${(e as Error).message}\ndaemon:\n${d.output()}\nsimulator:\n${sim.output()}`);
    });
    expect(record.ip).toBe("127.0.0.2");
    sim.proc.kill("SIGKILL");

    d.proc.kill("SIGTERM");
    expect(await d.exited()).toBe(0);
    expect(existsSync(`/dev/shm${shmName}`)).toBe(false);
  });

  test.skipIf(!CAN_RUN)(title("without the capability: exit 77, a message naming CAP_NET_BIND_SERVICE, no region left"), async () => {
    const ns = namespace();
    const binary = await binaryForNobody();
    const shmName = uniqueShmName("nocap");
    cleanups.push(() => rmSync(`/dev/shm${shmName}`, { force: true }));
    const controlPort = 20000 + Math.floor(Math.random() * 40000);
    const d = spawnCollecting([
      "ip",
      "netns",
      "exec",
      ns,
      ...asNobody("none"),
      binary,
      "--ptp-address=127.0.0.1",
      `--control-port=${controlPort}`,
      `--shm-name=${shmName}`,
    ]);
    expect(await d.exited()).toBe(77);
    expect(d.output()).toContain("permission denied");
    expect(d.output()).toContain("CAP_NET_BIND_SERVICE");
    expect(d.output()).toContain("127.0.0.1:319");
    expect(existsSync(`/dev/shm${shmName}`)).toBe(false);
    // A client finds no region at all (not an empty or half-made one).
    await expect(readShm(shmName, 5)).rejects.toThrow();
  });
});
