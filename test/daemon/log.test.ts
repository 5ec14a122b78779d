import { describe, expect, test } from "bun:test";
import { createLogger, journaldReporter, levelForVerbosity, memoryReporter, wantsPriorityPrefixes } from "../../src/daemon/log.ts";

describe("logging", () => {
  test("verbosity raises the consola level: info, debug, trace", () => {
    expect([0, 1, 2, 3].map(levelForVerbosity)).toEqual([3, 4, 5, 5]);
  });

  test("priority prefixes under journald or when not on a terminal; consola's own output on one", () => {
    expect(wantsPriorityPrefixes({ JOURNAL_STREAM: "8:1234" }, true)).toBe(true);
    expect(wantsPriorityPrefixes({}, false)).toBe(true);
    expect(wantsPriorityPrefixes({}, true)).toBe(false);
  });

  test("the journald reporter writes one line per event with sd-daemon priorities and no colour", () => {
    const lines: string[] = [];
    const logger = createLogger({ verbosity: 1, reporters: [journaldReporter((l) => lines.push(l))] });
    logger.withTag("clock").info("new master 0x01 at 10.0.0.5");
    logger.warn("two\nlines");
    logger.error(new Error("boom"));
    logger.debug("detail");
    logger.trace("not at this verbosity");
    expect(lines).toEqual(["<6>[clock] new master 0x01 at 10.0.0.5\n", "<4>two | lines\n", "<3>boom\n", "<7>detail\n"]);
    expect(lines.join("")).not.toMatch(/\u001b\[/);
  });

  test("a memory reporter captures lines for tests", () => {
    const lines: { level: number; tag: string; message: string }[] = [];
    createLogger({ verbosity: 0, reporters: [memoryReporter(lines)] })
      .withTag("x")
      .info("hello", 42);
    expect(lines).toEqual([{ level: 3, tag: "x", message: "hello 42" }]);
  });
});
