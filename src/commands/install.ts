// `nqptp install` and `nqptp uninstall`: the shell around install-plan.ts. It gathers facts
// (what is at the targets, their SHA-256, what shairport-sync -V says, whether systemd runs),
// asks the plan what to do, and does it: atomic writes, useradd, systemctl.

import {
  chmodSync,
  closeSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import unitTemplate from "../../nqptp.service" with { type: "text" };
import { usageError } from "../cli/args.ts";
import { EXIT } from "../cli/exit-status.ts";
import { VERSION } from "../cli/version.ts";
import type { Io } from "./io.ts";
import {
  installHelp,
  parseInstallArgs,
  parseUninstallArgs,
  uninstallHelp,
  type ArgsPlan,
  type InstallOptions,
  type UninstallOptions,
} from "./install-args.ts";
import {
  BINARY_MODE,
  UNIT_MODE,
  chooseInterfaceVersion,
  modeText,
  planInstall,
  planUninstall,
  type BinaryIdentity,
  type InstallAction,
  type ShairportProbe,
  type Target,
} from "./install-plan.ts";
import { INSTALLED_BINARY, INSTALLED_UNIT, enablementLinks, execStartOf, isOurUnit, renderUnit, serviceAccount } from "./unit-file.ts";

/**
 * Every build of this nqptp carries this text (it is the needle uninstall searches for, so the
 * bundler cannot drop it). `nqptp uninstall` removes a binary only if it is an ELF file that
 * contains it: another program at /usr/local/bin/nqptp (the C nqptp, a wrapper script) stays.
 */
export const BINARY_IDENTITY = "This is nqptp, the Bun re-implementation; `nqptp uninstall` looks for this line.";

// ---------------------------------------------------------------------------------------------
// Facts

/**
 * True inside the `bun build --compile` executable. From source, process.execPath is the bun
 * runtime itself (copying that would install bun as nqptp). Bun.isStandaloneExecutable says it
 * directly; Bun.main ("/$bunfs/root/…" when compiled) confirms it on runtimes without it.
 */
export function runningCompiled(): boolean {
  const flag = (Bun as { isStandaloneExecutable?: boolean }).isStandaloneExecutable;
  return typeof flag === "boolean" ? flag : Bun.main.startsWith("/$bunfs/");
}

/** What install and uninstall need to know of the program that runs them; tests substitute. */
export interface InstallHost {
  /** The nqptp executable to copy, or null when bun runs the source (there is no binary to install). */
  executable: string | null;
  /** The user id: installing into (or uninstalling from) "/" needs root. */
  uid: number | undefined;
}

/** This process: the executable that runs, if it is a compiled nqptp, and its user. */
export function thisProgram(): InstallHost {
  return { executable: runningCompiled() ? process.execPath : null, uid: process.getuid?.() };
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw error;
  }
}

function whatIs(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  if (stats.isFIFO()) return "a FIFO";
  return "not a regular file";
}

/** What is at path, without following a symbolic link; a regular file gets `describeFile`'s extras. */
async function inspect<F>(path: string, describeFile: (path: string) => Promise<F> | F): Promise<Target<F>> {
  const stats = lstatOrNull(path);
  if (!stats) return { kind: "missing" };
  if (stats.isSymbolicLink()) return { kind: "link", to: readlinkSync(path) };
  if (!stats.isFile()) return { kind: "other", what: whatIs(stats) };
  return { kind: "file", mode: stats.mode & 0o7777, ...(await describeFile(path)) };
}

