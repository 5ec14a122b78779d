// scripts/coverage.ts: the coverage of every file of src/, a file no test loads at 0 %, with Bun's
// own counts of its lines and functions.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countUnloaded, coverageOfSources, formatSummary, parseLcov, sourceFiles, summarize, type FileCoverage } from "../../scripts/coverage.ts";
import { ROOT } from "../support/daemon.ts";

// Two of these run `bun test --coverage` in a child process.
setDefaultTimeout(60_000);

const file = (name: string, lines: [number, number], functions: [number, number], unloaded = false): FileCoverage => ({
  file: name,
  lines: { hit: lines[0], found: lines[1] },
  functions: { hit: functions[0], found: functions[1] },
  unloaded,
});

describe("reading Bun's lcov report", () => {
  test("one record per SF, its LF/LH/FNF/FNH; absolute paths made relative to the repository", () => {
    const report = [
      "TN:",
      "SF:src/a.ts",
      "FNF:4",
      "FNH:3",
      "DA:1,1",
      "DA:2,0",
      "LF:20",
      "LH:15",
      "end_of_record",
      "TN:",
      `SF:${join(ROOT, "src", "b.ts")}`,
      "FNF:0",
      "FNH:0",
      "LF:0",
      "LH:0",
      "end_of_record",
      "",
    ].join("\n");
    expect(parseLcov(report, ROOT)).toEqual([file("src/a.ts", [15, 20], [3, 4]), file("src/b.ts", [0, 0], [0, 0])]);
  });
});

