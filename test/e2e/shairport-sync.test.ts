// Real Shairport Sync against dist/nqptp: 4.3.7, 5.2.1 and the 5.3 development line, built from
// the shared clients directory (test/support/shairport-sync.ts). Every other end-to-end test
// reads the region with our C reader, which is our understanding of the client; here the client
// itself says whether it found nqptp and accepted its interface.
//
// Each test runs in a private host (test/support/private-host.ts): mount and network namespaces
// of its own, so the daemon takes its default ports (319, 320, 9000) and names (/nqptp), as
// Shairport Sync expects them, with /dev/shm and /etc/hosts (Debian's: localhost is ::1 first)
// of its own, and a veth to a LAN peer (Shairport Sync needs an interface that is up; the peer
// runs a PTP master). Shairport Sync runs with -o dummy -m tinysvcmdns -vv.
//
// Root only, and only where the clients directory and the build's Debian packages are: it skips
// and says why otherwise. What each check saw is printed, so the CI log can be followed.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCProgram, buildCReader } from "../support/c.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { compiledBinary, ROOT } from "../support/daemon.ts";
import { privateHostUnavailable, startPrivateHost, type HostProcess, type PrivateHost } from "../support/private-host.ts";
import { masterProcessArgument, PTP_MASTER_PROCESS } from "../support/ptp-master-process.ts";
import {
  AIRPLAY2_STARTUP,
  buildShairportSync,
  FOUND_NQPTP,
  foundAfterMs,
  instanceArgv,
  instanceConfig,
  linesMatching,
  NQPTP_COMPLAINT,
  rtspPort,
  SHAIRPORT_SYNC_VERSIONS,
  shairportSyncUnavailable,
  type BuiltShairportSync,
  type InstanceSettings,
  type ShairportSyncVersion,
} from "../support/shairport-sync.ts";
import { offsetError, type ShmRecord } from "./support.ts";

// A cold build of one version takes about 20 s on 2 cores, three at once about a minute.
setDefaultTimeout(240_000);

const unavailable = privateHostUnavailable() ?? shairportSyncUnavailable();
const skipped = unavailable === null ? "" : ` (skipped: ${unavailable})`;
if (unavailable !== null) console.log(`test/e2e/shairport-sync.test.ts: skipped: ${unavailable}`);

const cleanups = cleanupAfterEach();

// Start every build at once: much of a build (autoreconf, configure) is single-threaded, so on 2
// cores three side by side finish well before three in a row. Each test awaits the one it needs,
// and a failed build fails the tests that need it (with the build's last lines).
if (unavailable === null) for (const version of SHAIRPORT_SYNC_VERSIONS) buildShairportSync(version).catch(() => {});

const MS = 1_000_000n;
const GRANDMASTER = 0x0aa0_00ff_fe00_0002n;
const OFFSET = 4_321_000_000_000n;
/** Shairport Sync 5.3 polls for its region every 50 ms after asking for it. */
const POLL_INTERVAL_MS = 50;

function say(who: string, text: string): void {
  console.log(`[${who}] ${text}`);
}

/** A daemon line without its syslog priority prefix and tag ("<6>[nqptp] "). */
const withoutPriority = (line: string) => line.replace(/^<\d>(\[\w+\] )?/, "");

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** The daemon's -vv line for a control message "<name> T" with its NUL, capturing the sender. */
const controlMessage = (name: string) => new RegExp(`control message from (\\S+) port \\d+: "${escapeRegExp(name)} T\\\\0"`);

