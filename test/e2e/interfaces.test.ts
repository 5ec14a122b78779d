// Shairport Sync 4.1 → 5.x from the same binary: interfaces 8, 9 and 10, end to end, read the way
// each client reads them (8/9 with the mutex, 10 by copying the region twice).

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { monotonicRawNs } from "../../src/time/clocks.ts";
import { compiledBinary, startDaemon, type RunningDaemon } from "../support/daemon.ts";
import { startPtpMaster, type PtpMaster } from "../support/ptp-master.ts";
import { offsetError, readShm, sendControl, waitForShm, type ShmRecord } from "./support.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

setDefaultTimeout(60_000);

const MS = 1_000_000n;
const CLOCK_ID = 0x0aa0_00ff_fe00_0001n;
const GRANDMASTER = 0x0bb0_00ff_fe00_0002n;
const cleanups = cleanupAfterEach();

async function setup(version: number, masterOptions: Partial<Parameters<typeof startPtpMaster>[0]> = {}) {
  const d = await startDaemon({ interfaceVersion: version });
  cleanups.push(() => d.stop("SIGKILL"));
  const m = await startPtpMaster({
    address: "127.0.0.2",
    target: "127.0.0.1",
    eventPort: d.ports.event,
    generalPort: d.ports.general,
    clockIdentity: CLOCK_ID,
    grandmasterIdentity: GRANDMASTER,
    offsetNs: 4_321_000_000_000n,
    clock: monotonicRawNs,
    ...masterOptions,
  });
  cleanups.push(() => m.stop());
  return { d, m };
}

const isZero = (r: ShmRecord) => BigInt(r.clock_id) === 0n;
/** Shairport Sync's messages end with the C string's NUL. */
const say = (d: RunningDaemon, text: string, address?: string) => sendControl(`${text}\0`, d.ports.control, address);

function expectPublished(record: ShmRecord, version: number, m: PtpMaster) {
  expect(record.version).toBe(version);
  // Shairport Sync compares this with the sender's timeline id: the grandmaster, not the port's clock.
  expect(BigInt(record.clock_id)).toBe(GRANDMASTER);
  expect(offsetError(record.offset, m.options.offsetNs)).toBeLessThan(50n * MS);
  expect(BigInt(record.local_time) - monotonicRawNs()).toBeLessThan(1000n * MS);
  expect(BigInt(record.start_time)).toBeLessThanOrEqual(BigInt(record.local_time));
  if (version === 10) expect(record.ip).toBeUndefined();
  else expect(record.ip).toBe("127.0.0.2");
}

describe.each([8, 9, 10])("interface %d", (version) => {
  test("-V names it as nqptp 1.2 does (smiN)", async () => {
    const proc = Bun.spawn([await compiledBinary(), "-V", `--interface-version=${version}`], { stdout: "pipe" });
    expect(await new Response(proc.stdout).text()).toMatch(new RegExp(`^Version: .+\\. Shared Memory Interface Version: smi${version}\\.\\n$`));
    expect(await proc.exited).toBe(0);
  });

  test("T (and B from 9 on) publishes the followed clock; T alone zeros it", async () => {
    const { d, m } = await setup(version);
    await say(d, `${d.shmName} T 127.0.0.2`);
    if (version >= 9) await say(d, `${d.shmName} B`);
    const record = await waitForShm(d.shmName, version, (r) => !isZero(r));
    expectPublished(record, version, m);
    await say(d, `${d.shmName} T`);
    await waitForShm(d.shmName, version, isZero, 3000);
    await d.waitForOutput(/timing stopped/);
  });
});

