// The one table of exit statuses: its sysexits(3) entries are the C library's own values, and
// every failure an NqptpError can carry exits with one of them.

import { describe, expect, test } from "bun:test";
import { EXIT } from "../../src/cli/exit-status.ts";
import { NqptpError, type ErrorCode } from "../../src/errors.ts";
import { compileAndRun } from "../support/c.ts";

/** The table's sysexits entries, by their names in <sysexits.h>. */
const SYSEXITS = {
  EX_OK: EXIT.ok,
  EX_USAGE: EXIT.usage,
  EX_UNAVAILABLE: EXIT.unavailable,
  EX_SOFTWARE: EXIT.software,
  EX_OSERR: EXIT.osError,
  EX_CANTCREAT: EXIT.cantCreate,
  EX_IOERR: EXIT.ioError,
  EX_NOPERM: EXIT.noPermission,
} as const;

describe("exit statuses", () => {
  test("the sysexits entries are what <sysexits.h> says", async () => {
    const names = Object.keys(SYSEXITS);
    const out = await compileAndRun(
      `#include <stdio.h>\n#include <sysexits.h>\nint main(void) {\n${names.map((n) => `  printf("%s %d\\n", "${n}", ${n});`).join("\n")}\n  return 0;\n}\n`,
      "sysexits",
    );
    const fromC = Object.fromEntries(
      out
        .trim()
        .split("\n")
        .map((line) => line.split(" "))
        .map(([name, value]) => [name, Number(value)]),
    );
    expect(fromC).toEqual(SYSEXITS);
  });

  test("status's own answers are the LSB ones (1 stale, 3 not running) and clash with no sysexits value", () => {
    expect([EXIT.stale, EXIT.notRunning]).toEqual([1, 3]);
    const values = Object.values(EXIT);
    expect(new Set(values).size).toBe(values.length);
  });

  test("every NqptpError exits with the status the README documents for it", () => {
    const codes: Record<ErrorCode, true> = {
      usage: true,
      "bind-permission": true,
      "bind-in-use": true,
      "bind-failed": true,
      shm: true,
      "unsupported-platform": true,
    };
    const statuses = Object.keys(codes).map((code) => [code, new NqptpError(code as ErrorCode, "x").exitStatus]);
    // README: a bad option 64; a port: permission 77, in use 69; shared memory 71.
    expect(Object.fromEntries(statuses)).toEqual({
      usage: 64,
      "bind-permission": 77,
      "bind-in-use": 69,
      "bind-failed": 71,
      shm: 71,
      "unsupported-platform": 69,
    });
  });
});