/** `nqptp install --root DIR --shairport-sync <binary>`: the --interface-version on the staged unit's ExecStart=. */
async function interfaceInstallChooses(built: BuiltShairportSync): Promise<{ version: number; said: string; execStart: string }> {
  const binary = await compiledBinary();
  const stage = mkdtempSync(join(tmpdir(), "nqptp-sps-stage-"));
  cleanups.push(() => rmSync(stage, { recursive: true, force: true }));
  const proc = Bun.spawn([binary, "install", "--root", stage, "--shairport-sync", built.path], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`nqptp install --root ${stage} --shairport-sync ${built.path} exited ${code}:\n${stderr}${stdout}`);
  const unit = readFileSync(join(stage, "etc", "systemd", "system", "nqptp.service"), "utf8");
  const execStart = unit.split("\n").find((l) => l.startsWith("ExecStart=") && l.length > "ExecStart=".length) ?? "";
  const match = execStart.match(/--interface-version (\d+)/);
  if (!match) throw new Error(`the staged unit's ${JSON.stringify(execStart)} names no --interface-version`);
  return { version: Number(match[1]), said: linesMatching(stdout, /^interface:/)[0] ?? "", execStart };
}

/** A private host, stopped after the test; a failure inside carries every program's last lines. */
async function inPrivateHost(tag: string, body: (host: PrivateHost) => Promise<void>): Promise<void> {
  const host = await startPrivateHost(tag);
  cleanups.push(() => host.stop());
  try {
    await body(host);
  } catch (error) {
    const e = error as Error;
    e.message = `${e.message}\n\nwhat ran in the private host:\n${host.tails()}`;
    throw e;
  }
}

async function startNqptp(host: PrivateHost, args: string[]): Promise<HostProcess> {
  const daemon = host.spawn("nqptp", [await compiledBinary(), ...args, "-vv"]);
  await daemon.waitForOutput(/serving shared memory interface \d+/, 15_000);
  say("nqptp", withoutPriority(linesMatching(daemon.output(), /serving shared memory interface/)[0]!));
  return daemon;
}

function startInstance(host: PrivateHost, built: BuiltShairportSync, label: string, settings: InstanceSettings | string): HostProcess {
  const config = join(host.dir, `${label.replace(/\W+/g, "-")}.conf`);
  writeFileSync(config, typeof settings === "string" ? settings : instanceConfig(settings));
  return host.spawn(label, instanceArgv(built, config));
}

/** The fenced code block of README.md whose first line begins with `firstLine`. */
function readmeBlock(firstLine: string): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const match of readme.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)) {
    if (match[1]!.startsWith(firstLine)) return match[1]!;
  }
  throw new Error(`README.md has no code block beginning with ${JSON.stringify(firstLine)}`);
}

/** One general.* setting of a Shairport Sync configuration (libconfig text), or null. */
function setting(config: string, name: string): string | null {
  const match = config.match(new RegExp(`^\\s*${name}\\s*=\\s*("?)([^";]*)\\1\\s*;`, "m"));
  return match ? match[2]! : null;
}

const announced = new Set<ShairportSyncVersion>();

async function build(version: ShairportSyncVersion): Promise<BuiltShairportSync> {
  const built = await buildShairportSync(version);
  if (announced.has(version)) return built;
  announced.add(version);
  say(
    `shairport-sync ${version}`,
    `${built.built ? `built in ${(built.buildMs / 1000).toFixed(1)} s` : `cached (${(built.buildMs / 1000).toFixed(1)} s)`}: ${built.path}; -V: ${built.versionString}`,
  );
  return built;
}

