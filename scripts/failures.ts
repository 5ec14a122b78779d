// What each failed test said, from the JUnit report of `bun test --reporter=junit`, printed at the
// end of a run. `bun test` prints a failure's message where the test ran, among thousands of lines;
// its closing list names the failed tests only. A CI log is often read from its end, so
// scripts/test.sh prints this there: each failure's file and title, then its message (the first
// lines, without Bun's stack).
//
//   bun scripts/failures.ts REPORT [--lines N]
//
// Prints nothing when nothing failed. Exit status 0; 2 when the report cannot be read.

import { existsSync, readFileSync } from "node:fs";

export interface Failure {
  file: string;
  /** The describe blocks and the test's name, outermost first. */
  title: string[];
  message: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return ENTITIES[name] ?? whole;
  });
}

function attribute(tag: string, name: string): string | null {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return match ? unescapeXml(match[1]!) : null;
}

/** Every <failure> of the report, with the suites (files, then describe blocks) and test around it. */
export function parseFailures(xml: string): Failure[] {
  const failures: Failure[] = [];
  const suites: string[] = [];
  let file = "";
  let test: string | null = null;
  const tags = /<(\/?)(testsuite|testcase|failure|error)\b([^>]*?)(\/?)>/g;
  for (const match of xml.matchAll(tags)) {
    const [, closing, kind, attributes, selfClosing] = match;
    if (kind === "testsuite") {
      if (closing) suites.pop();
      else {
        if (suites.length === 0) file = attribute(attributes!, "file") ?? attribute(attributes!, "name") ?? "";
        suites.push(attribute(attributes!, "name") ?? "");
      }
    } else if (kind === "testcase") {
      test = closing || selfClosing ? null : attribute(attributes!, "name");
    } else if (!closing) {
      // Its text runs to its closing tag (the report escapes every "<" inside it).
      const body = selfClosing ? "" : xml.slice(match.index + match[0].length).split(`</${kind}>`, 1)[0]!;
      const message = unescapeXml(body) || attribute(attributes!, "message") || "(no message)";
      failures.push({ file, title: [...suites.slice(1), ...(test === null ? [] : [test])], message });
    }
  }
  return failures;
}

/** The message without Bun's stack ("at …" lines), at most `lines` lines. */
export function shortMessage(message: string, lines: number): string {
  const kept = message
    .split("\n")
    .filter((line) => !/^\s+at\s/.test(line))
    .join("\n")
    .trimEnd()
    .split("\n");
  const left = kept.length - lines;
  const cut = left > 0 ? [...kept.slice(0, lines), `… (${left} more line${left === 1 ? "" : "s"} in the log above)`] : kept;
  return cut.map((line) => `    ${line}`).join("\n");
}

export function formatFailures(failures: Failure[], lines: number): string {
  if (failures.length === 0) return "";
  const each = failures.map((f) => `  ${f.file} > ${f.title.join(" > ")}\n${shortMessage(f.message, lines)}`);
  return `what the ${failures.length} failure${failures.length === 1 ? "" : "s"} said:\n${each.join("\n")}\n`;
}

if (import.meta.main) {
  const [report, flag, count] = process.argv.slice(2);
  const lines = flag === "--lines" ? Number(count) : 30;
  if (report === undefined || !existsSync(report) || !Number.isInteger(lines) || lines < 1) {
    console.error("usage: bun scripts/failures.ts REPORT [--lines N] (REPORT: bun test's JUnit report)");
    process.exit(2);
  }
  process.stdout.write(formatFailures(parseFailures(readFileSync(report, "utf8")), lines));
}
