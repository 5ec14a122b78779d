// Compiling the C helpers tests use: the shm reader (a stand-in for Shairport Sync) and small
// throw-away programs that print what the C compiler thinks of a struct; the same helpers for
// arm64 with the cross compiler (aarch64-linux-gnu-gcc), for the arm64 build's tests.
// A missing compiler is a test FAILURE, never a skip: the layout checks would otherwise pass
// without checking anything. CI installs gcc (and gcc-aarch64-linux-gnu).

import { mkdtempSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const C_DIR = join(import.meta.dir, "..", "c");
const BIN_DIR = join(C_DIR, "bin"); // gitignored

/** The C compiler's path, or an error that says how to get one. */
export function requireCc(): string {
  const cc = Bun.which("cc") ?? Bun.which("gcc") ?? Bun.which("clang");
  if (cc === null) {
    throw new Error("no C compiler found (cc, gcc or clang): these tests need one; install it, e.g. `apt-get install gcc`");
  }
  return cc;
}

async function run(argv: string[]): Promise<void> {
  const child = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${code}):\n${stderr}${stdout}`);
}

/** The arm64 cross compiler's path (Debian's gcc-aarch64-linux-gnu), or null. */
export function arm64Cc(): string | null {
  return Bun.which("aarch64-linux-gnu-gcc");
}

/** Compile `sourcePath` to `outputPath` atomically (parallel test processes may race). */
async function compileFile(sourcePath: string, outputPath: string, extraArgs: string[], cc = requireCc()): Promise<void> {
  const temporary = `${outputPath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra", ...extraArgs, "-o", temporary, sourcePath, "-pthread"]);
    renameSync(temporary, outputPath);
  } finally {
    rmSync(temporary, { force: true });
  }
}

let readerBuild: Promise<string> | null = null;

/**
 * Build test/c/shm-reader.c once per test process into test/c/bin/ and return the binary's path.
 * Usage: see the comment at the top of the C file.
 */
export function buildCReader(): Promise<string> {
  readerBuild ??= (async () => {
    mkdirSync(BIN_DIR, { recursive: true });
    const output = join(BIN_DIR, "shm-reader");
    await compileFile(join(C_DIR, "shm-reader.c"), output, []);
    return output;
  })();
  // A failed build is reported to every caller, and retried by the next test process only.
  return readerBuild;
}

const programBuilds = new Map<string, Promise<string>>();

/** Build test/c/<name>.c once per test process into test/c/bin/<name> and return its path. */
export function buildCProgram(name: string): Promise<string> {
  return buildOnce(name, name, []);
}

/**
 * Build test/c/<name>.c statically linked (`-static`) into test/c/bin/<name>-static: it runs in
 * any root filesystem of the same architecture, whatever its C library (a Debian 11 container,
 * say, whose glibc is older than the one it was compiled against). Needs the static C library
 * (libc.a, in Debian's libc6-dev).
 */
export function buildStaticCProgram(name: string): Promise<string> {
  return buildOnce(name, `${name}-static`, ["-static"]);
}

/**
 * Build test/c/<name>.c for arm64 with aarch64-linux-gnu-gcc into test/c/bin/<name>-arm64 (run it
 * with qemu-user and the cross sysroot), or with `static` into <name>-arm64-static (runs on any
 * arm64 system). Needs gcc-aarch64-linux-gnu and libc6-dev-arm64-cross.
 */
export function buildArm64CProgram(name: string, options: { static: boolean }): Promise<string> {
  const cc = arm64Cc();
  if (cc === null) return Promise.reject(new Error("aarch64-linux-gnu-gcc not found: install Debian's gcc-aarch64-linux-gnu"));
  return options.static ? buildOnce(name, `${name}-arm64-static`, ["-static"], cc) : buildOnce(name, `${name}-arm64`, [], cc);
}

function buildOnce(name: string, outputName: string, extraArgs: string[], cc?: string): Promise<string> {
  let build = programBuilds.get(outputName);
  if (!build) {
    build = (async () => {
      mkdirSync(BIN_DIR, { recursive: true });
      const output = join(BIN_DIR, outputName);
      await compileFile(join(C_DIR, `${name}.c`), output, extraArgs, cc);
      return output;
    })();
    programBuilds.set(outputName, build);
  }
  return build;
}

/** Compile C source text into a fresh temporary directory, run it, and return its stdout. */
export async function compileAndRun(source: string, name: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `nqptp-${name}-`));
  try {
    const sourcePath = join(dir, `${name}.c`);
    const binary = join(dir, name);
    writeFileSync(sourcePath, source);
    await compileFile(sourcePath, binary, []);
    const child = Bun.spawn([binary], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`${binary} exited with ${code}:\n${stderr}`);
    return stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
