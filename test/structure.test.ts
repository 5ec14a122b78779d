// Code a newcomer can read: no file of src/ over 500 lines, no function over 80 (the daemon's
// start-up wiring, which only connects the parts in order, excepted). Read with TypeScript's own
// parser, so that a function is what the language says it is.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dir, "..");
const MAX_FILE_LINES = 500;
const MAX_FUNCTION_LINES = 80;
/** "file:function" allowed to be longer: the daemon's wiring. */
const EXCEPTIONS = new Set(["src/daemon/daemon.ts:startDaemon"]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Every function of `text` (declarations, methods, arrows, expressions, accessors) longer than `limit` lines. */
function longFunctions(file: string, text: string, limit: number): { name: string; line: number; lines: number }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { name: string; line: number; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name !== undefined && ts.isIdentifier(node.name) ? node.name.text : "(anonymous)";
      if (last - first + 1 > limit) out.push({ name, line: first + 1, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe("the size of what a reader meets", () => {
  test("the check finds a long function wherever it is, and names it", () => {
    const body = Array.from({ length: 90 }, (_, i) => `  x += ${i};`).join("\n");
    const text = `export function long() {\n  let x = 0;\n${body}\n  return x;\n}\nconst short = () => 1;\nclass C { method() {\n${body}\n} }\n`;
    expect(longFunctions("t.ts", text, MAX_FUNCTION_LINES).map((f) => f.name)).toEqual(["long", "method"]);
  });

  const files = sources(join(ROOT, "src"));
  test(`no file of src/ is over ${MAX_FILE_LINES} lines`, () => {
    expect(files.length).toBeGreaterThan(80);
    const long = files
      .map((f) => ({ file: relative(ROOT, f), lines: readFileSync(f, "utf8").split("\n").length }))
      .filter((f) => f.lines > MAX_FILE_LINES);
    expect(long).toEqual([]);
  });

  test(`no function of src/ is over ${MAX_FUNCTION_LINES} lines, but the daemon's wiring`, () => {
    const long: string[] = [];
    for (const f of files) {
      const file = relative(ROOT, f);
      for (const fn of longFunctions(file, readFileSync(f, "utf8"), MAX_FUNCTION_LINES)) {
        if (!EXCEPTIONS.has(`${file}:${fn.name}`)) long.push(`${file}:${fn.line} ${fn.name} (${fn.lines} lines)`);
      }
    }
    expect(long).toEqual([]);
  });
});
