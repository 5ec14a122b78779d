// A whole arm64 machine for end-to-end tests: Debian's own arm64 kernel and a Debian arm64 root
// with systemd as PID 1, under qemu-system-aarch64 (`-M virt -cpu cortex-a72`, TCG: an emulated
// CPU, several times slower than a real one, with the host's stronger memory ordering).
//
// The system is built once and cached (build-cache.ts) as three files: Debian's kernel image
// (vmlinuz), a small initramfs, and an ext4 image of the root. The root is `mmdebstrap --arch=arm64`
// (its maintainer scripts run under qemu-user through binfmt_misc), with the kernel's modules
// unpacked into it from the kernel package (`dpkg-deb -x`): installing the package would run
// mkinitramfs under emulation, which takes many minutes. The kernel has virtio-blk and ext4 only as
// modules, so the initramfs is our own: busybox (Debian's busybox-static), those few modules, and
// an /init that mounts the root disk and hands over to its systemd. udev then loads what else is
// needed (veth) from the root's /lib/modules.
//
// A run boots the image read-only (`snapshot=on`: the cached image is never written) with two more
// disks: the payload (an ext4 image of the files the test gives: the daemon, a reader, a script)
// and the results (a raw disk onto which the guest writes a tar of its results directory at the
// end). systemd runs the payload's wrapper as the boot's job (systemd.run= on the kernel command
// line), which brings the system up to multi-user.target, runs the script, and powers the
// machine off when it ends. The serial console (ttyAMA0) is the
// guest's voice while it runs: the script's step lines arrive there as they happen.
//
// Root only (mmdebstrap, chroot, binfmt_misc). `arm64VmSupport()` says why a machine cannot.

import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { cachedBuild } from "./build-cache.ts";
import { BOOTABLE_PACKAGES, debianMirror } from "./container.ts";
import { checkCommand, runCommand } from "./process.ts";

/** The root's packages: a bootable system, udev and kmod (they load veth), ptp4l, busybox for the initramfs. */
export const ARM64_PACKAGES: readonly string[] = Object.freeze([...BOOTABLE_PACKAGES, "udev", "kmod", "linuxptp", "busybox-static"]);

/** What the root leaves out (documentation, manual pages, translations): a smaller image. */
const DPKG_EXCLUDES = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/doc/*",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
];

/** The modules the initramfs loads, in this order after their dependencies, to mount the root disk. */
const INITRAMFS_MODULES = ["virtio_mmio", "virtio_blk", "crc32c_generic", "ext4"];

/** The machine: a Raspberry Pi 4's cores (Cortex-A72), two of them, and a Pi Zero 2 W's memory. */
export const MACHINE = Object.freeze({ machine: "virt", cpu: "cortex-a72", cpus: 2, memoryMiB: 512 });

/** The virtio serial numbers of the disks: how the initramfs and the guest tell them apart. */
const ROOT_SERIAL = "nqptp-root";
const PAYLOAD_LABEL = "nqptp-payload";
const RESULTS_SERIAL = "nqptp-results";
/** Where the guest mounts the payload (read-only). */
export const GUEST_PAYLOAD_DIR = "/run/payload";

const TOOLS: readonly (readonly [string, string])[] = [
  ["qemu-system-aarch64", "qemu-system-arm"],
  ["qemu-aarch64-static", "qemu-user-static"],
  ["update-binfmts", "binfmt-support"],
  ["mmdebstrap", "mmdebstrap"],
  ["dpkg-deb", "dpkg"],
  ["mke2fs", "e2fsprogs"],
  ["tar", "tar"],
  ["chroot", "coreutils"],
];

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** A tool's path: from PATH, or from /usr/sbin and /sbin, where Debian keeps some of them (a PATH may not have them). */
function tool(name: string): string | null {
  return Bun.which(name) ?? ["/usr/sbin", "/sbin"].map((dir) => join(dir, name)).find((path) => existsSync(path)) ?? null;
}

/** A tool's path, or an error naming it. */
function requireTool(name: string): string {
  const path = tool(name);
  if (path === null) throw new Error(`${name} is not installed`);
  return path;
}

