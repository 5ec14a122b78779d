// scripts/failures.ts: what each failed test said, read back from the JUnit report of a real
// `bun test` run (of a few failing tests written here, in a directory of their own).

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatFailures, parseFailures, shortMessage, unescapeXml } from "../../scripts/failures.ts";

// It runs `bun test` in a child process.
setDefaultTimeout(60_000);

const FIXTURE = `import { beforeAll, describe, expect, test } from "bun:test";
describe("outer <&>", () => {
  describe("inner", () => {
    test('deep "quoted"', () => { throw new Error("boom & <x>"); });
  });
  test("passes", () => {});
});
describe("empty", () => {});
test("compares", () => { expect(2, "what it was about\\nsecond line").toBe(1); });
describe("set up", () => {
  beforeAll(() => { throw new Error("setup broke"); });
  test("never runs", () => {});
});
test("times out", async () => { await Bun.sleep(500); }, 50);
`;

let dir = "";
let report = "";
let exitCode: number | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nqptp-failures-"));
  writeFileSync(join(dir, "fixture.test.ts"), FIXTURE);
  const junit = join(dir, "report.xml");
  const run = Bun.spawnSync([process.execPath, "test", "--reporter=junit", `--reporter-outfile=${junit}`, "./fixture.test.ts"], {
    cwd: dir,
    stdout: "ignore",
    stderr: "ignore",
  });
  exitCode = run.exitCode;
  report = readFileSync(junit, "utf8");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a real bun test report", () => {
  test("every failure, with its describe blocks outermost first and its message; passes and empty blocks are not failures", () => {
    expect(exitCode).toBe(1);
    const failures = parseFailures(report);
    expect(failures.map((f) => [f.file, f.title.join(" > ")])).toEqual([
      ["fixture.test.ts", 'outer <&> > inner > deep "quoted"'],
      ["fixture.test.ts", "compares"],
      ["fixture.test.ts", "set up > (unnamed)"],
      ["fixture.test.ts", "times out"],
    ]);
    expect(failures[0]!.message).toContain("Error: boom & <x>");
    expect(failures[1]!.message).toContain("what it was about\nsecond line");
    expect(failures[1]!.message).toContain("Expected: 1");
    expect(failures[2]!.message).toContain("setup broke");
    expect(failures[3]!.message).toContain("timed out");
  });

  test("printed: a heading, then each failure's title and its message without the stack", () => {
    const text = formatFailures(parseFailures(report), 40);
    expect(text.startsWith("what the 4 failures said:\n")).toBe(true);
    expect(text).toContain('  fixture.test.ts > outer <&> > inner > deep "quoted"\n    Error: boom & <x>\n');
    expect(text).not.toMatch(/^\s+at\s/m);
  });
});

describe("the parts", () => {
  test("XML entities, named and numeric", () => {
    expect(unescapeXml("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;&#10;&#x41;&unknown;")).toBe("a & b <c> \"d\" 'e'\nA&unknown;");
  });

  test("a message is cut at N lines, saying how many were left out; trailing blank lines go", () => {
    expect(shortMessage("one\ntwo\nthree\n      at x.ts:1:1\n\n", 2)).toBe("    one\n    two\n    … (1 more line in the log above)");
    expect(shortMessage("one\n\n", 5)).toBe("    one");
  });

  test("nothing failed: nothing is printed", () => {
    expect(formatFailures([], 40)).toBe("");
    expect(parseFailures('<testsuites><testsuite name="a.test.ts" file="a.test.ts"><testcase name="x" /></testsuite></testsuites>')).toEqual([]);
  });
});
