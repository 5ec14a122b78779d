// --interface, end to end, in network namespaces: dist/nqptp in the lab's slave namespace
// (test/net/netns-lab.ts) with real ptp4l masters on veth links of their own.
// - A master on an interface that is not named is never heard, even when it is the better
//   clock and in the timing peer list; without --interface the same daemon follows it.
// - The named interfaces are heard over multicast with kernel receive stamps (no fallback line),
//   within 1 ms of the true offset; a silent clock on one of them is woken from its general port.
// - A veth made after the start is picked up within a few seconds, and again when it is deleted
//   and made anew (a new index under the same name); `nqptp status` says which are served.
// Skips, saying why, when not root, without `ip netns`, or without ptp4l (CI installs it).

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { compiledBinary } from "../support/daemon.ts";
import { BUN, PtpLab, findPtp4l, labUnavailableReason, type LabPeer, type LabProcess, ROOT } from "../net/netns-lab.ts";
import { offsetError, waitForShm, type ShmRecord } from "./support.ts";

setDefaultTimeout(90_000);

const MS = 1_000_000n;

const labReason = labUnavailableReason();
const ptp4lFound = labReason === null ? findPtp4l() : null;
const skipReason = labReason ?? (ptp4lFound && "reason" in ptp4lFound ? ptp4lFound.reason : null);
const ptp4l = () => (ptp4lFound as { path: string }).path;

let lab: PtpLab | null = null;
afterAll(async () => {
  await lab?.cleanup();
});
function theLab(): PtpLab {
  lab ??= PtpLab.create();
  return lab;
}

let shmCounter = 0;
const uniqueName = () => `/nqptp-netif-${process.pid}-${++shmCounter}`;
const isZero = (r: ShmRecord) => BigInt(r.clock_id) === 0n;

async function stop(daemon: LabProcess): Promise<void> {
  daemon.proc.kill("SIGTERM");
  await daemon.proc.exited;
}

/** `nqptp status` inside the slave namespace. */
async function statusInSlave(shmName: string, extra: string[] = []): Promise<string> {
  const status = theLab().spawn(theLab().slaveNs, [await compiledBinary(), "status", "--shm-name", shmName, ...extra]);
  await status.proc.exited;
  return status.output();
}

/** The PTP master simulator, silent (Announces only), in a peer's namespace; says each Announce it receives. */
function silentClock(peer: LabPeer): LabProcess {
  const script =
    `import { startPtpMaster } from ${JSON.stringify(join(ROOT, "test/support/ptp-master.ts"))};` +
    `import { realtimeNs } from ${JSON.stringify(join(ROOT, "src/time/clocks.ts"))};` +
    `const m = await startPtpMaster({ address: ${JSON.stringify(peer.address)}, target: ${JSON.stringify(peer.slaveAddress)}, ` +
    "eventPort: 319, generalPort: 320, clockIdentity: 0x0055aaffff000001n, offsetNs: 0n, clock: realtimeNs, silent: true, grandmasterPriority1: 100 });" +
    `console.log("master running"); let seen = 0;` +
    "setInterval(() => { for (; seen < m.received.length; seen++) { const r = m.received[seen];" +
    ' console.log("announce from port " + r.fromPort + ", priority1 " + r.announce.grandmasterPriority1); } }, 20);';
  return theLab().spawn(peer.ns, [BUN, "-e", script]);
}

/** The clock identity ptp4l takes on a link: the EUI-64 of its MAC (FF FE in the middle), as the region holds it. */
function ptp4lIdentity(peer: LabPeer): string {
  const shown = Bun.spawnSync(["ip", "-n", peer.ns, "-o", "link", "show", "dev", peer.link]).stdout.toString();
  const mac = /link\/ether ([0-9a-f:]{17})/.exec(shown)?.[1]?.split(":");
  if (!mac) throw new Error(`no MAC for ${peer.link} in ${peer.ns}: ${shown}`);
  return `0x${[...mac.slice(0, 3), "ff", "fe", ...mac.slice(3)].join("")}`;
}

