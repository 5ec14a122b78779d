// What the tests that run nqptp.service under a real systemd read back from it: `systemctl show`
// output, and the sandbox systemd applied as /proc/PID/status shows it.

import { expect } from "bun:test";

/** `systemctl show` output (PROPERTY=value lines) as a record. */
export function parseSystemctlShow(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** systemd allocates DynamicUser= ids from this range (and they are in no passwd file). */
export const DYNAMIC_UIDS = Object.freeze({ first: 61184, last: 65519 });

/**
 * Expects the process whose /proc/PID/status is `status` to run as nqptp.service promises: one
 * dynamic user (real, effective, saved and filesystem ids alike, none in `passwd`), exactly
 * CAP_NET_BIND_SERVICE (bit 10) effective and possible, no new privileges, a seccomp filter.
 * Returns the user id.
 */
export function expectSandboxed(status: string, passwd: string): number {
  const uids = status.match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m);
  expect(uids, status).not.toBeNull();
  const uid = Number(uids![1]);
  expect(new Set(uids!.slice(1)).size).toBe(1);
  expect(uid).toBeGreaterThanOrEqual(DYNAMIC_UIDS.first);
  expect(uid).toBeLessThanOrEqual(DYNAMIC_UIDS.last);
  expect(passwd).not.toMatch(new RegExp(`^[^:]*:[^:]*:${uid}:`, "m"));
  expect(status).toMatch(/^CapEff:\s+0000000000000400$/m);
  expect(status).toMatch(/^CapBnd:\s+0000000000000400$/m);
  expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  expect(status).toMatch(/^Seccomp:\s+2$/m); // 2: a filter
  return uid;
}