/** The region as Shairport Sync 4.3+ reads it (main against secondary), read inside the host. */
async function readRegion(host: PrivateHost, name: string): Promise<ShmRecord> {
  const reader = await buildCReader();
  const result = await host.run([reader, name, "10"]);
  if (result.code !== 0) throw new Error(`shm-reader ${name} 10 exited ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as ShmRecord;
}

async function waitForRegion(
  host: PrivateHost,
  name: string,
  accept: (r: ShmRecord) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<ShmRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: ShmRecord | null = null;
  while (Date.now() < deadline) {
    last = await readRegion(host, name);
    if (accept(last)) return last;
    await Bun.sleep(100);
  }
  throw new Error(`${name} never held ${what} within ${timeoutMs} ms; last read ${JSON.stringify(last)}`);
}

/** One control message to the daemon from inside the host, from ::1 as Shairport Sync 5.x sends it. */
async function sendControl(host: PrivateHost, text: string): Promise<void> {
  const result = await host.run(["bash", "-c", 'printf "%s\\0" "$1" > /dev/udp/::1/9000', "send", text]);
  if (result.code !== 0) throw new Error(`sending ${JSON.stringify(text)} failed: ${result.stderr}`);
}

function expectNoComplaint(instance: HostProcess): void {
  const complaints = linesMatching(instance.output(), NQPTP_COMPLAINT);
  expect(complaints).toEqual([]);
}

function expectStillRunning(p: HostProcess): void {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) {
    throw new Error(`${p.label} exited (${p.proc.signalCode ?? p.proc.exitCode}) when it should be running`);
  }
}

/** SIGTERM; the daemon must exit 0 having logged no error (syslog priority 3 or worse). */
async function expectCleanDaemonExit(daemon: HostProcess): Promise<void> {
  const end = await daemon.stop("SIGTERM", 5000);
  expect(end).toEqual({ code: 0, signal: null });
  expect(linesMatching(daemon.output(), /^<[0-3]>/)).toEqual([]);
}

describe("each version comes up in AirPlay 2 mode against the interface nqptp install chooses for it", () => {
  for (const version of SHAIRPORT_SYNC_VERSIONS) {
    test.skipIf(unavailable !== null)(`${version}: finds nqptp with no complaint; its "/nqptp T" reaches the daemon from ::1${skipped}`, async () => {
      const who = `shairport-sync ${version}`;
      const built = await build(version);
      const chosen = await interfaceInstallChooses(built);
      say(who, `nqptp install: ${chosen.said}; staged unit: ${chosen.execStart}`);
      expect(chosen.version).toBe(10);

      await inPrivateHost(`sps-${version}`, async (host) => {
        const daemon = await startNqptp(host, ["--interface-version", String(chosen.version)]);
        const instance = startInstance(host, built, who, { name: "Living Room" });
        // 4.3 waits up to 10 s for the region before it gives up.
        await instance.waitForOutput(FOUND_NQPTP, 15_000);
        await instance.waitForOutput(AIRPLAY2_STARTUP, 5000);
        for (const line of linesMatching(
          instance.output(),
          /Send control message to NQPTP|NQPTP service|NQPTP is online|NQPTP came online|Startup in AirPlay 2 mode/,
        )) {
          say(who, line);
        }
        const message = await daemon.waitForOutput(controlMessage("/nqptp"), 5000);
        say("nqptp", message);
        expect(message.match(controlMessage("/nqptp"))![1]).toBe("::1");
        // Up a while later, with nothing to complain about.
        await Bun.sleep(1000);
        expectStillRunning(instance);
        expectNoComplaint(instance);
        expect(linesMatching(instance.output(), /fatal error/)).toEqual([]);

        await instance.stop("SIGTERM", 5000);
        expectStillRunning(daemon);
        await expectCleanDaemonExit(daemon);
      });
    });
  }

  test.skipIf(unavailable !== null)(
    `against a wrong interface (9 for a 5.2.1) it says so itself and exits; neither side crashes${skipped}`,
    async () => {
      const who = "shairport-sync 5.2.1";
      const built = await build("5.2.1");
      await inPrivateHost("sps-wrong", async (host) => {
        const daemon = await startNqptp(host, ["--interface-version", "9"]);
        const instance = startInstance(host, built, who, { name: "Living Room" });
        const end = await instance.exited(15_000);
        const fatal = linesMatching(instance.output(), /fatal error/);
        for (const line of linesMatching(instance.output(), /NQPTP service|get_nqptp_data|fatal error/)) say(who, line);
        // It found the region (version 9 keeps a mutex where 10 has its version), but not the
        // interface it reads: its own words for that, and an orderly exit, not a signal.
        expect(instance.output()).toMatch(FOUND_NQPTP);
        expect(fatal.join("\n")).toMatch(/does not seem to be initialised|too old for/);
        expect(end).toBe(1);
        expect(instance.proc.signalCode).toBeNull();
        say("nqptp", (await daemon.waitForOutput(controlMessage("/nqptp"), 5000)).trim());
        expectStillRunning(daemon);
        await expectCleanDaemonExit(daemon);
      });
    },
  );
});

describe("5.3-dev: two instances on one host, the second with its own region", () => {
  test.skipIf(unavailable !== null)(
    `both find their regions on their first start, the named one within the 50 ms poll; a restart leaves /nqptp's record as it was; a third beyond --max-clients 2 is refused${skipped}`,
    async () => {
      const built = await build("5.3-dev");
      const chosen = await interfaceInstallChooses(built);
      say("shairport-sync 5.3-dev", `nqptp install: ${chosen.said}`);
      expect(chosen.version).toBe(10);
      const watcherBinary = await buildCProgram("region-watch");

      await inPrivateHost("sps-rooms", async (host) => {
        const master = host.spawnOnPeer("ptp master", [
          process.execPath,
          PTP_MASTER_PROCESS,
          masterProcessArgument({
            address: host.peerAddress,
            target: host.address,
            eventPort: 319,
            generalPort: 320,
            clockIdentity: String(0x0aa0_00ff_fe00_0001n),
            grandmasterIdentity: String(GRANDMASTER),
            offsetNs: String(OFFSET),
            clock: "monotonic-raw",
          }),
        ]);
        await master.waitForOutput(/^ready$/m, 10_000);
        const daemon = await startNqptp(host, ["--interface-version", String(chosen.version), "--max-clients", "2"]);
        // Times the kitchen's first message on loopback and its region's appearance, and opens
        // the region at once as a client would (test/c/region-watch.c).
        const watch = host.spawn("region-watch", [watcherBinary, "9000", "0", "60000", "/nqptp-kitchen"]);
        await watch.waitForOutput(/^ready$/m, 5000);

        // The living room: the default region, /nqptp.
        const living = startInstance(host, built, "living room", { name: "Living Room" });
        await living.waitForOutput(FOUND_NQPTP, 5000);
        say("living room", linesMatching(living.output(), FOUND_NQPTP)[0]!);
        // What its AirPlay session would send, sent here (no AirPlay sender in the suite): follow
        // the master on the LAN, play.
        await sendControl(host, `/nqptp T ${host.peerAddress}`);
        await sendControl(host, "/nqptp B");
        const following = await waitForRegion(host, "/nqptp", (r) => BigInt(r.clock_id) === GRANDMASTER, "the LAN master's clock");
        expect(offsetError(following.offset, OFFSET)).toBeLessThan(50n * MS);
        say("living room", `/nqptp follows ${host.peerAddress}: clock ${following.clock_id}, start time ${following.start_time}`);

        // The kitchen: its own region, named in its configuration (the README's recipe), on its
        // first start.
        const kitchenConfig = readmeBlock("// /etc/shairport-sync-kitchen.conf");
        expect(setting(kitchenConfig, "nqptp_shared_memory_interface_name")).toBe("/nqptp-kitchen");
        const kitchenPortSetting = Number(setting(kitchenConfig, "port"));
        expect(kitchenPortSetting).toBeGreaterThan(0);
        const kitchen = startInstance(host, built, "kitchen", kitchenConfig);
        await kitchen.waitForOutput(FOUND_NQPTP, 5000);
        expectNoComplaint(kitchen);
        for (const line of linesMatching(kitchen.output(), /Send control message to NQPTP|NQPTP service/)) say("kitchen", line);
        say("nqptp", (await daemon.waitForOutput(/new client \/nqptp-kitchen: created \S+ \(2 of at most 2\)/, 2000)).trim());

        // The region appeared within the poll interval of its first message: measured from the
        // datagram reaching loopback to the name appearing in /dev/shm, and opened complete.
        expect(await watch.exited(5000)).toBe(0);
        const message = watch.output().match(/^message \/nqptp-kitchen (\d+)$/m);
        const region = watch.output().match(/^region \/nqptp-kitchen (\d+) size=(\d+) version=(-?\d+)$/m);
        expect(message).not.toBeNull();
        expect(region).not.toBeNull();
        const latencyMs = Number(BigInt(region![1]!) - BigInt(message![1]!)) / 1e6;
        say(
          "kitchen",
          `/dev/shm/nqptp-kitchen appeared ${latencyMs.toFixed(3)} ms after its first message reached loopback, ` +
            `holding ${region![2]} bytes and version ${region![3]} when first opened; Shairport Sync found it ` +
            `${foundAfterMs(kitchen.output(), "/nqptp-kitchen")?.toFixed(1) ?? "?"} ms after sending (it looks at once, then every ${POLL_INTERVAL_MS} ms)`,
        );
        expect(latencyMs).toBeGreaterThanOrEqual(0);
        expect(latencyMs).toBeLessThan(POLL_INTERVAL_MS);
        expect(region![2]).toBe("72");
        expect(region![3]).toBe("10");

        // This snapshot, like 5.x releases, listens on 7000 in AirPlay 2 mode whatever general.port
        // says (upstream's #2277 honours it): then a second instance on one host cannot take its
        // RTSP port and exits after finding its region. A build that honours it keeps running.
        const honoursPort = await kitchenPort(kitchen, kitchenPortSetting);

        const status = await host.run([await compiledBinary(), "status"]);
        for (const line of status.stdout.trimEnd().split("\n")) say("nqptp status", line);
        expect(status.code).toBe(0);
        expect(status.stdout).toMatch(/^\/nqptp +192\.0\.2\.2 +active/m);
        expect(status.stdout).toMatch(/^\/nqptp-kitchen +- +idle/m);

        // Stopping and restarting the kitchen: its "/nqptp-kitchen T" must not touch /nqptp.
        const before = await readRegion(host, "/nqptp");
        if (honoursPort) await kitchen.stop("SIGTERM", 5000);
        const again = startInstance(host, built, "kitchen, restarted", kitchenConfig);
        await again.waitForOutput(FOUND_NQPTP, 5000);
        expectNoComplaint(again);
        say("kitchen, restarted", linesMatching(again.output(), FOUND_NQPTP)[0]!);
        await kitchenPort(again, kitchenPortSetting);
        await daemon.waitForOutput(
          /control message from \S+ port \d+: "\/nqptp-kitchen T\\0"[\s\S]*control message from \S+ port \d+: "\/nqptp-kitchen T\\0"/,
          2000,
        );
        const after = await waitForRegion(
          host,
          "/nqptp",
          (r) => BigInt(r.local_time) > BigInt(before.local_time) + 300n * MS,
          "a record newer than before the restart",
        );
        say("living room", `/nqptp before the kitchen's restart: clock ${before.clock_id}, start ${before.start_time}, offset ${before.offset}`);
        say("living room", `/nqptp after it:                     clock ${after.clock_id}, start ${after.start_time}, offset ${after.offset}`);
        expect(after.clock_id).toBe(before.clock_id);
        expect(after.start_time).toBe(before.start_time);
        expect(offsetError(after.offset, BigInt(before.offset))).toBeLessThan(1n * MS);

        // A third instance, beyond --max-clients 2: the daemon refuses its region and says which
        // option to raise; Shairport Sync gives up after its 2 s of polling.
        const office = startInstance(host, built, "office", {
          name: "Office",
          port: 7002,
          udpPortBase: 6201,
          airplayDeviceIdOffset: 2,
          interfaceName: "/nqptp-office",
        });
        const officeEnd = await office.exited(10_000);
        const refused = await daemon.waitForOutput(/refused client \/nqptp-office: 2 clients are served already \(--max-clients 2[^\n]*/, 1000);
        say("nqptp", withoutPriority(refused.trim()));
        const officeFatal = linesMatching(office.output(), /fatal error/);
        for (const line of linesMatching(office.output(), /NQPTP service not found|fatal error/)) say("office", line);
        expect(officeFatal.join("\n")).toMatch(/The NQPTP service can not be found/);
        expect(officeEnd).toBe(1);
        expect(office.proc.signalCode).toBeNull();

        expectStillRunning(living);
        await living.stop("SIGTERM", 5000);
        await expectCleanDaemonExit(daemon);
      });
    },
  );
});