/** null when this machine can build and boot the arm64 system, else why not (for a skip message). */
export function arm64VmSupport(): string | null {
  if (process.getuid?.() !== 0) return "root only: mmdebstrap, chroot and binfmt_misc need it";
  const missing = TOOLS.filter(([name]) => tool(name) === null);
  if (missing.length > 0) return `missing ${missing.map(([tool, pkg]) => `${tool} (Debian package ${pkg})`).join(", ")}`;
  if (!/\bbinfmt_misc\b/.test(readText("/proc/filesystems")))
    return "the kernel has no binfmt_misc (mmdebstrap runs the arm64 root's scripts through it)";
  if (debianMirror() === null) return "no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d";
  return null;
}

const BINFMT_DIR = "/proc/sys/fs/binfmt_misc";

/**
 * Makes sure arm64 executables run on this machine through qemu-user-static (binfmt_misc), which
 * mmdebstrap needs to build an arm64 root: mounts binfmt_misc if it is not, and enables
 * qemu-aarch64 with update-binfmts if it is not enabled. Idempotent; says what it did.
 */
export async function enableArm64Binfmt(): Promise<string> {
  const done: string[] = [];
  if (!existsSync(join(BINFMT_DIR, "register"))) {
    await checkCommand([requireTool("mount"), "-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]);
    done.push(`mounted binfmt_misc on ${BINFMT_DIR}`);
  }
  const state = () => readText(join(BINFMT_DIR, "qemu-aarch64"));
  if (!state().startsWith("enabled")) {
    await checkCommand([requireTool("update-binfmts"), "--enable", "qemu-aarch64"]);
    if (!state().startsWith("enabled")) throw new Error(`update-binfmts --enable qemu-aarch64 left it ${state().split("\n")[0] || "unregistered"}`);
    done.push("enabled qemu-aarch64 (update-binfmts --enable qemu-aarch64)");
  }
  const interpreter = /^interpreter (.*)$/m.exec(state())?.[1] ?? "?";
  return done.length > 0
    ? `binfmt: ${done.join("; ")}: arm64 executables run with ${interpreter}`
    : `binfmt: qemu-aarch64 was already enabled (${interpreter})`;
}

// ---------------------------------------------------------------------------------------------
// The system, built once

export interface Arm64System {
  /** The cache directory holding the files below. */
  dir: string;
  /** Debian's arm64 kernel image (an uncompressed arm64 Image). */
  kernel: string;
  initramfs: string;
  /** The root filesystem, ext4. Booted with snapshot=on: never written. */
  rootImage: string;
  /** `uname -r` of the kernel, e.g. 6.1.0-50-arm64. */
  kernelRelease: string;
  /** ms spent building it now; 0 when it came from the cache. */
  buildMs: number;
}

/**
 * The arm64 Debian `suite` system (packages ARM64_PACKAGES, Debian's current arm64 kernel), from
 * this machine's mirror, built once and kept under the system's temporary directory.
 */
export async function arm64System(suite = "bookworm"): Promise<Arm64System> {
  const mirror = debianMirror();
  if (mirror === null) throw new Error("no Debian mirror in this machine's apt sources");
  const packages = [...ARM64_PACKAGES].sort();
  // Everything that shapes the files is in the key: changing any of it builds a new system.
  const key = { kind: "arm64-vm", suite, packages, mirror, DPKG_EXCLUDES, INITRAMFS_MODULES, init: initScript([]) };
  const built = await cachedBuild(`${suite}-arm64-vm`, key, (partial) => buildSystem(partial, suite, packages, mirror));
  return {
    dir: built.dir,
    kernel: join(built.dir, "vmlinuz"),
    initramfs: join(built.dir, "initramfs.cpio"),
    rootImage: join(built.dir, "root.img"),
    kernelRelease: readFileSync(join(built.dir, "kernel-release"), "utf8").trim(),
    buildMs: built.buildMs,
  };
}

async function buildSystem(partial: string, suite: string, packages: string[], mirror: string): Promise<void> {
  mkdirSync(partial);
  const root = join(partial, "root");
  const debs = join(partial, "debs");
  mkdirSync(debs);
  // The kernel package is fetched with the root's own apt configuration (its arm64 package lists),
  // by the host's apt-get, before mmdebstrap cleans the lists away.
  const apt = `APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -o APT::Sandbox::User=root`;
  const downloadKernel =
    `cd ${shellQuote(debs)} && kernel=$(APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-cache depends linux-image-arm64 | ` +
    `sed -n 's/^ *Depends: \\(linux-image-[0-9][^ ]*\\)$/\\1/p' | head -1) && [ -n "$kernel" ] && ${apt} download "$kernel"`;
  await checkCommand(
    [
      requireTool("mmdebstrap"),
      "--quiet",
      "--arch=arm64",
      "--variant=apt",
      "--skip=check/qemu", // it would ask arch-test, which is not needed: binfmt is set up (enableArm64Binfmt)
      `--include=${packages.join(",")}`,
      ...DPKG_EXCLUDES.map((option) => `--dpkgopt=${option}`),
      `--customize-hook=${downloadKernel}`,
      suite,
      root,
      mirror,
    ],
    1_800_000,
  );
  const deb = readdirSync(debs).find((name) => /^linux-image-\d.*_arm64\.deb$/.test(name));
  if (!deb) throw new Error(`no linux-image-*_arm64.deb was downloaded into ${debs}`);

  // vmlinuz and the modules from the package, without installing it.
  const unpacked = join(partial, "kernel");
  await checkCommand([requireTool("dpkg-deb"), "-x", join(debs, deb), unpacked]);
  const releases = readdirSync(join(unpacked, "lib", "modules"));
  if (releases.length !== 1) throw new Error(`the kernel package holds modules for ${JSON.stringify(releases)}, not one release`);
  const release = releases[0]!;
  mkdirSync(join(root, "usr", "lib", "modules"), { recursive: true });
  renameSync(join(unpacked, "lib", "modules", release), join(root, "usr", "lib", "modules", release));
  renameSync(join(unpacked, "boot", `vmlinuz-${release}`), join(partial, "vmlinuz"));
  // modules.dep is made by the package's postinst, which did not run: depmod inside the root
  // (arm64 kmod, under qemu-user).
  await checkCommand([requireTool("chroot"), root, "/sbin/depmod", release], 300_000);

  const modulesDir = join(root, "usr", "lib", "modules", release);
  const modules = moduleLoadOrder(readFileSync(join(modulesDir, "modules.dep"), "utf8"), INITRAMFS_MODULES);
  const entries: CpioEntry[] = [
    { path: "bin", mode: 0o755 },
    { path: "modules", mode: 0o755 },
    { path: "bin/busybox", mode: 0o755, data: readFileSync(join(root, "usr", "bin", "busybox")) },
    ...modules.map((path) => ({ path: `modules/${basename(path)}`, mode: 0o644, data: readFileSync(join(modulesDir, path)) })),
    { path: "init", mode: 0o755, data: new TextEncoder().encode(initScript(modules.map((path) => basename(path, ".ko")))) },
  ];
  writeFileSync(join(partial, "initramfs.cpio"), cpioArchive(entries));

  rmSync(unpacked, { recursive: true, force: true });
  rmSync(debs, { recursive: true, force: true });
  // Room for what a run writes (the installed daemon, the journal): the image is a sparse file, and
  // a run's writes go to qemu's snapshot, not into it.
  const used = Number((await checkCommand(["du", "-sb", root])).split(/\s/)[0]);
  const sizeMiB = Math.ceil((used * 1.25) / 2 ** 20) + 1024;
  await checkCommand(
    [requireTool("mke2fs"), "-q", "-F", "-t", "ext4", "-L", ROOT_SERIAL, "-d", root, join(partial, "root.img"), `${sizeMiB}M`],
    300_000,
  );
  rmSync(root, { recursive: true, force: true });
  writeFileSync(join(partial, "kernel-release"), `${release}\n`);
}

/**
 * The paths (relative to the modules directory) of `wanted` and everything they need, each after
 * what it needs, from depmod's modules.dep (`kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko ...`).
 */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const needs = new Map<string, string[]>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    needs.set(
      line.slice(0, colon),
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  const byName = new Map(
    [...needs.keys()].map((path) => [
      basename(path)
        .replace(/\.ko(\.\w+)?$/, "")
        .replace(/-/g, "_"),
      path,
    ]),
  );
  const order: string[] = [];
  const visit = (path: string, trail: string[]) => {
    if (order.includes(path)) return;
    if (trail.includes(path)) throw new Error(`modules.dep: a dependency cycle through ${path}`);
    for (const dependency of needs.get(path) ?? []) visit(dependency, [...trail, path]);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name.replace(/-/g, "_"));
    if (path === undefined) throw new Error(`modules.dep has no module ${name}`);
    visit(path, []);
  }
  return order;
}

/** The initramfs's /init (busybox sh): load `modules`, mount the root disk, switch to its systemd. */
function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
# The arm64 test system's initramfs (test/support/arm64-vm.ts): loads what the root disk needs,
# mounts the virtio disk whose serial is ${ROOT_SERIAL}, and hands over to its systemd.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in ${modules.join(" ")}; do
  insmod "/modules/$module.ko" || echo "initramfs: insmod $module failed"
done
find_root() {
  for serial in /sys/block/vd*/serial; do
    [ -r "$serial" ] || continue
    if [ "$(cat "$serial")" = ${ROOT_SERIAL} ]; then
      device=\${serial%/serial}
      echo "/dev/\${device##*/}"
      return 0
    fi
  done
  return 1
}
tries=0
until root=$(find_root) && [ -b "$root" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 300 ]; then echo "initramfs: no disk with serial ${ROOT_SERIAL}"; poweroff -f; fi
  sleep 0.1
done
mount -t ext4 -o rw "$root" /root || { echo "initramfs: cannot mount $root"; poweroff -f; }
umount /proc /sys
mount --move /dev /root/dev
exec switch_root /root /sbin/init
`;
}

// ---------------------------------------------------------------------------------------------
// cpio (the kernel's initramfs format: "newc", SVR4 without checksums)

export interface CpioEntry {
  path: string;
  /** Permission bits; a directory when there is no data. */
  mode: number;
  data?: Uint8Array;
}

/** A newc cpio archive of `entries` (owned by root, in the given order), with its trailer. */
export function cpioArchive(entries: readonly CpioEntry[]): Uint8Array {
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  const padding = (n: number) => new Uint8Array((4 - (n % 4)) % 4);
  const add = (path: string, mode: number, data: Uint8Array, inode: number) => {
    const name = encoder.encode(`${path}\0`);
    // magic, then 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize devmajor
    // devminor rdevmajor rdevminor namesize check
    const fields = [inode, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    const header = encoder.encode(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`);
    parts.push(header, name, padding(header.length + name.length), data, padding(data.length));
  };
  entries.forEach((entry, i) => {
    if (entry.data === undefined) add(entry.path, 0o040000 | entry.mode, new Uint8Array(), i + 1);
    else add(entry.path, 0o100000 | entry.mode, entry.data, i + 1);
  });
  add("TRAILER!!!", 0, new Uint8Array(), 0);
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running it

