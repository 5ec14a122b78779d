// `nqptp install` / `nqptp uninstall` end to end, with the compiled dist/nqptp (the command copies
// its own executable, so only the compiled one can do it) into staging trees under --root. Nothing
// outside the temporary directories is touched. PATH holds only an empty directory, so a
// shairport-sync on the machine running the suite cannot change what is detected.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
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
import { ROOT, compiledBinary } from "../support/daemon.ts";

const BIN = "usr/local/bin/nqptp";
const UNIT = "etc/systemd/system/nqptp.service";

let binary: string;
let work: string;
let emptyPath: string;
let counter = 0;

interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
  output: string;
}

function runNqptp(args: string[], exe = binary): Outcome {
  const result = Bun.spawnSync([exe, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: emptyPath, NO_COLOR: "1" },
  });
  const stdout = result.stdout.toString();
  const stderr = result.stderr.toString();
  return { status: result.exitCode ?? -1, stdout, stderr, output: stdout + stderr };
}

/** A fresh staging tree. */
function stage(): string {
  const root = join(work, `root-${++counter}`);
  mkdirSync(root);
  return root;
}

function sha256(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

const modeOf = (path: string) => statSync(path).mode & 0o7777;

function fakeShairportSync(versionLine: string): string {
  const path = join(work, `shairport-sync-${++counter}.sh`);
  writeFileSync(path, `#!/bin/sh\necho '${versionLine}'\n`, { mode: 0o755 });
  return path;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "nqptp-install-"));
  chmodSync(work, 0o755); // the not-root test runs the copy from here as nobody
  // A private copy: dist/nqptp is rebuilt by other runs of the suite, and these tests compare
  // the installed bytes with the executable that installed them.
  binary = join(work, "nqptp");
  copyFileSync(await compiledBinary(), binary);
  chmodSync(binary, 0o755);
  emptyPath = join(work, "empty-bin");
  mkdirSync(emptyPath);
  const help = runNqptp(["install", "--help"]);
  if (help.status !== 0 || !help.stdout.includes("nqptp install")) {
    throw new Error(`${binary} has no working \`install\` (stale build?): rebuild with \`bun scripts/build.ts\`\n${help.output}`);
  }
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("nqptp install --root", () => {
  test("installs the binary (0755, our bytes) and the unit (0644, marker, ExecStart), then prints the enable line", () => {
    const root = stage();
    const run = runNqptp(["install", "--root", root]);
    expect(run.status).toBe(0);
    expect(modeOf(join(root, BIN))).toBe(0o755);
    expect(sha256(join(root, BIN))).toBe(sha256(binary));
    expect(modeOf(join(root, UNIT))).toBe(0o644);
    const unit = readFileSync(join(root, UNIT), "utf8");
    expect(unit.split("\n")[0]).toStartWith("# Installed by nqptp ");
    expect(unit).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 5\n");
    expect(unit).toContain("\nDynamicUser=yes\n");
    expect(unit.split("\n").slice(1).join("\n")).toBe(
      readFileSync(join(ROOT, "nqptp.service"), "utf8").replace(
        "ExecStart=/usr/local/bin/nqptp\n",
        "ExecStart=/usr/local/bin/nqptp --interface-version 5\n",
      ),
    );
    expect(run.stdout).toContain("no shairport-sync found");
    expect(run.stdout).toContain("DynamicUser=yes");
    expect(run.stdout).toContain("sudo systemctl enable --now nqptp");
    expect(run.stdout).toContain("sudo systemctl restart shairport-sync");
    expect(run.stdout).toContain("sudo systemctl daemon-reload");
    // no temporary files left beside the targets
    expect(Bun.spawnSync(["find", root, "-name", ".*"]).stdout.toString()).toBe("");
  });

  test("a second run says already installed and writes nothing", () => {
    const root = stage();
    expect(runNqptp(["install", "--root", root]).status).toBe(0);
    const before = [statSync(join(root, BIN)), statSync(join(root, UNIT))].map((s) => [s.ino, s.mtimeMs]);
    const again = runNqptp(["install", "--root", root]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`binary: already installed at ${join(root, BIN)}`);
    expect(again.stdout).toContain(`unit: already installed at ${join(root, UNIT)} (unchanged)`);
    expect(again.stdout).not.toContain("daemon-reload");
    expect([statSync(join(root, BIN)), statSync(join(root, UNIT))].map((s) => [s.ino, s.mtimeMs])).toEqual(before);
  });

  test("a different file at the target is refused without --force (untouched, nothing written) and replaced with it", () => {
    const root = stage();
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    writeFileSync(join(root, BIN), "#!/bin/sh\necho another nqptp\n", { mode: 0o755 });
    const refused = runNqptp(["install", "--root", root]);
    expect(refused.status).toBe(73);
    expect(refused.stderr).toContain("is a different file");
    expect(refused.stderr).toContain("--force");
    expect(readFileSync(join(root, BIN), "utf8")).toBe("#!/bin/sh\necho another nqptp\n");
    expect(existsSync(join(root, UNIT))).toBe(false);

    const forced = runNqptp(["install", "--root", root, "--force"]);
    expect(forced.status).toBe(0);
    expect(forced.stdout).toContain(`binary: replaced ${join(root, BIN)}`);
    expect(sha256(join(root, BIN))).toBe(sha256(binary));
    expect(modeOf(join(root, BIN))).toBe(0o755);
  });

  test("a unit nqptp did not write is refused without --force and replaced with it", () => {
    const root = stage();
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    writeFileSync(join(root, UNIT), "[Service]\nExecStart=/usr/sbin/nqptp\n");
    const refused = runNqptp(["install", "--root", root]);
    expect(refused.status).toBe(73);
    expect(refused.stderr).toContain("was not installed by nqptp");
    expect(existsSync(join(root, BIN))).toBe(false);
    const forced = runNqptp(["install", "--root", root, "--force"]);
    expect(forced.status).toBe(0);
    expect(readFileSync(join(root, UNIT), "utf8")).toStartWith("# Installed by nqptp ");
  });

  test("--shairport-sync: a smi10 build gets --interface-version 10, and the output says what was found", () => {
    const root = stage();
    const fake = fakeShairportSync("4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc");
    const run = runNqptp(["install", "--root", root, "--shairport-sync", fake]);
    expect(run.status).toBe(0);
    expect(readFileSync(join(root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 10\n");
    expect(run.stdout).toContain(
      `${fake} -V says "4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc": smi10, so interface version 10`,
    );

    // Shairport Sync upgraded from 4.2 (smi9): the unit follows, the binary stays.
    const older = runNqptp(["install", "--root", root, "--shairport-sync", fakeShairportSync("4.2.0-AirPlay2-smi9-OpenSSL")]);
    expect(older.status).toBe(0);
    expect(older.stdout).toContain("binary: already installed");
    expect(older.stdout).toContain("unit: updated");
    expect(readFileSync(join(root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 9\n");
  });

  test("--interface-version overrides detection", () => {
    const root = stage();
    const fake = fakeShairportSync("4.3.2-AirPlay2-smi10-OpenSSL");
    const run = runNqptp(["install", "--root", root, "--shairport-sync", fake, "--interface-version", "9"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("interface version 9 (given with --interface-version)");
    expect(readFileSync(join(root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 9\n");
  });

  test("-i puts --interface on ExecStart= for each network interface; installing again without it takes them off", () => {
    const root = stage();
    const run = runNqptp(["install", "--root", root, "--interface-version", "10", "-i", "wlan0", "--interface", "eth0"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("network: PTP heard only on wlan0, eth0");
    expect(readFileSync(join(root, UNIT), "utf8")).toContain(
      "\nExecStart=/usr/local/bin/nqptp --interface-version 10 --interface wlan0 --interface eth0\n",
    );
    expect(runNqptp(["install", "--root", root, "--interface-version", "10"]).stdout).toContain("unit: updated");
    expect(readFileSync(join(root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 10\n");
    const bad = runNqptp(["install", "--root", stage(), "-i", "a b"]);
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain('--interface: "a b" holds " ", which an interface name cannot hold');
  });

  test("an AirPlay 2 build without an smi tag gets 5; one needing an interface we do not serve is refused", () => {
    const root = stage();
    const old = runNqptp(["install", "--root", root, "--shairport-sync", fakeShairportSync("4.0.0-AirPlay2-OpenSSL-Avahi-ALSA-sysconfdir:/etc")]);
    expect(old.status).toBe(0);
    expect(old.stdout).toContain("without an smi tag");
    expect(readFileSync(join(root, UNIT), "utf8")).toContain("\nExecStart=/usr/local/bin/nqptp --interface-version 5\n");

    const other = stage();
    const future = runNqptp(["install", "--root", other, "--shairport-sync", fakeShairportSync("5.1.0-AirPlay2-smi11-OpenSSL")]);
    expect(future.status).toBe(69);
    expect(future.stderr).toContain("smi11");
    expect(existsSync(join(other, BIN))).toBe(false);
  });

  test("--shairport-sync naming nothing runnable is an error", () => {
    const run = runNqptp(["install", "--root", stage(), "--shairport-sync", join(work, "no-such-shairport-sync")]);
    expect(run.status).toBe(64);
    expect(run.stderr).toContain("could not run it");
  });
});

describe("nqptp uninstall --root", () => {
  test("removes what install put there; a second run says nothing to remove", () => {
    const root = stage();
    expect(runNqptp(["install", "--root", root]).status).toBe(0);
    // what `systemctl enable nqptp` would have made
    mkdirSync(join(root, "etc/systemd/system/multi-user.target.wants"));
    symlinkSync("/etc/systemd/system/nqptp.service", join(root, "etc/systemd/system/multi-user.target.wants/nqptp.service"));

    const run = runNqptp(["uninstall", "--root", root]);
    expect(run.status).toBe(0);
    expect(existsSync(join(root, BIN))).toBe(false);
    expect(existsSync(join(root, UNIT))).toBe(false);
    expect(() => lstatSync(join(root, "etc/systemd/system/multi-user.target.wants/nqptp.service"))).toThrow();
    expect(run.stdout).toContain(`removed ${join(root, UNIT)} (unit)`);
    expect(run.stdout).toContain(`removed ${join(root, BIN)} (binary: an nqptp built from this project)`);
    expect(run.stdout).toContain("systemctl disable --now nqptp");

    const again = runNqptp(["uninstall", "--root", root]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain("nothing to remove");
  });

  test("an nqptp of another build (different bytes) is still recognised and removed", () => {
    const root = stage();
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    copyFileSync(binary, join(root, BIN));
    appendFileSync(join(root, BIN), "another build");
    expect(sha256(join(root, BIN))).not.toBe(sha256(binary));
    const run = runNqptp(["uninstall", "--root", root]);
    expect(run.status).toBe(0);
    expect(existsSync(join(root, BIN))).toBe(false);
  });

  test("a unit without our marker and a binary that is not an nqptp are left alone", () => {
    const root = stage();
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    const foreignUnit = "[Unit]\nDescription=someone else's nqptp\n[Service]\nExecStart=/usr/local/bin/nqptp\n";
    writeFileSync(join(root, UNIT), foreignUnit);
    copyFileSync("/bin/true", join(root, BIN)); // an ELF, but not ours
    const run = runNqptp(["uninstall", "--root", root]);
    expect(run.status).toBe(0);
    expect(readFileSync(join(root, UNIT), "utf8")).toBe(foreignUnit);
    expect(sha256(join(root, BIN))).toBe(sha256("/bin/true"));
    expect(run.stdout).toContain("unit: left alone");
    expect(run.stdout).toContain("binary: left alone");
  });
});

describe("refusals", () => {
  test("unknown options exit 64; --help exits 0 for both commands", () => {
    for (const command of ["install", "uninstall"]) {
      const bad = runNqptp([command, "--bogus"]);
      expect(bad.status).toBe(64);
      expect(bad.stderr).toContain('unknown option "--bogus"');
      const help = runNqptp([command, "--help"]);
      expect(help.status).toBe(0);
      expect(help.stdout).toContain(`nqptp ${command}`);
      expect(help.stdout).toContain("--root");
    }
  });

  test("run from source (bun src/main.ts) it refuses to install the bun runtime and says to build first", () => {
    const root = stage();
    const result = Bun.spawnSync([process.execPath, join(ROOT, "src", "main.ts"), "install", "--root", root], {
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: emptyPath },
    });
    expect(result.exitCode).toBe(69);
    expect(result.stderr.toString()).toContain("Build it first");
    expect(existsSync(join(root, BIN))).toBe(false);
  });

  const isRoot = process.getuid?.() === 0;
  // setpriv can only switch to another user when we are root; as anyone else the refusal is the
  // ordinary path and there is nothing to drop to.
  test.skipIf(!isRoot)("not root and no --root: exit 77 with a message (skipped unless the suite runs as root: setpriv needs root)", () => {
    for (const command of ["install", "uninstall"]) {
      const result = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary, command], {
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: "/usr/bin:/bin", NO_COLOR: "1" },
      });
      expect(result.exitCode).toBe(77);
      expect(result.stderr.toString()).toContain("must be run as root");
    }
  });
});
