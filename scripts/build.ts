// Builds the single executable dist/nqptp for this machine, with the version baked in:
// `git describe --tags --dirty` when built from a git checkout with a tag, the package version
// plus the commit when there is no tag, the package version alone outside git.
//
//   bun scripts/build.ts            → dist/nqptp

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

const root = join(import.meta.dir, "..");

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

async function main() {
  const version = buildVersion();
  mkdirSync(join(root, "dist"), { recursive: true });
  const outfile = join(root, "dist", "nqptp");
  const args = [
    process.execPath,
    "build",
    "--compile",
    "--format=esm",
    "--minify",
    "--bytecode",
    `--define=NQPTP_BUILD_VERSION=${JSON.stringify(version)}`,
    join(root, "src", "main.ts"),
    "--outfile",
    outfile,
  ];
  const result = Bun.spawnSync(args, { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (result.exitCode !== 0) {
    console.error(`build failed (exit ${result.exitCode}): ${args.join(" ")}`);
    process.exit(1);
  }
  console.log(`built ${outfile} (version ${version})`);
}

if (import.meta.main) await main();