export interface PayloadFile {
  /** Path inside the payload (it appears in the guest under GUEST_PAYLOAD_DIR). */
  path: string;
  /** A host file to copy, or the content itself. */
  from: { hostPath: string } | { content: string | Uint8Array };
  mode: number;
}

export interface GuestRunOptions {
  files: readonly PayloadFile[];
  /** The payload file to run; it gets the guest's results directory as its argument. */
  script: string;
  /** The guest is powered off (the script killed first) once the script has run this long. */
  scriptTimeoutMs: number;
  /** The machine is killed this long after it started, whatever it is doing. */
  machineTimeoutMs: number;
  /** Each line of the serial console as it arrives, with ms since qemu started. */
  onConsoleLine?: (line: string, atMs: number) => void;
}

export interface GuestRun {
  /** Everything the serial console showed (kernel, systemd, the script's lines). */
  console: string;
  /** The results directory the guest wrote, unpacked on the host (empty if it wrote none). */
  resultsDir: string;
  /** Whether the guest wrote its results (the script ended, in time or killed, and the tar was made). */
  resultsWritten: boolean;
  /** From starting qemu to the guest reaching multi-user.target (the script then starts), ms; null if it never did. */
  bootMs: number | null;
  /** The guest's uptime (s) when the script began. */
  guestUptimeAtStartS: number | null;
  /** From starting qemu to its exit, ms. */
  runMs: number;
  /** The machine had to be killed at machineTimeoutMs. */
  killed: boolean;
  /** Removes the run's files (the payload and results images, the unpacked results). */
  cleanup(): void;
}