const noSystemdAnalyze = Bun.which("systemd-analyze") === null ? "systemd-analyze (Debian package systemd) is not installed" : null;

describe("the README's recipe for several rooms", () => {
  test.skipIf(noSystemdAnalyze !== null)(
    `its shairport-sync@.service passes systemd-analyze verify, requires nqptp.service and starts after it${noSystemdAnalyze ? ` (skipped: ${noSystemdAnalyze})` : ""}`,
    async () => {
      const unit = readmeBlock("# /etc/systemd/system/shairport-sync@.service");
      // A root with systemd's own units, nqptp's unit, this template and a room of it; any
      // executable stands in for the two programs (verify checks that ExecStart= can be run).
      const root = mkdtempSync(join(tmpdir(), "nqptp-recipe-"));
      cleanups.push(() => rmSync(root, { recursive: true, force: true }));
      const units = join(root, "etc", "systemd", "system");
      mkdirSync(units, { recursive: true });
      mkdirSync(join(root, "usr", "local", "bin"), { recursive: true });
      cpSync(realpathSync("/lib/systemd/system"), join(root, "usr", "lib", "systemd", "system"), { recursive: true, verbatimSymlinks: true });
      for (const program of ["shairport-sync", "nqptp"]) {
        copyFileSync(realpathSync("/bin/true"), join(root, "usr", "local", "bin", program));
        chmodSync(join(root, "usr", "local", "bin", program), 0o755);
      }
      copyFileSync(join(ROOT, "nqptp.service"), join(units, "nqptp.service"));
      writeFileSync(join(units, "shairport-sync@.service"), unit);
      symlinkSync("shairport-sync@.service", join(units, "shairport-sync@kitchen.service"));
      const proc = Bun.spawn(["systemd-analyze", "verify", `--root=${root}`, "/etc/systemd/system/shairport-sync@kitchen.service"], {
        stdout: "pipe",
        stderr: "pipe",
        timeout: 30_000,
      });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      say(
        "systemd-analyze verify",
        `shairport-sync@kitchen.service: exit ${code}${`${stdout}${stderr}`.trim() ? `: ${stdout}${stderr}` : ", nothing to say"}`,
      );
      expect(`${stdout}${stderr}`.trim()).toBe("");
      expect(code).toBe(0);
      const directive = (name: string) =>
        unit
          .split("\n")
          .filter((l) => l.startsWith(`${name}=`))
          .flatMap((l) => l.slice(name.length + 1).split(/\s+/));
      expect(directive("Requires")).toContain("nqptp.service");
      expect(directive("After")).toContain("nqptp.service");
      expect(directive("ExecStart").join(" ")).toContain("-c /etc/shairport-sync-%i.conf");
    },
  );
});

/**
 * Whether an instance took the RTSP port its configuration gives it. If it did, it must still be
 * running a second later; if it was given 7000 regardless (no upstream #2277), it must exit with
 * Shairport Sync's own message that the port is taken, and nothing else.
 */
async function kitchenPort(instance: HostProcess, configured: number): Promise<boolean> {
  await instance.waitForOutput(/rtsp listening port is \d+\./, 5000);
  const port = rtspPort(instance.output());
  if (port === configured) {
    await Bun.sleep(1000);
    expectStillRunning(instance);
    say(instance.label, `listens on its own RTSP port ${port}`);
    return true;
  }
  expect(port).toBe(7000);
  const end = await instance.exited(10_000);
  const fatal = linesMatching(instance.output(), /fatal error/);
  say(
    instance.label,
    `this build listens on 7000 whatever general.port says (upstream's #2277 fixes that), so with the living room on 7000 it exits: ${fatal[0] ?? "(no fatal line)"}`,
  );
  expect(fatal[0] ?? "").toMatch(/could not establish a service on port 7000/);
  expect(end).not.toBe(0);
  expect(instance.proc.signalCode).toBeNull();
  return false;
}
