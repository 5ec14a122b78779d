// nqptp.service: its hardening scores well with systemd's own judge, and cannot break the daemon.
//
// - `systemd-analyze security --offline=true` must rate the unit's exposure at 2.0 or better.
// - `systemd-analyze verify` must accept it (ExecStart pointed at dist/nqptp, since the unit names
//   the installed path).
// - What the unit forbids must leave the daemon working: no MemoryDenyWriteExecute (Bun's JIT),
//   /dev/shm shared (no PrivateDevices/PrivateIPC), the address families it uses. And the
//   system call filter, for real: a small C loader installs the same seccomp policy systemd would
//   (@default + @system-service minus the excluded groups, EPERM for the rest, native
//   architecture only, RestrictAddressFamilies on socket()) and runs dist/nqptp under it, which
//   must start, publish a master, and exit cleanly on SIGTERM.
// Skipped, with the reason in the title, where systemd-analyze or a C compiler is missing.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monotonicRawNs, realtimeNs } from "../src/time/clocks.ts";
import { compiledBinary, randomPorts, ROOT, uniqueShmName } from "./support/daemon.ts";
import { startPtpMaster } from "./support/ptp-master.ts";
import { sendControl, waitForShm } from "./e2e/support.ts";
import { cleanupAfterEach } from "./support/cleanups.ts";

setDefaultTimeout(60_000);

const UNIT_PATH = join(ROOT, "nqptp.service");
const ANALYZE = Bun.which("systemd-analyze");
const CC = Bun.which("cc") ?? Bun.which("gcc");
const noAnalyze = (t: string) => (ANALYZE ? t : `${t} (skipped: systemd-analyze not installed; Debian package "systemd")`);
const MASTER_ID = 0x00aa_bbff_fecc_dd01n;

const cleanups = cleanupAfterEach();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nqptp-service-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755); // the sandboxed run below executes from here as user 65534
  return dir;
}

/** Every value of `key=` in the [Service] section, in order. */
function settings(unit: string, key: string): string[] {
  return unit
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1).trim());
}

const unit = readFileSync(UNIT_PATH, "utf8");

