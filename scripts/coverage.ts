// The coverage of src/ over EVERY file of it, from the lcov report of `bun test --coverage`.
//
// Bun's report lists only the files some test loaded in-process, so a file no test loads would
// simply be missing, and the total would be over the files that happen to be tested. Here each
// `.ts` file of src/ (but `.d.ts`) counts: one that no test loaded is counted at 0 % of its lines
// and functions. How many it has:
//   - lines: Bun's own count. A second, separate `bun test --coverage` run only imports the
//     unloaded files, and its report gives their LF: the same LF Bun reports for a file once its
//     tests run it (checked on every file of src/).
//   - functions: from the source, with TypeScript's parser: every function declaration, method,
//     constructor and accessor with a body, every function expression and arrow. Bun counts only
//     the functions it has created, so a file that is loaded and never called shows its top-level
//     ones alone (src/daemon/daemon.ts: 1 of 11). The count from the source is exactly Bun's for
//     every file whose functions all ran, and above it by the functions that never ran: an upper
//     bound of what Bun would report, so a file no test loads is never counted as smaller than it is.
// Their hits are 0: no test loaded them. Importing must run nothing: entry points check
// `import.meta.main` (src/main.ts); should one not, it is handed a command line it refuses, and the
// count fails saying so. The import run ends after 120 s.
//
//   bun scripts/coverage.ts LCOV [--floor-lines PERCENT] [--floor-functions PERCENT]
//
// Prints the total and every file below the floor (lines or functions). Exit status 0; 1 when the
// total is below the floor; 2 when it could not be counted (no report, or a file Bun cannot load).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import * as ts from "typescript";

export interface Count {
  found: number;
  hit: number;
}

export interface FileCoverage {
  /** Relative to the repository, e.g. "src/main.ts". */
  file: string;
  lines: Count;
  functions: Count;
  /** No test loaded it: counted at 0 %. */
  unloaded: boolean;
}

export interface Floor {
  lines: number;
  functions: number;
}

const ROOT = join(import.meta.dir, "..");

/** The records of an lcov report (SF, LF, LH, FNF, FNH of each), paths made relative to `root`. */
export function parseLcov(text: string, root: string = ROOT): FileCoverage[] {
  const files: FileCoverage[] = [];
  let current: FileCoverage | null = null;
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    const key = colon < 0 ? line.trim() : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).trim();
    if (key === "SF") {
      current = {
        file: isAbsolute(value) ? relative(root, value) : value,
        lines: { found: 0, hit: 0 },
        functions: { found: 0, hit: 0 },
        unloaded: false,
      };
    } else if (current !== null) {
      if (key === "LF") current.lines.found = Number(value);
      else if (key === "LH") current.lines.hit = Number(value);
      else if (key === "FNF") current.functions.found = Number(value);
      else if (key === "FNH") current.functions.hit = Number(value);
      else if (key === "end_of_record") {
        files.push(current);
        current = null;
      }
    }
  }
  return files;
}

/** Every file coverage must count: each `.ts` under src/ but the `.d.ts` declarations, sorted. */
export function sourceFiles(root: string = ROOT): string[] {
  return [...new Bun.Glob("src/**/*.ts").scanSync({ cwd: root })].filter((f) => !f.endsWith(".d.ts")).sort();
}

/** The functions of a TypeScript source that Bun counts once each has been created (see the top). */
export function countFunctions(text: string, fileName = "source.ts"): number {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ESNext, false, ts.ScriptKind.TS);
  let count = 0;
  const visit = (node: ts.Node) => {
    if (ts.isFunctionExpression(node) || ts.isArrowFunction(node)) count++;
    else if (
      (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node) || ts.isAccessor(node)) &&
      node.body !== undefined
    )
      count++;
    ts.forEachChild(node, visit);
  };
  visit(source);
  return count;
}

/**
 * The line and function counts of `files`, which no test loaded, with 0 hits: lines from a
 * `bun test --coverage` run of its own that imports each of them (and calls nothing), functions
 * from the source. Throws when Bun reports nothing for one of them (it could not be loaded), saying why.
 */
