// The arm64 build really runs, and lays out the shared memory as an aarch64 C compiler does
// (pthread_mutex_t is 48 bytes there, 40 on x86_64): the daemon runs under qemu-user, and a shm
// reader cross-compiled by gcc-aarch64-linux-gnu reads what it wrote. No Raspberry Pi needed.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { askDaemon } from "../../src/commands/status.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { monotonicRawNs, realtimeNs } from "../../src/time/clocks.ts";
import { arm64Cc, buildArm64CProgram } from "../support/c.ts";
import { compiledBinary, ROOT, startDaemon } from "../support/daemon.ts";
import { startPtpMaster } from "../support/ptp-master.ts";
import { offsetError, sendControl, type ShmRecord } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(120_000);

const ARM64_BINARY = join(ROOT, "dist", "nqptp-linux-arm64");
const SYSROOT = "/usr/aarch64-linux-gnu";
const qemu = Bun.which("qemu-aarch64");
const crossCc = arm64Cc();
const missing = [qemu ? null : "qemu-aarch64 (Debian qemu-user)", crossCc ? null : "aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu)"].filter(
  Boolean,
);
if (missing.length > 0) {
  console.warn(`skipping the arm64 tests: ${missing.join(" and ")} not installed (scripts/test.sh installs them when run as root)`);
}
const EMULATE = [qemu ?? "qemu-aarch64", "-L", SYSROOT];
const MS = 1_000_000n;

async function readArm64(shmName: string, version: number): Promise<ShmRecord> {
  const reader = await buildArm64CProgram("shm-reader", { static: false });
  const proc = Bun.spawn([...EMULATE, reader, shmName, String(version)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`arm64 shm-reader exited ${code}: ${err}${out}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

const cleanups = cleanupAfterEach();

describe.skipIf(missing.length > 0)("the arm64 build", () => {
  test("is an aarch64 ELF executable", async () => {
    await compiledBinary();
    const header = readFileSync(ARM64_BINARY).subarray(0, 20);
    expect([...header.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
    expect(header[4]).toBe(2); // ELFCLASS64
    expect(new DataView(header.buffer, header.byteOffset).getUint16(18, true)).toBe(183); // EM_AARCH64
  });

  test("-V runs under qemu-user", async () => {
    await compiledBinary();
    const proc = Bun.spawn([...EMULATE, ARM64_BINARY, "-V", "--interface-version", "10"], { stdout: "pipe", stderr: "pipe" });
    expect(await new Response(proc.stdout).text()).toMatch(/^Version: .+\. Shared Memory Interface Version: smi10\.\n$/);
    expect(await proc.exited).toBe(0);
  });

  test.each([
    [5, realtimeNs],
    [10, monotonicRawNs],
  ] as const)("interface %d: an aarch64 C reader reads what the arm64 daemon publishes", async (version, clock) => {
    await compiledBinary();
    const d = await startDaemon({ interfaceVersion: version, command: [...EMULATE, ARM64_BINARY], readyTimeoutMs: 60_000 });
    cleanups.push(() => d.stop("SIGKILL"));
    // The region has the aarch64 size (48-byte mutex for 5), not the x86_64 one.
    expect(statSync(`/dev/shm${d.shmName}`).size).toBe(layoutFor(version, "arm64").size);
    if (version === 5) expect(layoutFor(5, "arm64").size).not.toBe(layoutFor(5, "x64").size);

    const m = await startPtpMaster({
      address: "127.0.0.2",
      target: "127.0.0.1",
      eventPort: d.ports.event,
      generalPort: d.ports.general,
      clockIdentity: 0x0123_45ff_fe67_89abn,
      grandmasterIdentity: 0x0123_45ff_fe67_89abn,
      offsetNs: 7_000_000_000n,
      clock,
    });
    cleanups.push(() => m.stop());
    await sendControl(version === 5 ? "T 127.0.0.2\0" : `${d.shmName} T 127.0.0.2\0`, d.ports.control);
    if (version === 10) await sendControl(`${d.shmName} B\0`, d.ports.control);

    const deadline = Date.now() + 30_000;
    let record: ShmRecord | null = null;
    while (Date.now() < deadline) {
      record = await readArm64(d.shmName, version);
      if (BigInt(record.clock_id) !== 0n) break;
      await Bun.sleep(250);
    }
    expect(record).not.toBeNull();
    expect(record!.version).toBe(version);
    expect(BigInt(record!.clock_id)).toBe(0x0123_45ff_fe67_89abn);
    if (version === 5) expect(record!.ip).toBe("127.0.0.2");
    // Emulation is slow; the bound is loose.
    expect(offsetError(record!.offset, m.options.offsetNs)).toBeLessThan(200n * MS);
    // qemu-user refuses SO_TIMESTAMPNS (ENOPROTOOPT): the daemon falls back, saying so once.
    expect(d.output().match(/kernel receive timestamps/g) ?? []).toHaveLength(1);
    expect(d.proc.exitCode).toBeNull();
  });

  test("--interface lo: sockets bound to the interface under qemu-user, stamped by the reader thread's clock (said once), read", async () => {
    await compiledBinary();
    const d = await startDaemon({
      interfaceVersion: 5,
      command: [...EMULATE, ARM64_BINARY],
      ptpAddress: null,
      args: ["--interface", "lo"],
      readyTimeoutMs: 60_000,
    });
    cleanups.push(() => d.stop("SIGKILL"));
    expect(d.output()).toContain(`PTP on interface lo ports ${d.ports.event}/${d.ports.general} (Sync stamped by the reader thread's clock)`);
    const warnings = d.output().match(/kernel receive timestamps[^\n]*/g) ?? [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("stamping PTP messages with the clock of the reader thread instead");
    // No simulator can share the ports on this host (the daemon holds them on lo for every
    // address), so datagrams come from another port: the daemon reads and counts them, then
    // drops them by the port rule. Its counters say they came through the reader, on both ports.
    const sender = await Bun.udpSocket({ hostname: "127.0.0.1" });
    cleanups.push(() => sender.close());
    for (let i = 0; i < 3; i++) {
      sender.send(new Uint8Array(44), d.ports.event, "127.0.0.1");
      sender.send(new Uint8Array(44), d.ports.general, "127.0.0.1");
    }
    let datagrams = { event: 0, general: 0 };
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && datagrams.event + datagrams.general < 6) {
      const answer = (await askDaemon("127.0.0.1", d.ports.control, 5000)) as { stats?: { ptp: { datagrams: typeof datagrams } } };
      datagrams = answer.stats?.ptp.datagrams ?? datagrams;
      await Bun.sleep(200);
    }
    expect(datagrams).toEqual({ event: 3, general: 3 });
    expect(d.proc.exitCode).toBeNull();
  });
});