describe.skipIf(skipReason !== null)("--interface in network namespaces", () => {
  test("a master on an interface not named is never followed; the named ones are heard, stamped by the kernel, and answered there", async () => {
    const l = theLab();
    const binary = await compiledBinary();
    await l.startPtp4l(ptp4l());
    const other = l.addPeer("ptpx0", 81);
    const silent = l.addPeer("ptps0", 82);
    // The better clock (priority1 0 against 1), on the interface that is not named.
    await l.startPtp4l(ptp4l(), { peer: other, priority1: 0 });
    const clock = silentClock(silent);
    await clock.waitFor(/master running/);
    const peers = `T ${other.address} ${silent.address} ${l.masterAddress}\0`;

    // Without --interface the better clock wins: the test can tell the two apart.
    const everyName = uniqueName();
    const everywhere = await l.startDaemon(binary, ["--interface-version=5", `--shm-name=${everyName}`, "-v"]);
    l.sendControl(peers);
    const followed = await waitForShm(everyName, 5, (r) => r.ip === other.address, 15_000);
    expect(followed.ip).toBe(other.address);
    await stop(everywhere);

    const shmName = uniqueName();
    const daemon = await l.startDaemon(binary, ["--interface-version=5", `--shm-name=${shmName}`, "-i", "ptp0", "--interface", silent.link, "-vv"]);
    expect(daemon.output()).toContain(`PTP on interfaces ptp0, ${silent.link} ports 319/320 (Sync stamped by the kernel)`);
    l.sendControl(peers);
    const record = await waitForShm(shmName, 5, (r) => !isZero(r), 15_000);
    expect(record.ip).toBe(l.masterAddress);
    // ptp4l sends this machine's CLOCK_REALTIME, interface 5's clock: the true offset is 0.
    expect(offsetError(record.offset, 0n)).toBeLessThan(1n * MS);
    // The silent clock, heard on the second named interface, is woken from there.
    await clock.waitFor(/announce from port 320, priority1 99/, 10_000);
    // Seconds on, the better clock has still never been heard.
    await Bun.sleep(2000);
    expect((await waitForShm(shmName, 5, () => true)).ip).toBe(l.masterAddress);
    const clocks = JSON.parse(await statusInSlave(shmName, ["--clocks", "--json"])) as {
      ptpInterfaces: { name: string; state: string }[];
      clocks: { ip: string; lastHeardAgoNs: string | null; clockId: string | null }[];
    };
    expect(clocks.ptpInterfaces.map((i) => `${i.name} ${i.state}`)).toEqual(["ptp0 served", `${silent.link} served`]);
    expect(clocks.clocks.find((c) => c.ip === other.address)).toMatchObject({ lastHeardAgoNs: null, clockId: null });
    expect(clocks.clocks.find((c) => c.ip === l.masterAddress)?.clockId).not.toBeNull();
    // Kernel receive stamps throughout: no fallback was announced.
    expect(daemon.output()).not.toContain("kernel receive timestamps");
    await stop(daemon);
  });

  test("a veth made after the start is picked up within seconds; deleted and made again, it is picked up again", async () => {
    const l = theLab();
    const binary = await compiledBinary();
    const shmName = uniqueName();
    const late = "ptpl0";
    const daemon = await l.startDaemon(binary, ["--interface-version=10", `--shm-name=${shmName}`, "-i", late, "-v"]);
    expect(daemon.output()).toContain(`interface ${late} does not exist: waiting for it`);
    expect(daemon.output()).toContain(`PTP on no interface yet (waiting for ${late}) ports 319/320`);
    expect(await statusInSlave(shmName)).toContain(`PTP on:       ${late} (waiting: the kernel does not list it)`);

    const madeAt = performance.now();
    const peer = l.addPeer(late, 83);
    await daemon.waitFor(new RegExp(`interface ${late} appeared: PTP is heard there now`), 6000);
    const pickedUpMs = performance.now() - madeAt;
    let master = await l.startPtp4l(ptp4l(), { peer });
    l.sendControl(`${shmName} T ${peer.address}\0`);
    l.sendControl(`${shmName} B\0`);
    const first = await waitForShm(shmName, 10, (r) => !isZero(r), 15_000);
    expect(first.clock_id).toBe(ptp4lIdentity(peer));
    expect(await statusInSlave(shmName)).toContain(`PTP on:       ${late}\n`);

    master.proc.kill("SIGTERM");
    await master.proc.exited;
    l.unlink(peer);
    await daemon.waitFor(new RegExp(`interface ${late} went away: PTP is not heard there until it comes back`), 6000);
    const remadeAt = performance.now();
    l.relink(peer);
    const appeared = new RegExp(`interface ${late} appeared[^]*interface ${late} appeared`);
    await daemon.waitFor(appeared, 6000);
    const pickedUpAgainMs = performance.now() - remadeAt;
    master = await l.startPtp4l(ptp4l(), { peer });
    const again = await waitForShm(shmName, 10, (r) => !isZero(r) && BigInt(r.local_time) > BigInt(first.local_time) + 1000n * MS, 15_000);
    // A veth made again has a new MAC, so ptp4l has a new identity: the one now published.
    expect(again.clock_id).toBe(ptp4lIdentity(peer));
    console.log(
      `--interface: a new veth was heard ${pickedUpMs.toFixed(0)} ms after it was made, ${pickedUpAgainMs.toFixed(0)} ms after it was made again`,
    );
    expect(daemon.output()).not.toContain("kernel receive timestamps");
    master.proc.kill("SIGTERM");
    await stop(daemon);
  });
});

test("a bad interface name exits 64 with the reason", async () => {
  const proc = Bun.spawn([await compiledBinary(), "--interface", "eth0:1"], { stdout: "pipe", stderr: "pipe" });
  expect(await proc.exited).toBe(64);
  expect(await new Response(proc.stderr).text()).toBe(
    'nqptp: --interface: "eth0:1" holds ":", which an interface name cannot hold\nTry "nqptp --help".\n',
  );
});

if (skipReason !== null) {
  describe("--interface in network namespaces", () => {
    test.skip(`(skipped: ${skipReason})`, () => {});
  });
}