describe("every file of src/", () => {
  test("sourceFiles: each .ts below src/, not the .d.ts declarations, not other folders", () => {
    const root = mkdtempSync(join(tmpdir(), "nqptp-coverage-test-"));
    try {
      for (const path of ["src/main.ts", "src/x/y.ts", "src/x/text.d.ts", "src/notes.md", "test/z.test.ts"]) {
        mkdirSync(join(root, path, ".."), { recursive: true });
        writeFileSync(join(root, path), "");
      }
      expect(sourceFiles(root)).toEqual(["src/main.ts", "src/x/y.ts"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a file the report lacks is counted by the counter, at 0; files outside src/ are left out", () => {
    const report = [file("src/a.ts", [9, 10], [1, 1]), file("test/support/x.ts", [5, 5], [1, 1])];
    const asked: string[][] = [];
    const files = coverageOfSources(report, ["src/a.ts", "src/b.ts"], (unloaded) => {
      asked.push([...unloaded]);
      return unloaded.map((f) => file(f, [0, 30], [0, 4], true));
    });
    expect(asked).toEqual([["src/b.ts"]]);
    expect(files).toEqual([file("src/a.ts", [9, 10], [1, 1]), file("src/b.ts", [0, 30], [0, 4], true)]);
  });
});

describe("the total and the floor", () => {
  const files = [file("src/a.ts", [90, 100], [9, 10]), file("src/b.ts", [0, 50], [0, 5], true), file("src/c.ts", [50, 50], [2, 2])];

  test("the total is over every file, the unloaded ones at 0 %", () => {
    const summary = summarize(files, { lines: 0, functions: 0 });
    expect(summary).toMatchObject({ lines: { hit: 140, found: 200 }, functions: { hit: 11, found: 17 }, files: 3, unloaded: 1, failed: false });
  });

  test("files below the floor in lines or functions are listed, least covered first; at the floor is not below", () => {
    // The total: 70.00 % of the lines, 64.71 % of the functions.
    const atFloor = summarize(files, { lines: 70, functions: 60 });
    expect(atFloor.below.map((f) => f.file)).toEqual(["src/b.ts"]);
    expect(atFloor.failed).toBe(false);
    expect(summarize(files, { lines: 70.01, functions: 60 }).failed).toBe(true);
    expect(summarize(files, { lines: 70, functions: 64.72 }).failed).toBe(true);
    expect(summarize(files, { lines: 95, functions: 95 }).below.map((f) => f.file)).toEqual(["src/b.ts", "src/a.ts"]);
  });

  test("the report says what was counted and names the unloaded files", () => {
    const text = formatSummary(summarize(files, { lines: 95, functions: 95 }), { lines: 95, functions: 95 });
    expect(text).toStartWith("coverage of src/: lines 70.00% (140/200), functions 64.71% (11/17) over all 3 files, 1 of them loaded by no test");
    expect(text).toContain("files below the floor (2)");
    expect(text).toMatch(/ {2}0\.00% {3}0\.00% {2}0\/50 +src\/b\.ts {2}\(loaded by no test\)/);
    expect(text).toMatch(/90\.00% {2}90\.00% {2}90\/100 +src\/a\.ts$/m);
  });
});

/** A bun test --coverage run of `testFile` with `root` as its working directory: its lcov records. */
function exercised(root: string, testFile: string): FileCoverage[] {
  const dir = mkdtempSync(join(tmpdir(), "nqptp-coverage-test-"));
  try {
    const run = Bun.spawnSync([process.execPath, "test", "--coverage", "--coverage-reporter=lcov", `--coverage-dir=${dir}`, testFile], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    if (run.exitCode !== 0) throw new Error(`${testFile} failed: ${run.stderr.toString()}`);
    return parseLcov(readFileSync(join(dir, "lcov.info"), "utf8"), root);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("counting a file no test loads", () => {
  test("lines as Bun counts them for the file when its tests run it; functions as Bun counts them once all of them ran", () => {
    // Functions of every kind, nested ones too, which Bun sees only once they are created.
    const root = mkdtempSync(join(tmpdir(), "nqptp-coverage-test-"));
    try {
      mkdirSync(join(root, "src"));
      writeFileSync(
        join(root, "src", "shapes.ts"),
        [
          "export class Box {",
          "  #v = 0;",
          "  constructor(v: number) {",
          "    this.#v = v;",
          "  }",
          "  get value(): number {",
          "    return this.#v;",
          "  }",
          "  set value(v: number) {",
          "    this.#v = v;",
          "  }",
          "  twice(): number {",
          "    return [this.#v].map((x) => x * 2)[0]!;",
          "  }",
          "}",
          "export function outer(n: number): number {",
          "  const inner = function (k: number) {",
          "    return k + 1;",
          "  };",
          "  return inner(n);",
          "}",
          "export const viaObject = (x: number) => ({ m() { return x; } }).m();",
          "declare function notCode(): void;",
          "",
        ].join("\n"),
      );
      writeFileSync(
        join(root, "shapes.test.ts"),
        [
          'import { expect, test } from "bun:test";',
          'import { Box, outer, viaObject } from "./src/shapes.ts";',
          'test("all", () => {',
          "  const box = new Box(2);",
          "  box.value = 3;",
          "  expect([box.value, box.twice(), outer(1), viaObject(4)]).toEqual([3, 6, 2, 4]);",
          "});",
          "",
        ].join("\n"),
      );
      const ran = exercised(root, "./shapes.test.ts").find((f) => f.file === "src/shapes.ts")!;
      expect(ran.functions.hit).toBe(ran.functions.found); // every function ran
      const [counted] = countUnloaded(["src/shapes.ts"], root);
      expect(counted).toEqual(file("src/shapes.ts", [0, ran.lines.found], [0, ran.functions.found], true));
      expect(counted!.functions.found).toBe(9);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("the same for a file of src/: src/util/rate-limit.ts, against what its tests make Bun report", () => {
    const ran = exercised(ROOT, join(ROOT, "test", "util", "rate-limit.test.ts")).find((f) => f.file === "src/util/rate-limit.ts")!;
    expect(ran.lines.hit).toBeGreaterThan(0);
    const [counted] = countUnloaded(["src/util/rate-limit.ts"]);
    expect(counted).toEqual(file("src/util/rate-limit.ts", [0, ran.lines.found], [0, ran.functions.found], true));
  });

  test("the entry points are counted without running them", () => {
    // Run on import, src/main.ts would refuse the command line the count hands it (exit 64), and
    // the count would fail: it must not run (import.meta.main).
    const counted = countUnloaded(["src/main.ts", "src/worker.ts"]);
    expect(counted.map((f) => [f.file, f.lines.hit, f.functions.hit])).toEqual([
      ["src/main.ts", 0, 0],
      ["src/worker.ts", 0, 0],
    ]);
    expect(counted.every((f) => f.lines.found > 0)).toBe(true);
  });

  test("a file Bun cannot load is an error that names it, not a file left out", () => {
    const root = mkdtempSync(join(tmpdir(), "nqptp-coverage-test-"));
    try {
      mkdirSync(join(root, "src"));
      writeFileSync(join(root, "src", "broken.ts"), 'throw new Error("broken at load");\n');
      writeFileSync(join(root, "src", "fine.ts"), "export const x = 1;\n");
      expect(() => countUnloaded(["src/fine.ts", "src/broken.ts"], root)).toThrow(/src\/broken\.ts.*\n[\s\S]*broken at load/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
