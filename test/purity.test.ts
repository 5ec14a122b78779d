// The pure core stays pure (style.md: "decoding, qualification, BMC, offset estimation and
// control-message parsing never touch sockets, clocks or FFI"): every file of the pure folders
// may import only other pure files. This reads the imports of the source as written, type-only
// ones included (a type from a shell module ties the core to it all the same).

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");

/** The pure folders and files, relative to the repository: the core, and the leaves it may use. */
const PURE = ["src/ptp/", "src/clock/", "src/control/", "src/rules/", "src/util/", "src/time/ns.ts"];

const isPure = (path: string) => PURE.some((p) => (p.endsWith("/") ? path.startsWith(p) : path === p));

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...filesUnder(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** Every module specifier of `source`: static imports and re-exports (type-only too), dynamic imports. */
function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) specifiers.push(match[1]!);
  return specifiers;
}

/** Why `specifier`, imported by pure file `from`, breaks purity; null when it does not. */
function breach(from: string, specifier: string): string | null {
  if (specifier.startsWith("node:") || specifier.startsWith("bun:")) return `${specifier} (a runtime module)`;
  if (!specifier.startsWith(".")) return `${specifier} (a package)`;
  const target = relative(ROOT, normalize(join(ROOT, dirname(from), specifier)));
  return isPure(target) ? null : `${target} (not in a pure folder)`;
}

const pureFiles = PURE.flatMap((p) => (p.endsWith("/") ? filesUnder(p.slice(0, -1)) : [p]));

describe("the pure core", () => {
  test("the check sees the imports it must: static, re-exports, type-only, dynamic and bare ones", () => {
    const sample = [
      'import { a } from "../net/udp.ts";',
      'import type { B } from "../sys/libc.ts";',
      'export { c } from "node:fs";',
      "import {\n  d,\n  e,\n} from 'bun:ffi';",
      'import "../shm/region.ts";',
      'const f = await import("../daemon/daemon.ts");',
      '// a comment that says from "nowhere" is not an import',
    ].join("\n");
    expect(importsOf(sample)).toEqual(["../net/udp.ts", "../sys/libc.ts", "node:fs", "bun:ffi", "../shm/region.ts", "../daemon/daemon.ts"]);
    expect(breach("src/clock/x.ts", "../net/udp.ts")).toContain("not in a pure folder");
    expect(breach("src/clock/x.ts", "bun:ffi")).toContain("runtime module");
    expect(breach("src/clock/x.ts", "consola")).toContain("package");
    expect(breach("src/clock/offset/x.ts", "../../time/ns.ts")).toBeNull();
    expect(breach("src/clock/x.ts", "../time/clocks.ts")).toContain("src/time/clocks.ts");
  });

  test("no file in ptp/, clock/, control/, rules/ or util/ imports node:, bun:, a package or a shell module", () => {
    expect(pureFiles.length).toBeGreaterThan(30); // the scan found the folders
    const breaches: string[] = [];
    for (const file of pureFiles) {
      for (const specifier of importsOf(readFileSync(join(ROOT, file), "utf8"))) {
        const why = breach(file, specifier);
        if (why !== null) breaches.push(`${file} imports ${why}`);
      }
    }
    expect(breaches).toEqual([]);
  });
});