const RESULTS_DISK_MIB = 64;

/**
 * Boots `system` with the payload, runs its script under systemd, waits for the machine to power
 * off (or kills it, by PID, at the deadline) and unpacks what the guest wrote.
 */
export async function runArm64Guest(system: Arm64System, options: GuestRunOptions): Promise<GuestRun> {
  const runDir = mkdtempSync(join(tmpdir(), "nqptp-arm64-run-"));
  const cleanup = () => rmSync(runDir, { recursive: true, force: true });
  try {
    const payloadDir = join(runDir, "payload");
    let payloadBytes = 0;
    for (const file of [...options.files, { path: "run", from: { content: runWrapper(options.script, options.scriptTimeoutMs) }, mode: 0o755 }]) {
      const target = join(payloadDir, file.path);
      mkdirSync(dirname(target), { recursive: true });
      if ("hostPath" in file.from) copyFileSync(file.from.hostPath, target);
      else writeFileSync(target, file.from.content);
      chmodSync(target, file.mode); // whatever the umask says
      payloadBytes += statSync(target).size;
    }
    const payloadImage = join(runDir, "payload.img");
    const payloadMiB = Math.ceil((payloadBytes * 1.1) / 2 ** 20) + 16;
    await checkCommand([requireTool("mke2fs"), "-q", "-F", "-t", "ext4", "-L", PAYLOAD_LABEL, "-d", payloadDir, payloadImage, `${payloadMiB}M`]);
    rmSync(payloadDir, { recursive: true, force: true });
    const resultsImage = join(runDir, "results.img");
    const fd = openSync(resultsImage, "w");
    ftruncateSync(fd, RESULTS_DISK_MIB * 2 ** 20);
    closeSync(fd);
    const resultsDir = join(runDir, "results");
    mkdirSync(resultsDir);

    const machine = await runMachine(system, { payloadImage, resultsImage, tmpDir: runDir, ...options });
    // The guest wrote a tar at the start of the results disk (the rest is zeros): whatever is
    // there is unpacked, even when the console did not say it was complete.
    const unpacked = await runCommand(["tar", "-xf", resultsImage, "-C", resultsDir]);
    if (unpacked.code !== 0) {
      machine.console += `\n[host] tar could not read the results disk: ${unpacked.stderr}`;
      machine.resultsWritten = false;
    }
    rmSync(resultsImage, { force: true });
    rmSync(payloadImage, { force: true });
    return { ...machine, resultsDir, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

/** The payload's entry point: the script with a time limit, then the results onto their disk. */
function runWrapper(script: string, timeoutMs: number): string {
  return `#!/bin/bash
# Started by systemd as the boot's job (systemd.run=, test/support/arm64-vm.ts). Runs the test's
# script with a time limit, then writes the results directory onto the results disk as a tar.
say() { echo "nqptp-vm: $*" > /dev/console; }
mkdir -p /results
# This job runs once sysinit.target is reached; the rest of a normal boot (sockets, D-Bus, timers,
# multi-user.target) is started here, and waited for, before the script.
timeout 300 systemctl start multi-user.target > /results/boot.txt 2>&1
echo "systemctl start multi-user.target: status $?" >> /results/boot.txt
systemctl --failed --no-legend >> /results/boot.txt 2>&1
say "script starts at uptime $(cut -d' ' -f1 /proc/uptime) (multi-user.target reached)"
timeout --kill-after=10 ${Math.ceil(timeoutMs / 1000)} ${GUEST_PAYLOAD_DIR}/${script} /results < /dev/null > /dev/console 2>&1
status=$?
say "script exited with status $status"
journalctl --no-pager -o short-monotonic > /results/journal.txt 2>&1
disk=""
for serial in /sys/block/vd*/serial; do
  if [ "$(cat "$serial")" = ${RESULTS_SERIAL} ]; then device=\${serial%/serial}; disk=/dev/\${device##*/}; fi
done
if [ -n "$disk" ] && tar -cf "$disk" -C /results . && sync; then say "results written"; else say "results NOT written (disk: \${disk:-none})"; fi
exit 0
`;
}

interface MachineRun {
  console: string;
  resultsWritten: boolean;
  bootMs: number | null;
  guestUptimeAtStartS: number | null;
  runMs: number;
  killed: boolean;
}

async function runMachine(
  system: Arm64System,
  options: GuestRunOptions & { payloadImage: string; resultsImage: string; tmpDir: string },
): Promise<MachineRun> {
  const commandLine = [
    "console=ttyAMA0",
    "panic=-1",
    "systemd.show_status=error",
    "systemd.hostname=nqptp-arm64",
    // No login prompt on the console: it is the guest's voice, and nobody types into it.
    "systemd.mask=serial-getty@ttyAMA0.service",
    `systemd.run="/bin/sh -c 'mkdir -p ${GUEST_PAYLOAD_DIR} && mount -o ro LABEL=${PAYLOAD_LABEL} ${GUEST_PAYLOAD_DIR} && exec ${GUEST_PAYLOAD_DIR}/run'"`,
  ].join(" ");
  const disk = (id: string, file: string, serial: string, how: string) => [
    "-drive",
    `file=${file},if=none,id=${id},format=raw,${how}`,
    "-device",
    `virtio-blk-device,drive=${id},serial=${serial}`,
  ];
  const argv = [
    requireTool("qemu-system-aarch64"),
    ...["-M", MACHINE.machine, "-cpu", MACHINE.cpu, "-smp", String(MACHINE.cpus), "-m", String(MACHINE.memoryMiB)],
    ...["-nographic", "-nic", "none", "-no-reboot"],
    ...["-kernel", system.kernel, "-initrd", system.initramfs, "-append", commandLine],
    ...disk("root", system.rootImage, ROOT_SERIAL, "snapshot=on"),
    ...disk("payload", options.payloadImage, PAYLOAD_LABEL, "readonly=on"),
    ...disk("results", options.resultsImage, RESULTS_SERIAL, "cache=writethrough"),
  ];
  const started = performance.now();
  // qemu keeps the snapshot of the root in TMPDIR (unlinked at once): the run's own directory.
  const qemu = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, TMPDIR: options.tmpDir } });
  // If this process dies first, the machine goes with it.
  const killOnExit = () => qemu.exitCode === null && qemu.kill("SIGKILL");
  process.on("exit", killOnExit);
  let text = "";
  let bootMs: number | null = null;
  let guestUptimeAtStartS: number | null = null;
  let resultsWritten = false;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      const chunkText = decoder.decode(chunk, { stream: true }).replace(/\r/g, "");
      text += chunkText;
      pending += chunkText;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      const atMs = performance.now() - started;
      for (const line of lines) {
        const start = /^nqptp-vm: script starts at uptime ([0-9.]+)/.exec(line);
        if (start) {
          bootMs = atMs;
          guestUptimeAtStartS = Number(start[1]);
        }
        if (line === "nqptp-vm: results written") resultsWritten = true;
        options.onConsoleLine?.(line, atMs);
      }
    }
  };
  const pumped = Promise.all([pump(qemu.stdout), pump(qemu.stderr)]);
  let killed = false;
  try {
    const exited = await Promise.race([qemu.exited.then(() => true), Bun.sleep(options.machineTimeoutMs).then(() => false)]);
    if (!exited) {
      killed = true;
      qemu.kill("SIGKILL");
      await qemu.exited;
    }
  } finally {
    if (qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill("SIGKILL");
      await qemu.exited;
    }
    process.off("exit", killOnExit);
  }
  await pumped;
  const runMs = performance.now() - started;
  if (killed) text += `\n[host] killed qemu (PID ${qemu.pid}) after ${(options.machineTimeoutMs / 1000).toFixed(0)} s`;
  else if (qemu.exitCode !== 0) text += `\n[host] qemu exited with ${qemu.exitCode}`;
  return { console: text, resultsWritten, bootMs, guestUptimeAtStartS, runMs, killed };
}

/** `text` quoted for a POSIX shell. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}
