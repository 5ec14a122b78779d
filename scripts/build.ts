// Builds the single executables, with the version baked in: `git describe --tags --dirty` when
// built from a git checkout with a tag, the package version plus the commit when there is no tag,
// the package version alone outside git.
//
//   bun scripts/build.ts            → dist/nqptp-linux-x64, dist/nqptp-linux-arm64, dist/nqptp (this machine's)
//   bun scripts/build.ts --host     → dist/nqptp only
//
// Both targets build on either architecture without internet beyond the npm registry: the other
// architecture's Bun runtime comes from its npm package (scripts/targets.ts).

import { copyFileSync, linkSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { hostArch, runtimeFor, TARGETS, type Target } from "./targets.ts";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");

function git(...args: string[]): string | null {
  const result = Bun.spawnSync(["git", ...args], { cwd: root, stdout: "pipe", stderr: "ignore" });
  return result.exitCode === 0 ? result.stdout.toString().trim() : null;
}

export function buildVersion(): string {
  if (git("rev-parse", "--is-inside-work-tree") !== "true") return pkg.version;
  const described = git("describe", "--tags", "--dirty");
  if (described) return described;
  const commit = git("describe", "--always", "--dirty", "--abbrev=7");
  return commit ? `${pkg.version}-g${commit}` : pkg.version;
}

function compile(target: Target, version: string, outfile: string): void {
  const args = [
    process.execPath,
    "build",
    "--compile",
    `--target=${target.bunTarget}`,
    `--compile-executable-path=${runtimeFor(root, target)}`,
    // Bytecode needs ESM (consola uses import.meta); it shortens start-up (bench/README.md).
    "--format=esm",
    "--minify",
    "--bytecode",
    // A root daemon must not run whatever bunfig.toml (preload) or .env sits in its working
    // directory: compiled executables load both by default.
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-tsconfig",
    "--no-compile-autoload-package-json",
    `--define=NQPTP_BUILD_VERSION=${JSON.stringify(version)}`,
    join(root, "src", "main.ts"),
    // The event-port reader's Worker (src/net/event-reader.ts) must be inside the executable.
    join(root, "src", "worker.ts"),
    "--outfile",
    outfile,
  ];
  const result = Bun.spawnSync(args, { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    process.stderr.write(result.stdout.toString() + result.stderr.toString());
    throw new Error(`build for ${target.arch} failed (exit ${result.exitCode}): ${args.join(" ")}`);
  }
}

async function main() {
  const hostOnly = process.argv.includes("--host");
  const version = buildVersion();
  mkdirSync(dist, { recursive: true });
  const host = TARGETS[hostArch()];
  const targets = hostOnly ? [host] : [TARGETS.x64, TARGETS.arm64];
  for (const target of targets) {
    const outfile = join(dist, target.outName);
    const started = performance.now();
    compile(target, version, outfile);
    const size = Bun.file(outfile).size;
    console.log(`built ${outfile} (${target.arch}, ${(size / 2 ** 20).toFixed(1)} MiB, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  // dist/nqptp is this machine's own, the one the README's commands and the tests run.
  const own = join(dist, "nqptp");
  rmSync(own, { force: true });
  try {
    linkSync(join(dist, host.outName), own);
  } catch {
    copyFileSync(join(dist, host.outName), own);
  }
  console.log(`dist/nqptp → ${host.outName} (version ${version})`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