export function countUnloaded(files: readonly string[], root: string = ROOT): FileCoverage[] {
  if (files.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), "nqptp-coverage-"));
  try {
    const loader = join(dir, "load.test.ts");
    // An entry point that ran on import anyway would find a command line no program accepts, and
    // refuse it (src/main.ts: usage error, exit 64), rather than start a daemon on the default ports.
    writeFileSync(
      loader,
      [
        'import { test } from "bun:test";',
        `process.argv = [process.argv[0], ${JSON.stringify(loader)}, "--an-import-must-run-nothing"];`,
        `for (const file of ${JSON.stringify(files.map((f) => join(root, f)))}) test(file, async () => void (await import(file)));`,
        "",
      ].join("\n"),
    );
    const run = Bun.spawnSync(
      [process.execPath, "test", "--coverage", "--coverage-reporter=lcov", `--coverage-dir=${join(dir, "coverage")}`, loader],
      { cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } },
    );
    const output = `${run.stdout.toString()}${run.stderr.toString()}`.trim();
    let report = "";
    try {
      report = readFileSync(join(dir, "coverage", "lcov.info"), "utf8");
    } catch {
      // said below
    }
    const counted = new Map(parseLcov(report, root).map((f) => [f.file, f]));
    const missing = files.filter((f) => !counted.has(f));
    if (run.exitCode !== 0 || missing.length > 0) {
      const why = run.signalCode ? `killed by ${run.signalCode} (importing must run nothing)` : `exit status ${run.exitCode}`;
      throw new Error(
        `could not count the lines of the files no test loads (${missing.length ? missing.join(", ") : files.join(", ")}): ` +
          `importing them in a coverage run of their own failed (${why}):\n${output}`,
      );
    }
    return files.map((file) => {
      const functions = countFunctions(readFileSync(join(root, file), "utf8"), file);
      return { file, lines: { found: counted.get(file)!.lines.found, hit: 0 }, functions: { found: functions, hit: 0 }, unloaded: true };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The files of src/ (`sources`), each from the report when a test loaded it, else from `countUnloaded`. */
export function coverageOfSources(
  report: readonly FileCoverage[],
  sources: readonly string[],
  count: (files: readonly string[]) => FileCoverage[],
): FileCoverage[] {
  const loaded = new Map(report.filter((f) => f.file.startsWith("src/")).map((f) => [f.file, f]));
  const unloaded = count(sources.filter((f) => !loaded.has(f)));
  return [...sources.filter((f) => loaded.has(f)).map((f) => loaded.get(f)!), ...unloaded].sort((a, b) => a.file.localeCompare(b.file));
}

export function percent(count: Count): number {
  return count.found === 0 ? 100 : (100 * count.hit) / count.found;
}

export interface Summary {
  lines: Count;
  functions: Count;
  files: number;
  unloaded: number;
  /** Below the floor in lines or functions, least covered lines first. */
  below: FileCoverage[];
  /** The total is below the floor. */
  failed: boolean;
}

export function summarize(files: readonly FileCoverage[], floor: Floor): Summary {
  const sum = (pick: (f: FileCoverage) => Count): Count => ({
    found: files.reduce((n, f) => n + pick(f).found, 0),
    hit: files.reduce((n, f) => n + pick(f).hit, 0),
  });
  const lines = sum((f) => f.lines);
  const functions = sum((f) => f.functions);
  const under = (count: Count, limit: number) => percent(count) + 1e-9 < limit;
  const below = files
    .filter((f) => under(f.lines, floor.lines) || under(f.functions, floor.functions))
    .sort((a, b) => percent(a.lines) - percent(b.lines) || percent(a.functions) - percent(b.functions) || a.file.localeCompare(b.file));
  return {
    lines,
    functions,
    files: files.length,
    unloaded: files.filter((f) => f.unloaded).length,
    below,
    failed: under(lines, floor.lines) || under(functions, floor.functions),
  };
}

export function formatSummary(summary: Summary, floor: Floor): string {
  const pct = (count: Count) => `${percent(count).toFixed(2)}%`;
  const out = [
    `coverage of src/: lines ${pct(summary.lines)} (${summary.lines.hit}/${summary.lines.found}), ` +
      `functions ${pct(summary.functions)} (${summary.functions.hit}/${summary.functions.found}) over all ${summary.files} files, ` +
      `${summary.unloaded} of them loaded by no test (counted at 0 %); floor ${floor.lines}% / ${floor.functions}%`,
  ];
  if (summary.below.length > 0) {
    out.push(`files below the floor (${summary.below.length}): lines, functions, lines hit/found`);
    for (const f of summary.below) {
      const fraction = `${f.lines.hit}/${f.lines.found}`;
      out.push(
        `  ${pct(f.lines).padStart(7)} ${pct(f.functions).padStart(7)}  ${fraction.padEnd(9)} ${f.file}${f.unloaded ? "  (loaded by no test)" : ""}`,
      );
    }
  }
  return out.join("\n");
}

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value < 0 || value > 100) throw new Error(`${name}: ${JSON.stringify(args[at + 1])} is not a percentage`);
  return value;
}

function main(args: string[]): number {
  const lcov = args[0];
  if (lcov === undefined || lcov.startsWith("--")) {
    console.error("usage: bun scripts/coverage.ts LCOV [--floor-lines PERCENT] [--floor-functions PERCENT]");
    return 2;
  }
  try {
    const floor = { lines: option(args, "--floor-lines", 0), functions: option(args, "--floor-functions", 0) };
    const files = coverageOfSources(parseLcov(readFileSync(lcov, "utf8")), sourceFiles(), (unloaded) => countUnloaded(unloaded));
    const summary = summarize(files, floor);
    console.log(formatSummary(summary, floor));
    return summary.failed ? 1 : 0;
  } catch (error) {
    console.error(`coverage of src/: ${(error as Error).message}`);
    return 2;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
