// The Bun runtimes the single executables are built on, one per target, at exactly the version
// pinned in package.json. The host's comes with `npm ci` (the bun package's platform dependency);
// the other is fetched once from the npm registry with `npm pack` (which checks the registry's
// integrity hash), checked against the hash pinned here, and unpacked under node_modules/.cache.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

export type TargetArch = "x64" | "arm64";

export interface Target {
  arch: TargetArch;
  /** bun build --target */
  bunTarget: string;
  /** npm package holding that runtime */
  packageName: string;
  /** dist/ file name */
  outName: string;
}

export const TARGETS: Record<TargetArch, Target> = {
  x64: { arch: "x64", bunTarget: "bun-linux-x64", packageName: "@oven/bun-linux-x64", outName: "nqptp-linux-x64" },
  arm64: { arch: "arm64", bunTarget: "bun-linux-arm64", packageName: "@oven/bun-linux-aarch64", outName: "nqptp-linux-arm64" },
};

/** npm's dist.integrity of each runtime package at the pinned version. Update with the pin. */
const INTEGRITY: Record<string, string> = {
  "@oven/bun-linux-x64@1.4.5": "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==",
  "@oven/bun-linux-aarch64@1.4.5": "sha512-4BXmsSKnjOrlGWqZV4x/oWa7AVoR+B6lCXddMzOAXBIm3t50eslg9wb66gmtW1AamEQ1l1CDvmmruysEhqOWMg==",
};

export const BUN_VERSION: string = pkg.devDependencies.bun;

function run(cmd: string[], cwd: string): string {
  const result = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.toString().trim()}`);
  }
  return result.stdout.toString().trim();
}

/**
 * The runtime binary for `target`: the Bun running this script for the host's own architecture
 * (npm ci installed it, at the pinned version), else the other architecture's, fetched once.
 */
export function runtimeFor(root: string, target: Target): string {
  if (target.arch === hostArch()) {
    if (Bun.version !== BUN_VERSION) throw new Error(`building with Bun ${Bun.version}, but package.json pins ${BUN_VERSION}: run npm ci`);
    return process.execPath;
  }
  const spec = `${target.packageName}@${BUN_VERSION}`;
  const cache = join(root, "node_modules", ".cache", "nqptp-bun-runtimes", spec.replace(/[@/]/g, "_"));
  const binary = join(cache, "package", "bin", "bun");
  if (existsSync(binary)) return binary;

  const expected = INTEGRITY[spec];
  if (!expected) throw new Error(`no pinned integrity for ${spec}: add npm's dist.integrity to scripts/targets.ts`);
  const staging = `${cache}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  run(["npm", "pack", spec, "--pack-destination", staging, "--silent"], staging);
  const tarball = readdirSync(staging).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack ${spec} produced no tarball`);
  const actual = `sha512-${createHash("sha512")
    .update(readFileSync(join(staging, tarball)))
    .digest("base64")}`;
  if (actual !== expected) throw new Error(`${spec}: integrity ${actual} does not match the pinned ${expected}`);
  run(["tar", "-xzf", tarball], staging);
  rmSync(join(staging, tarball));
  rmSync(cache, { recursive: true, force: true });
  renameSync(staging, cache);
  return binary;
}

export function hostArch(): TargetArch {
  if (process.arch === "x64" || process.arch === "arm64") return process.arch;
  throw new Error(`cannot build on ${process.arch}: nqptp targets x86_64 and arm64 Linux`);
}
