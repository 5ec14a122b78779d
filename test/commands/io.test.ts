import { describe, expect, spyOn, test } from "bun:test";
import { processIo } from "../../src/commands/io.ts";

describe("processIo", () => {
  test("one line per call: out to standard output, err to standard error", () => {
    const out = spyOn(process.stdout, "write").mockImplementation(() => true);
    const err = spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      processIo.out("to stdout");
      processIo.err("to stderr");
      expect(out.mock.calls).toEqual([["to stdout\n"]]);
      expect(err.mock.calls).toEqual([["to stderr\n"]]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});