describe("interface 10 play state", () => {
  test("T without B is published for 5 s, then zeros", async () => {
    const { d, m } = await setup(10);
    await say(d, `${d.shmName} T 127.0.0.2`);
    const sentAt = Date.now();
    expectPublished(await waitForShm(d.shmName, 10, (r) => !isZero(r)), 10, m);
    await waitForShm(d.shmName, 10, isZero, 8000);
    const zeroAfterMs = Date.now() - sentAt;
    expect(zeroAfterMs).toBeGreaterThan(4800);
    expect(zeroAfterMs).toBeLessThan(7500);
  });

  test("E then B more than 2.25 s later restarts smoothing; B sooner does not", async () => {
    const { d } = await setup(10);
    await say(d, `${d.shmName} T 127.0.0.2`);
    await say(d, `${d.shmName} B`);
    await waitForShm(d.shmName, 10, (r) => !isZero(r));
    await say(d, `${d.shmName} E`);
    await d.waitForOutput(/play ended: clock valid for 2\.25 s more/);
    await Bun.sleep(500);
    await say(d, `${d.shmName} B`);
    await d.waitForOutput(/play began: clock active\n/);
    await say(d, `${d.shmName} E`);
    // Valid for 2.25 s after E, but never less than 5 s after T: zeros come within 5 s.
    await waitForShm(d.shmName, 10, isZero, 6000);
    await say(d, `${d.shmName} B`);
    await d.waitForOutput(/play began: clock active \(smoothing restarted\)/);
    const record = await waitForShm(d.shmName, 10, (r) => !isZero(r));
    // A new smoothing sequence: mastership starts after the restart.
    expect(BigInt(record.start_time)).toBeGreaterThan(monotonicRawNs() - 2000n * MS);
  });

  test("B with arguments, garbage and P are ignored; the daemon goes on", async () => {
    const { d, m } = await setup(10);
    await say(d, `${d.shmName} T 127.0.0.2`);
    await say(d, `${d.shmName} B 127.0.0.2`);
    await d.waitForOutput(/takes no arguments/);
    await sendControl("\u00ff\u00fe garbage", d.ports.control);
    await say(d, `${d.shmName} P`);
    await say(d, `${d.shmName} B`);
    expectPublished(await waitForShm(d.shmName, 10, (r) => !isZero(r)), 10, m);
    expect(d.proc.exitCode).toBeNull();
  });

  test("messages sent to 0.0.0.0, 127.0.0.1 and ::1 all arrive (every Shairport Sync line)", async () => {
    const { d } = await setup(10);
    await say(d, `${d.shmName} T 127.0.0.2`, "0.0.0.0");
    await say(d, `${d.shmName} B`, "::1");
    await waitForShm(d.shmName, 10, (r) => !isZero(r));
    await say(d, `${d.shmName} T`, "127.0.0.1");
    await waitForShm(d.shmName, 10, isZero, 3000);
  });
});

describe("a wrong --interface-version is obvious", () => {
  test("interface 5 told '/nqptp T' (Shairport Sync 4.1+) warns once, naming the versions", async () => {
    const d = await startDaemon({ interfaceVersion: 5 });
    cleanups.push(() => d.stop("SIGKILL"));
    for (let i = 0; i < 3; i++) await sendControl("/nqptp T\0", d.ports.control);
    await d.waitForOutput(/--interface-version/);
    await Bun.sleep(100);
    const warnings = d.output().match(/Choose --interface-version/g) ?? [];
    expect(warnings).toHaveLength(1);
    expect(d.output()).toContain("smi10 → 10");
    expect(d.output()).toContain("4.1.x shows no smi tag and needs 8");
  });

  test("interface 10 told 'T ip' (Shairport Sync 4.0 and earlier) gets the reverse hint", async () => {
    const d = await startDaemon({ interfaceVersion: 10 });
    cleanups.push(() => d.stop("SIGKILL"));
    await sendControl("T 127.0.0.2\0", d.ports.control);
    await d.waitForOutput(/4\.0 and earlier send, but this nqptp serves shared memory interface 10/);
  });

  test("the region a version-10 client reads starts with the version number", async () => {
    const d = await startDaemon({ interfaceVersion: 10 });
    cleanups.push(() => d.stop("SIGKILL"));
    expect((await readShm(d.shmName, 10)).version).toBe(10);
    const u16At0 = (name: string) => new DataView(readFileSync(`/dev/shm${name}`).buffer).getUint16(0, true);
    expect(u16At0(d.shmName)).toBe(10);
    // Shairport Sync 4.3+ reads the version at offset 0; in a version-5 region that is the mutex,
    // so it finds 0 and reports the region "does not seem to be initialised" (README: troubleshooting).
    const five = await startDaemon({ interfaceVersion: 5 });
    cleanups.push(() => five.stop("SIGKILL"));
    expect(u16At0(five.shmName)).not.toBe(10);
  });
});