/** SHA-256 of a file, streamed (the binary is over 100 MB). */
export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** An ELF file that contains BINARY_IDENTITY somewhere: streamed, stops at the first match. */
export async function identifyBinary(path: string): Promise<BinaryIdentity> {
  const needle = Buffer.from(BINARY_IDENTITY);
  let carry = Buffer.alloc(0);
  let first = true;
  for await (const chunk of Bun.file(path).stream()) {
    if (first) {
      first = false;
      if (!(chunk[0] === 0x7f && chunk[1] === 0x45 && chunk[2] === 0x4c && chunk[3] === 0x46)) return "not-nqptp"; // "\x7fELF"
    }
    const window = carry.length > 0 ? Buffer.concat([carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (window.indexOf(needle) >= 0) return "nqptp-build";
    carry = Buffer.from(window.subarray(Math.max(0, window.length - needle.length + 1)));
  }
  return "not-nqptp";
}

/** Installing into "/" on a machine booted with systemd (sd_booted(3): /run/systemd/system exists). */
function systemdRunning(root: string): boolean {
  return root === "/" && existsSync("/run/systemd/system");
}

function run(argv: string[], timeoutMs = 60_000): { ok: boolean; output: string; reason: string } {
  try {
    const result = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
    const output = `${result.stdout.toString()}${result.stderr.toString()}`.trim();
    if (result.exitCode === 0) return { ok: true, output, reason: "" };
    const reason = result.signalCode ? `killed by ${result.signalCode}` : `exit status ${result.exitCode}`;
    return { ok: false, output, reason };
  } catch (error) {
    return { ok: false, output: "", reason: (error as Error).message };
  }
}

function probeShairportSync(given: string | null): ShairportProbe {
  const path = given !== null ? resolve(given) : Bun.which("shairport-sync");
  if (path === null) return { kind: "not-found", looked: "shairport-sync on PATH" };
  const result = run([path, "-V"], 5_000);
  // Older releases print the version and exit non-zero; what it says is what counts.
  if (result.output !== "") return { kind: "ran", path, output: result.output };
  return { kind: "failed", path, reason: result.reason || "it printed nothing" };
}

// ---------------------------------------------------------------------------------------------
// Effects

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `chunks` to a temporary file beside `path`, fsyncs it, sets `mode`, and renames it over
 * `path`: a reader sees the old file or the new one, never part of one. Returns the SHA-256 of
 * what was written.
 */
async function writeAtomically(path: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, mode: number): Promise<string> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.nqptp-install-${process.pid}-${Math.floor(Math.random() * 1e9)}`);
  const hasher = new Bun.CryptoHasher("sha256");
  const fd = openSync(temp, "wx", 0o600);
  try {
    try {
      for await (const chunk of chunks) {
        hasher.update(chunk);
        for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done);
      }
      fchmodSync(fd, mode); // explicit: the umask does not decide
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {}
    throw error;
  }
  fsyncDirectory(dir);
  return hasher.digest("hex");
}

function mkdirs(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
}

function errorText(error: unknown): string {
  return (error as Error).message ?? String(error);
}

// ---------------------------------------------------------------------------------------------
// install

/** Parses, answers --help, and turns an unexpected failure into an I/O error status. */
async function runSubcommand<O>(
  name: string,
  parsed: ArgsPlan<O>,
  help: () => Promise<string>,
  body: (options: O) => Promise<number>,
  out: Io,
): Promise<number> {
  if (parsed.kind === "help") {
    out.out(await help());
    return EXIT.ok;
  }
  if (parsed.kind === "error") {
    out.err(usageError(`nqptp ${name}`, parsed.message));
    return EXIT.usage;
  }
  try {
    return await body(parsed.options);
  } catch (error) {
    out.err(`nqptp ${name}: ${errorText(error)}`);
    return EXIT.ioError;
  }
}

/** systemctl daemon-reload, saying what happened; false when it failed. */
function reloadSystemd(command: string, out: Io): boolean {
  const result = run(["systemctl", "daemon-reload"]);
  if (result.ok) out.out("systemd: reloaded (systemctl daemon-reload)");
  else out.err(`nqptp ${command}: systemctl daemon-reload failed (${result.reason}): ${result.output}`);
  return result.ok;
}

export async function runInstall(args: string[], out: Io, host: InstallHost = thisProgram()): Promise<number> {
  return runSubcommand("install", parseInstallArgs(args), installHelp, (options) => install(options, out, host), out);
}

async function install(options: InstallOptions, out: Io, host: InstallHost): Promise<number> {
  if (host.executable === null) {
    out.err(
      `nqptp install: this is bun running the source (${Bun.main}), not the nqptp executable, so there is no binary to install.\n` +
        "Build it first, then run the built one: npm run build && sudo dist/nqptp install",
    );
    return EXIT.unavailable;
  }
  if (options.root === "/" && host.uid !== 0) {
    out.err(
      "nqptp install: must be run as root to install into /usr/local/bin and /etc/systemd/system (try: sudo nqptp install), or use --root DIR to stage the files",
    );
    return EXIT.noPermission;
  }

  const self = host.executable;
  out.out(`nqptp ${VERSION}: installing ${self} into ${options.root}`);

  const rendered = unitToInstall(options, out);
  if (typeof rendered === "number") return rendered;

  const binaryPath = join(options.root, INSTALLED_BINARY);
  const unitPath = join(options.root, INSTALLED_UNIT);
  const selfSha256 = await sha256File(self);
  const binary = await inspect(binaryPath, async (path) => ({ sha256: await sha256File(path) }));
  const unit = await inspect(unitPath, (path) => {
    const text = readFileSync(path, "utf8");
    return { text, ours: isOurUnit(text) };
  });
  const account = serviceAccount(rendered.text);
  const userExists = account.kind === "user" && options.root === "/" ? run(["getent", "passwd", account.name]).ok : null;

  const plan = planInstall({
    root: options.root,
    force: options.force,
    binaryPath,
    selfSha256,
    binary,
    unitPath,
    unitText: rendered.text,
    unit,
    account,
    userExists,
    systemdRunning: systemdRunning(options.root),
  });
  if (!plan.ok) {
    out.err(`nqptp install: ${plan.message}`);
    return plan.status;
  }

  return carryOutInstall(plan.actions, self, selfSha256, out);
}

/**
 * The unit's text, with the interface version chosen (given, or what shairport-sync -V asks
 * for) and the network interfaces given, having said what was chosen; or the exit status.
 */
function unitToInstall(options: InstallOptions, out: Io): { text: string } | number {
  let probe: ShairportProbe | null = null;
  if (options.interfaceVersion === null) {
    probe = probeShairportSync(options.shairportSync);
    if (options.shairportSync !== null && probe.kind !== "ran") {
      out.err(`nqptp install: --shairport-sync ${options.shairportSync}: could not run it${probe.kind === "failed" ? ` (${probe.reason})` : ""}`);
      return EXIT.usage;
    }
  }
  const choice = chooseInterfaceVersion(options.interfaceVersion, probe);
  if (!choice.ok) {
    out.err(`nqptp install: ${choice.message}`);
    return EXIT.unavailable;
  }
  out.out(`interface: ${choice.explanation}`);
  if (options.interfaces.length > 0) {
    out.out(`network: PTP heard only on ${options.interfaces.join(", ")} (--interface on ExecStart=; each is waited for if it does not exist yet)`);
  }

  const rendered = renderUnit(unitTemplate, { interfaceVersion: choice.version, interfaces: options.interfaces, version: VERSION });
  if (!rendered.ok) {
    out.err(`nqptp install: ${rendered.error}`);
    return EXIT.unavailable;
  }
  return rendered;
}

/** Does what planInstall decided, in order, saying what each step did; the exit status. */
async function carryOutInstall(actions: InstallAction[], self: string, selfSha256: string, out: Io): Promise<number> {
  let status: number = EXIT.ok;
  for (const action of actions) {
    switch (action.kind) {
      case "say":
        out.out(action.text);
        break;
      case "copy-binary": {
        mkdirs(dirname(action.path));
        const written = await writeAtomically(action.path, Bun.file(self).stream(), BINARY_MODE);
        if (written !== selfSha256) {
          // The executable changed while we ran (a rebuild): what is installed is not what we checked.
          out.err(`nqptp install: ${self} changed while it was being copied; run the install again`);
          return EXIT.ioError;
        }
        out.out(
          `binary: ${action.replacing ? "replaced" : "installed"} ${action.path} (mode ${modeText(BINARY_MODE)}, SHA-256 ${selfSha256.slice(0, 12)}…)`,
        );
        break;
      }
      case "write-unit": {
        mkdirs(dirname(action.path));
        await writeAtomically(action.path, [new TextEncoder().encode(action.text)], UNIT_MODE);
        const verb = action.replacing === "none" ? "installed" : action.replacing === "ours" ? "updated" : "replaced (it was not ours)";
        out.out(`unit: ${verb} ${action.path} (mode ${modeText(UNIT_MODE)}): ExecStart=${execStartOf(action.text)}`);
        break;
      }
      case "set-mode":
        chmodSync(action.path, action.mode);
        out.out(`mode: set ${action.path} to ${modeText(action.mode)}`);
        break;
      case "create-user": {
        const argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", action.name];
        const result = run(argv);
        if (result.ok) out.out(`user: created ${action.name} (${argv.join(" ")})`);
        else {
          out.err(`nqptp install: ${argv.join(" ")} failed (${result.reason}): ${result.output}`);
          status = EXIT.osError;
        }
        break;
      }
      case "daemon-reload":
        if (!reloadSystemd("install", out)) status = EXIT.osError;
        break;
    }
  }
  return status;
}

// ---------------------------------------------------------------------------------------------
// uninstall

export async function runUninstall(args: string[], out: Io, host: InstallHost = thisProgram()): Promise<number> {
  return runSubcommand("uninstall", parseUninstallArgs(args), uninstallHelp, (options) => uninstall(options, out, host), out);
}

async function uninstall(options: UninstallOptions, out: Io, host: InstallHost): Promise<number> {
  if (options.root === "/" && host.uid !== 0) {
    out.err(
      "nqptp uninstall: must be run as root to remove /usr/local/bin/nqptp and /etc/systemd/system/nqptp.service (try: sudo nqptp uninstall), or use --root DIR",
    );
    return EXIT.noPermission;
  }
  const binaryPath = join(options.root, INSTALLED_BINARY);
  const unitPath = join(options.root, INSTALLED_UNIT);
  let unitText = "";
  const unit = await inspect(unitPath, (path) => {
    unitText = readFileSync(path, "utf8");
    return { ours: isOurUnit(unitText) };
  });
  const links =
    unit.kind === "file" && unit.ours
      ? enablementLinks(unitText)
          .map((link) => join(options.root, dirname(INSTALLED_UNIT), link))
          .filter((path) => lstatOrNull(path)?.isSymbolicLink() === true)
      : [];
  const binary = await inspect(binaryPath, async (path) => ({ identity: await identifyBinary(path) }));

  const plan = planUninstall({ root: options.root, binaryPath, binary, unitPath, unit, links, systemdRunning: systemdRunning(options.root) });
  if (!plan.ok) {
    out.err(`nqptp uninstall: ${plan.message}`);
    return plan.status;
  }
  let status: number = EXIT.ok;
  for (const action of plan.actions) {
    switch (action.kind) {
      case "say":
        out.out(action.text);
        break;
      case "disable-now": {
        const result = run(["systemctl", "disable", "--now", "nqptp.service"]);
        if (result.ok) out.out("systemd: stopped and disabled nqptp (systemctl disable --now nqptp)");
        else {
          out.err(`nqptp uninstall: systemctl disable --now nqptp failed (${result.reason}): ${result.output}`);
          status = EXIT.osError;
        }
        break;
      }
      case "remove":
        try {
          unlinkSync(action.path);
          out.out(`removed ${action.path} (${action.what})`);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        }
        break;
      case "daemon-reload":
        if (!reloadSystemd("uninstall", out)) status = EXIT.osError;
        break;
    }
  }
  return status;
}
