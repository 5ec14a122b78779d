// `nqptp install` / `nqptp uninstall` in this process: runInstall and runUninstall (src/commands/
// install.ts) with --root staging trees, an injected Io, and the program they run in given
// (InstallHost: the executable to copy, the user). test/commands/install.test.ts runs the compiled
// binary, which copies itself; here the executable is a file the test makes: an ELF that carries
// the identity line, as every build does. Nothing outside the temporary directory is touched.

import { describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT } from "../../src/cli/exit-status.ts";
import { VERSION } from "../../src/cli/version.ts";
import type { Io } from "../../src/commands/io.ts";
import { BINARY_IDENTITY, runInstall, runUninstall, sha256File, type InstallHost } from "../../src/commands/install.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

const cleanups = cleanupAfterEach();

const BIN = "usr/local/bin/nqptp";
const UNIT = "etc/systemd/system/nqptp.service";

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), "nqptp-install-run-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  // An ELF (this system's `true`) with the identity line appended: what uninstall recognises.
  const executable = join(dir, "nqptp");
  copyFileSync("/bin/true", executable);
  writeFileSync(executable, Buffer.concat([readFileSync(executable), Buffer.from(`\n${BINARY_IDENTITY}\n`)]));
  chmodSync(executable, 0o755);
  const root = join(dir, "root");
  mkdirSync(root);
  const host: InstallHost = { executable, uid: 0 };
  return { dir, root, executable, host };
}

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const sink: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  return { sink, out, err };
}

const modeOf = (path: string) => statSync(path).mode & 0o7777;