describe("nqptp.service", () => {
  test.skipIf(!ANALYZE)(noAnalyze("systemd-analyze security rates its exposure 2.0 or better"), () => {
    const dir = tempDir();
    writeFileSync(join(dir, "nqptp.service"), unit);
    const result = Bun.spawnSync([ANALYZE!, "security", "--offline=true", "--no-pager", "nqptp.service"], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = result.stdout.toString() + result.stderr.toString();
    const match = out.match(/Overall exposure level for nqptp\.service:\s*([0-9.]+)/);
    expect(match).not.toBeNull();
    const score = Number(match![1]);
    console.log(`systemd-analyze security: exposure ${score}`);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  test.skipIf(!ANALYZE)(noAnalyze("systemd-analyze verify accepts it"), async () => {
    const dir = tempDir();
    const binary = await compiledBinary();
    writeFileSync(join(dir, "nqptp.service"), unit.replace(/^ExecStart=\S+/m, `ExecStart=${binary}`));
    const result = Bun.spawnSync([ANALYZE!, "verify", join(dir, "nqptp.service")], { stdout: "pipe", stderr: "pipe" });
    expect(result.stdout.toString() + result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });

  test("its hardening leaves the daemon what it needs", () => {
    // Bun's JIT writes and then executes memory; the v10 barrier page is made executable.
    expect(settings(unit, "MemoryDenyWriteExecute").every((v) => v === "no")).toBe(true);
    // Shairport Sync must see the region in the same /dev/shm.
    for (const key of ["PrivateDevices", "PrivateIPC"]) expect(settings(unit, key).every((v) => v === "no")).toBe(true);
    expect(settings(unit, "ProtectSystem")).toEqual(["strict"]); // /dev stays writable under strict
    // UDP (both families), os.networkInterfaces() (netlink), sd_notify (a Unix socket).
    const families = settings(unit, "RestrictAddressFamilies").join(" ").split(/\s+/);
    for (const family of ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]) expect(families).toContain(family);
    // The ports below 1024, and nothing else.
    expect(settings(unit, "AmbientCapabilities")).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(settings(unit, "CapabilityBoundingSet")).toEqual(["CAP_NET_BIND_SERVICE"]);
    // Restarting cannot fix a usage error (64) or missing permission (77).
    expect(settings(unit, "RestartPreventExitStatus").join(" ").split(/\s+/)).toEqual(expect.arrayContaining(["64", "77"]));
  });
});

// ---------------------------------------------------------------------------------------------
// The system call filter, applied for real

/** `systemd-analyze syscall-filter` output → group → its entries (names and @groups). */
function parseGroups(text: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const raw of text.split("\n")) {
    if (raw.startsWith("@")) {
      current = [];
      groups.set(raw.trim(), current);
    } else if (current && /^\s+[@a-z0-9_-]+\s*$/.test(raw)) {
      current.push(raw.trim());
    }
  }
  return groups;
}

function expand(groups: Map<string, string[]>, entry: string, out = new Set<string>()): Set<string> {
  if (!entry.startsWith("@")) {
    out.add(entry);
    return out;
  }
  const members = groups.get(entry);
  if (!members) throw new Error(`unknown system call group ${entry}`);
  for (const member of members) expand(groups, member, out);
  return out;
}

/** The allowed system calls, as systemd builds them from the unit's SystemCallFilter= lines. */
export function allowedSyscalls(unitText: string, groups: Map<string, string[]>): Set<string> {
  const allowed = new Set<string>();
  let first = true;
  for (const value of settings(unitText, "SystemCallFilter")) {
    const deny = value.startsWith("~");
    const entries = value.replace(/^~/, "").split(/\s+/).filter(Boolean);
    if (first && !deny) for (const name of expand(groups, "@default")) allowed.add(name); // an allow-list always keeps @default
    if (first && deny) throw new Error("this helper handles an allow-list first, as nqptp.service has");
    first = false;
    for (const entry of entries) for (const name of expand(groups, entry)) deny ? allowed.delete(name) : allowed.add(name);
  }
  return allowed;
}

const FAMILY_NUMBERS: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16, AF_PACKET: 17 };

function loaderSource(syscalls: Set<string>, families: number[]): string {
  const list = [...syscalls]
    .sort()
    .map((name) => `#ifdef __NR_${name}\n  __NR_${name},\n#endif`)
    .join("\n");
  return `/* seccomp-exec: runs a program under nqptp.service's system call filter (generated by test/service.test.ts). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#define NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE AUDIT_ARCH_AARCH64
#else
#error "unsupported architecture"
#endif
static const long allowed[] = {
${list}
  -1};
static const unsigned families[] = {${families.join(", ")}};
static struct sock_filter f[4096];
int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: seccomp-exec program [args...]\\n"); return 2; }
  int n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1); /* x32 */
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#endif
  /* RestrictAddressFamilies=: socket() with another family fails with EAFNOSUPPORT. */
  unsigned nf = sizeof families / sizeof families[0];
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, (unsigned char)(2 * nf + 2));
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
  for (unsigned i = 0; i < nf; i++) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, families[i], 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
  for (const long *p = allowed; *p >= 0; p++) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)*p, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("PR_SET_NO_NEW_PRIVS"); return 1; }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) { perror("PR_SET_SECCOMP"); return 1; }
  execv(argv[1], argv + 1);
  perror(argv[1]);
  return 127;
}
`;
}

async function buildLoader(): Promise<{ path: string; syscalls: Set<string> }> {
  const groups = parseGroups(Bun.spawnSync([ANALYZE!, "syscall-filter", "--no-pager"], { stdout: "pipe" }).stdout.toString());
  const syscalls = allowedSyscalls(unit, groups);
  const families = settings(unit, "RestrictAddressFamilies")
    .join(" ")
    .split(/\s+/)
    .map((f) => FAMILY_NUMBERS[f]);
  if (families.some((f) => f === undefined)) throw new Error("an address family in the unit is not in FAMILY_NUMBERS");
  const dir = tempDir();
  writeFileSync(join(dir, "seccomp-exec.c"), loaderSource(syscalls, families as number[]));
  const compiled = Bun.spawnSync([CC!, "-O2", "-Wall", "-o", join(dir, "seccomp-exec"), join(dir, "seccomp-exec.c")], { stderr: "pipe" });
  if (compiled.exitCode !== 0) throw new Error(`cc failed: ${compiled.stderr.toString()}`);
  return { path: join(dir, "seccomp-exec"), syscalls };
}

const canFilter = ANALYZE !== null && CC !== null && (process.arch === "x64" || process.arch === "arm64");
const filterTitle = (t: string) => (canFilter ? t : `${t} (skipped: needs systemd-analyze and a C compiler on x64 or arm64)`);

describe("nqptp.service's system call filter", () => {
  test.skipIf(!canFilter)(filterTitle("the loader enforces it: a call the unit forbids fails with EPERM"), async () => {
    const { path, syscalls } = await buildLoader();
    expect(syscalls.has("fchownat")).toBe(false); // @chown, inside ~@privileged
    expect(syscalls.has("recvmsg")).toBe(true);
    const dir = tempDir();
    const file = join(dir, "f");
    writeFileSync(file, "");
    const uid = String(process.getuid?.() ?? 0);
    // Unfiltered, chown to our own uid succeeds; filtered, it must not.
    expect(Bun.spawnSync(["chown", uid, file]).exitCode).toBe(0);
    const filtered = Bun.spawnSync([path, Bun.which("chown")!, uid, file], { stderr: "pipe" });
    expect(filtered.exitCode).not.toBe(0);
    expect(filtered.stderr.toString()).toContain("Operation not permitted");
  });

  for (const version of [5, 10] as const) {
    test.skipIf(!canFilter)(filterTitle(`dist/nqptp (interface ${version}) runs under it: starts, publishes, exits cleanly`), async () => {
      const { path } = await buildLoader();
      const binary = await compiledBinary();
      const ports = randomPorts();
      const shmName = uniqueShmName("seccomp");
      const proc = Bun.spawn(
        [
          path,
          binary,
          `--interface-version=${version}`,
          `--shm-name=${shmName}`,
          `--event-port=${ports.event}`,
          `--general-port=${ports.general}`,
          `--control-port=${ports.control}`,
          "--ptp-address=127.0.0.1",
          "-v",
        ],
        { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
      );
      cleanups.push(() => {
        proc.kill("SIGKILL");
        rmSync(`/dev/shm${shmName}`, { force: true }); // SIGKILL leaves the region behind
      });
      let log = "";
      const pumped = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of proc.stderr) log += decoder.decode(chunk, { stream: true });
      })();
      const deadline = Date.now() + 10_000;
      while (!log.includes("serving shared memory interface") && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(20);
      expect(log).toContain("serving shared memory interface");
      const master = await startPtpMaster({
        address: "127.0.0.2",
        target: "127.0.0.1",
        eventPort: ports.event,
        generalPort: ports.general,
        clockIdentity: MASTER_ID,
        grandmasterIdentity: MASTER_ID,
        offsetNs: 1_234_567_890_123n,
        clock: version === 5 ? realtimeNs : monotonicRawNs,
      });
      cleanups.push(() => master.stop());
      await sendControl(version === 5 ? "T 127.0.0.2\0" : `${shmName} T 127.0.0.2\0`, ports.control);
      if (version === 10) await sendControl(`${shmName} B\0`, ports.control);
      try {
        await waitForShm(shmName, version, (r) => BigInt(r.clock_id) === MASTER_ID, 10_000);
      } catch (error) {
        proc.kill("SIGTERM");
        throw new Error(`${(error as Error).message}\n${log}`);
      }
      // The simulator stops first: sending to a closed port would raise ECONNREFUSED on its socket.
      master.stop();
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await pumped;
      expect(log).not.toMatch(/EPERM|not permitted|EAFNOSUPPORT|internal error|fatal/i);
      expect(existsSync(`/dev/shm${shmName}`)).toBe(false);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The whole sandbox, as near as it can be built without systemd as PID 1

const IS_ROOT = process.getuid?.() === 0;
const canSandbox = canFilter && IS_ROOT && Bun.which("unshare") !== null && Bun.which("setpriv") !== null;
const sandboxTitle = (t: string) => (canSandbox ? t : `${t} (skipped: needs root, unshare and setpriv, systemd-analyze and a C compiler)`);

// Run inside a private mount namespace: /proc as ProtectProc=invisible + ProcSubset=pid mount it,
// every file system read-only as ProtectSystem=strict makes it (except /dev, so /dev/shm stays).
const SANDBOX_SCRIPT = `#!/bin/sh
set -e
mount -t proc -o subset=pid,hidepid=invisible proc /proc
mount -o remount,bind,ro /
for m in $(awk '$2 != "/" && $2 !~ "^/(dev|proc|sys)(/|$)" {print $2}' /proc/self/mounts); do
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
exec "$@"
`;

describe("nqptp.service's sandbox", () => {
  test.skipIf(!canSandbox)(
    sandboxTitle(
      "dist/nqptp runs as the unit runs it: user 65534 with CAP_NET_BIND_SERVICE only, NoNewPrivileges, the system call filter, " +
        "/proc with ProcSubset=pid and ProtectProc=invisible, read-only file systems",
    ),
    async () => {
      const { path: loader } = await buildLoader();
      const dir = tempDir();
      const script = join(dir, "sandbox.sh");
      writeFileSync(script, SANDBOX_SCRIPT, { mode: 0o755 });
      // A copy user 65534 can execute (a checkout under /root is out of its reach).
      const binary = join(dir, "nqptp");
      copyFileSync(await compiledBinary(), binary);
      chmodSync(binary, 0o755);
      const ports = randomPorts();
      const shmName = uniqueShmName("sandbox");
      const proc = Bun.spawn(
        [
          "unshare",
          "-m",
          "--propagation",
          "private",
          script,
          "setpriv",
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "--inh-caps=+net_bind_service",
          "--ambient-caps=+net_bind_service",
          "--no-new-privs",
          loader,
          binary,
          `--shm-name=${shmName}`,
          `--event-port=${ports.event}`,
          `--general-port=${ports.general}`,
          `--control-port=${ports.control}`,
          "--ptp-address=127.0.0.1",
          "-v",
        ],
        { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
      );
      cleanups.push(() => {
        proc.kill("SIGKILL");
        rmSync(`/dev/shm${shmName}`, { force: true }); // SIGKILL leaves the region behind
      });
      let log = "";
      const pumped = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of proc.stderr) log += decoder.decode(chunk, { stream: true });
      })();
      const deadline = Date.now() + 10_000;
      while (!log.includes("serving shared memory interface") && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(20);
      expect(log).toContain("serving shared memory interface");
      // unshare, the script, setpriv and the loader all exec: this pid is the daemon.
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      expect(status).toMatch(/^CapEff:\s+0000000000000400$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^Seccomp:\s+2$/m);

      const master = await startPtpMaster({
        address: "127.0.0.2",
        target: "127.0.0.1",
        eventPort: ports.event,
        generalPort: ports.general,
        clockIdentity: MASTER_ID,
        offsetNs: 1_234_567_890_123n,
        clock: realtimeNs,
      });
      cleanups.push(() => master.stop());
      await sendControl("T 127.0.0.2\0", ports.control);
      try {
        await waitForShm(shmName, 5, (r) => BigInt(r.clock_id) === MASTER_ID, 10_000);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${log}`);
      }
      // The simulator stops first: sending to a closed port would raise ECONNREFUSED on its socket.
      master.stop();
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await pumped;
      expect(log).not.toMatch(/EPERM|not permitted|EAFNOSUPPORT|read-only|internal error|fatal/i);
      expect(existsSync(`/dev/shm${shmName}`)).toBe(false);
    },
  );
});