describe("runInstall --root", () => {
  test("copies the executable (0755, same bytes) and writes the unit (0644) for the interface asked for, saying each step", async () => {
    const w = workspace();
    const o = io();
    expect(await runInstall(["--root", w.root, "--interface-version", "10"], o.sink, w.host)).toBe(EXIT.ok);
    expect(o.err).toEqual([]);
    expect(modeOf(join(w.root, BIN))).toBe(0o755);
    expect(await sha256File(join(w.root, BIN))).toBe(await sha256File(w.executable));
    expect(modeOf(join(w.root, UNIT))).toBe(0o644);
    const unit = readFileSync(join(w.root, UNIT), "utf8");
    expect(unit).toStartWith("# Installed by nqptp ");
    expect(unit).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 10\n");
    expect(o.out[0]).toBe(`nqptp ${VERSION}: installing ${w.executable} into ${w.root}`);
    expect(o.out[1]).toBe("interface: interface version 10 (given with --interface-version)");
    expect(o.out).toContainEqual(expect.stringMatching(/^binary: installed .*usr\/local\/bin\/nqptp \(mode 0755, SHA-256 [0-9a-f]{12}…\)$/));
    expect(o.out).toContainEqual(`unit: installed ${join(w.root, UNIT)} (mode 0644): ExecStart=/usr/local/bin/nqptp --interface-version 10`);

    const again = io();
    expect(await runInstall(["--root", w.root, "--interface-version", "10"], again.sink, w.host)).toBe(EXIT.ok);
    expect(again.out).toContain(`binary: already installed at ${join(w.root, BIN)} (same SHA-256)`);
    expect(again.out).toContain(`unit: already installed at ${join(w.root, UNIT)} (unchanged)`);
  });

  test("asks the shairport-sync it is given which interface it reads", async () => {
    const w = workspace();
    const fake = join(w.dir, "shairport-sync");
    writeFileSync(fake, "#!/bin/sh\necho '4.2.0-AirPlay2-smi9-OpenSSL'\n", { mode: 0o755 });
    const o = io();
    expect(await runInstall(["--root", w.root, "--shairport-sync", fake], o.sink, w.host)).toBe(EXIT.ok);
    expect(readFileSync(join(w.root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 9\n");
    expect(o.out[1]).toBe(`interface: ${fake} -V says "4.2.0-AirPlay2-smi9-OpenSSL": smi9, so interface version 9`);

    const missing = io();
    expect(await runInstall(["--root", w.root, "--shairport-sync", join(w.dir, "none")], missing.sink, w.host)).toBe(EXIT.usage);
    expect(missing.err[0]).toContain("could not run it");
  });

  test("a file it did not install in the way: 73 and nothing changed; --force replaces it", async () => {
    const w = workspace();
    mkdirSync(join(w.root, "usr/local/bin"), { recursive: true });
    writeFileSync(join(w.root, BIN), "#!/bin/sh\n");
    const o = io();
    expect(await runInstall(["--root", w.root, "--interface-version", "5"], o.sink, w.host)).toBe(EXIT.cantCreate);
    expect(o.err.join("\n")).toContain("--force");
    expect(existsSync(join(w.root, UNIT))).toBe(false);
    expect(await runInstall(["--root", w.root, "--interface-version", "5", "--force"], io().sink, w.host)).toBe(EXIT.ok);
    expect(await sha256File(join(w.root, BIN))).toBe(await sha256File(w.executable));
  });

  test("a target it cannot write: an I/O error, 74, that says what failed", async () => {
    const w = workspace();
    const blocked = join(w.dir, "a-file");
    writeFileSync(blocked, "");
    const o = io();
    expect(await runInstall(["--root", blocked, "--interface-version", "5"], o.sink, w.host)).toBe(EXIT.ioError);
    expect(o.err).toHaveLength(1);
    expect(o.err[0]).toStartWith("nqptp install: ");
    expect(o.err[0]).toContain(blocked);
  });
});

describe("runUninstall --root", () => {
  test("removes the unit, its enablement link and the binary install put there; then there is nothing to remove", async () => {
    const w = workspace();
    expect(await runInstall(["--root", w.root, "--interface-version", "5"], io().sink, w.host)).toBe(EXIT.ok);
    mkdirSync(join(w.root, "etc/systemd/system/multi-user.target.wants"));
    const link = join(w.root, "etc/systemd/system/multi-user.target.wants/nqptp.service");
    symlinkSync("/etc/systemd/system/nqptp.service", link);
    const o = io();
    expect(await runUninstall(["--root", w.root], o.sink, w.host)).toBe(EXIT.ok);
    expect(existsSync(join(w.root, BIN))).toBe(false);
    expect(existsSync(join(w.root, UNIT))).toBe(false);
    expect(() => lstatSync(link)).toThrow();
    expect(o.out).toContain(`removed ${join(w.root, BIN)} (binary: an nqptp built from this project)`);
    const again = io();
    expect(await runUninstall(["--root", w.root], again.sink, w.host)).toBe(EXIT.ok);
    expect(again.out.join("\n")).toContain("nothing to remove");
  });
});

describe("refusals, before anything is touched", () => {
  test("run from source (no executable to copy): 69 and how to build one", async () => {
    const w = workspace();
    const o = io();
    expect(await runInstall(["--root", w.root], o.sink, { executable: null, uid: 0 })).toBe(EXIT.unavailable);
    expect(o.err[0]).toContain("Build it first");
    expect(existsSync(join(w.root, "usr"))).toBe(false);
  });

  test("not root and no --root: 77 for both commands", async () => {
    const w = workspace();
    for (const run of [runInstall, runUninstall]) {
      const o = io();
      expect(await run([], o.sink, { executable: w.executable, uid: 1000 })).toBe(EXIT.noPermission);
      expect(o.err[0]).toContain("must be run as root");
    }
  });

  test("a bad command line: 64 with where to look; --help: 0", async () => {
    const w = workspace();
    for (const [name, run] of [
      ["install", runInstall],
      ["uninstall", runUninstall],
    ] as const) {
      const bad = io();
      expect(await run(["--root"], bad.sink, w.host)).toBe(EXIT.usage);
      expect(bad.err).toEqual([`nqptp ${name}: option --root needs a value\nTry "nqptp ${name} --help".`]);
      const help = io();
      expect(await run(["--help"], help.sink, w.host)).toBe(EXIT.ok);
      expect(help.out.join("\n")).toContain("--root");
    }
  });
});
