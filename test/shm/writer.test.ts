// The shm writer against a real C reader (test/c/shm-reader.c), for every interface version.

import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chownSync, linkSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INTERFACE_VERSIONS, type InterfaceVersion } from "../../src/rules/interface-version.ts";
import { fieldAt } from "../../src/shm/layouts.ts";
import type { PublishedMaster } from "../../src/clock/effects.ts";
import { openShm, type ShmWriter } from "../../src/shm/writer.ts";
import { SysError } from "../../src/sys/errors.ts";
import { buildCReader } from "../support/c.ts";

// bunfig.toml's [test] timeout is not applied by Bun 1.4.5 (tests stop at the 5 s default), and
// these tests compile C and run child processes: give them room, also on slow or emulated CPUs.
setDefaultTimeout(30_000);

const isRoot = process.geteuid?.() === 0;
const MUTEX_VERSIONS = INTERFACE_VERSIONS.filter((v) => v !== 10);

let reader = "";
beforeAll(async () => {
  reader = await buildCReader();
});

// --- per-test cleanup: every name and writer a test makes is removed, pass or fail ------------

let counter = 0;
const names: string[] = [];
const writers: ShmWriter[] = [];
const children: Bun.Subprocess[] = [];

function uniqueName(): string {
  const name = `/nqptp-test-${process.pid}-${counter++}`;
  names.push(name);
  return name;
}

function open(name: string, version: InterfaceVersion, lockTimeoutMs?: number): ShmWriter {
  const writer = openShm({ name, version, lockTimeoutMs });
  writers.push(writer);
  return writer;
}

afterEach(() => {
  for (const child of children.splice(0)) child.kill(9);
  for (const writer of writers.splice(0)) {
    try {
      writer.close();
    } catch {
      // the test already failed, or checks close() itself
    }
  }
  for (const name of names.splice(0)) rmSync(`/dev/shm${name}`, { force: true, recursive: true });
});

// --- the C reader ---------------------------------------------------------------------------

interface Reading {
  version: number;
  clock_id: string;
  ip?: string;
  local_time: string;
  offset: string;
  start_time: string;
}

async function readOnce(name: string, version: InterfaceVersion, ...args: string[]): Promise<{ lines: unknown[]; code: number; stderr: string }> {
  const child = Bun.spawn([reader, name, String(version), ...args], { stdout: "pipe", stderr: "pipe" });
  children.push(child);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const lines = stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
  return { lines, code, stderr };
}

async function read(name: string, version: InterfaceVersion): Promise<Reading> {
  const { lines, code, stderr } = await readOnce(name, version);
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  expect(lines.length).toBe(1);
  return lines[0] as Reading;
}

interface LockHolder {
  child: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** The rest of its stdout, after "locked". */
  rest(): Promise<string>;
}

/** Start the reader holding the lock; resolves once it has printed "locked". */
async function holdLock(name: string, version: InterfaceVersion, holdMs: number): Promise<LockHolder> {
  const child = Bun.spawn([reader, name, String(version), "--hold-ms", String(holdMs)], { stdout: "pipe", stderr: "pipe" });
  children.push(child);
  const stream = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const timer = setTimeout(() => child.kill(9), 5000);
  try {
    while (!text.includes("locked\n")) {
      const { value, done } = await stream.read();
      if (done) throw new Error(`reader exited before locking: ${text} ${await new Response(child.stderr).text()}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
  const rest = async () => {
    let more = text.slice(text.indexOf("locked\n") + "locked\n".length);
    for (;;) {
      const { value, done } = await stream.read();
      if (done) return more + decoder.decode();
      more += decoder.decode(value, { stream: true });
    }
  };
  return { child, rest };
}

const hex = (n: bigint) => `0x${n.toString(16).padStart(16, "0")}`;

const RECORD: PublishedMaster = {
  clockId: 0xfedc_ba98_7654_3210n, // above 2^63: must be written unsigned
  ip: "192.168.50.17",
  localTimeNs: 1_722_000_000_123_456_789n,
  offsetNs: (1n << 64n) - 1_000_000n, // a negative offset, already reduced to u64
  masterStartTimeNs: 1_721_999_990_000_000_000n,
};

function expected(version: InterfaceVersion, record: PublishedMaster | null): Reading {
  const r = record ?? { clockId: 0n, ip: "", localTimeNs: 0n, offsetNs: 0n, masterStartTimeNs: 0n };
  return {
    version,
    clock_id: hex(r.clockId),
    ...(version === 10 ? {} : { ip: r.ip }),
    local_time: String(r.localTimeNs),
    offset: String(r.offsetNs),
    start_time: String(r.masterStartTimeNs),
  };
}

// --- creation ---------------------------------------------------------------------------------

describe("creating the region", () => {
  for (const version of INTERFACE_VERSIONS) {
    test(`version ${version}: size, mode (despite umask 022), version field, zeros`, () => {
      const name = uniqueName();
      const previousUmask = process.umask(0o022);
      let writer: ShmWriter;
      try {
        writer = open(name, version);
      } finally {
        process.umask(previousUmask);
      }
      const { layout } = writer;
      expect(writer.path).toBe(`/dev/shm${name}`);
      const st = statSync(writer.path);
      expect(st.size).toBe(layout.size);
      expect((st.mode & 0o777).toString(8)).toBe(layout.mode.toString(8));
      expect((st.mode & 0o777).toString(8)).toBe(version === 10 ? "644" : "666");
      expect(st.uid).toBe(process.geteuid!());
      expect(writer.reusedStaleRegion).toBe(false);

      const bytes = readFileSync(writer.path);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      expect(view.getUint16(fieldAt(layout, "version").offset, true)).toBe(version);
      // Everything but the mutex and the version is zero.
      for (const field of layout.fields) {
        if (field.kind === "pthread_mutex_t" || field.path === "version") continue;
        expect([field.path, [...bytes.subarray(field.offset, field.offset + field.size)].some((b) => b !== 0)]).toEqual([field.path, false]);
      }
    });
  }

  test("a region another running writer serves is refused, never taken over as stale", () => {
    const name = uniqueName();
    const first = openShm({ name, version: 10 });
    try {
      first.publish(RECORD);
      const before = readFileSync(first.path);
      expect(() => openShm({ name, version: 10 })).toThrow(/is in use by another running nqptp/);
      // Untouched, and still the first writer's: its next record lands.
      expect(readFileSync(first.path)).toEqual(before);
      first.publish({ ...RECORD, offsetNs: 42n });
      expect(readFileSync(first.path).equals(before)).toBe(false);
    } finally {
      first.close();
    }
    // Once it is closed (as when its process ends) the name is free again.
    const again = openShm({ name, version: 10 });
    expect(again.reusedStaleRegion).toBe(false);
    again.close();
  });

  test("an invalid name is refused with a clear error", () => {
    const error = (() => {
      try {
        openShm({ name: "nqptp", version: 5 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SysError);
    expect((error as SysError).code).toBe("EINVAL");
    expect((error as SysError).message).toContain('invalid shared-memory name "nqptp"');
  });

  test("an unsupported or foreign architecture is refused at open time", () => {
    expect(() => openShm({ name: uniqueName(), version: 5, arch: "ia32" })).toThrow(/unsupported architecture "ia32"/);
    const other = process.arch === "arm64" ? "x64" : "arm64";
    expect(() => openShm({ name: uniqueName(), version: 5, arch: other })).toThrow(`cannot write the ${other} shared-memory layout`);
  });

  test("unknown versions and bad timeouts are refused", () => {
    expect(() => openShm({ name: uniqueName(), version: 7 as InterfaceVersion })).toThrow(/unknown shared-memory interface version 7/);
    expect(() => openShm({ name: uniqueName(), version: 5, lockTimeoutMs: -1 })).toThrow(/lockTimeoutMs/);
  });
});

describe("what a C reader sees", () => {
  for (const version of INTERFACE_VERSIONS) {
    test(`version ${version}: publish, then publish(null)`, async () => {
      const name = uniqueName();
      const writer = open(name, version);
      expect(await read(name, version)).toEqual(expected(version, null));
      expect(writer.publish(RECORD)).toBe("written");
      expect(await read(name, version)).toEqual(expected(version, RECORD));
      expect(writer.publish(null)).toBe("written");
      expect(await read(name, version)).toEqual(expected(version, null));
    });
  }

  test("the IP is truncated to 63 bytes and NUL-terminated", async () => {
    const name = uniqueName();
    const writer = open(name, 9);
    const long = "fe80::1234:5678:9abc:def0%a-very-long-interface-name-that-goes-on-and-on";
    writer.publish({ ...RECORD, ip: long });
    expect((await read(name, 9)).ip).toBe(long.slice(0, 63));
    writer.publish({ ...RECORD, ip: "10.0.0.2" }); // a shorter one leaves no trace of the longer
    expect((await read(name, 9)).ip).toBe("10.0.0.2");
  });

  test("a reader that expects another version is told so", async () => {
    const name = uniqueName();
    open(name, 8);
    const { lines, code } = await readOnce(name, 9);
    expect(code).toBe(3);
    expect(lines).toEqual([{ error: "version", expected: 9, found: 8 }]);
  });
});

describe("closing", () => {
  test("close() unlinks, is idempotent, and publish() afterwards throws", () => {
    const name = uniqueName();
    const writer = open(name, 10);
    expect(lstatSync(writer.path).isFile()).toBe(true);
    writer.close();
    expect(lstatSync(writer.path, { throwIfNoEntry: false })).toBeUndefined();
    writer.close();
    expect(() => writer.publish(RECORD)).toThrow(/is closed/);
  });

  test("close() does not unlink a region that is no longer ours", () => {
    const name = uniqueName();
    const writer = open(name, 5);
    rmSync(writer.path);
    writeFileSync(writer.path, "someone else's");
    writer.close();
    expect(readFileSync(writer.path, "utf8")).toBe("someone else's");
  });
});

// --- existing objects: refuse anything but our own stale region ------------------------------

function refusal(name: string, version: InterfaceVersion = 5): SysError {
  try {
    open(name, version);
  } catch (e) {
    expect(e).toBeInstanceOf(SysError);
    return e as SysError;
  }
  throw new Error("openShm did not refuse");
}

describe("an existing object", () => {
  test.skipIf(!isRoot)("owned by another uid is refused and left untouched (needs root to chown; skipped otherwise)", () => {
    const name = uniqueName();
    const path = `/dev/shm${name}`;
    writeFileSync(path, "not yours", { mode: 0o644 });
    chownSync(path, 65534, 65534);
    const error = refusal(name);
    expect(error.message).toBe(`${path} exists and belongs to uid 65534; remove it or choose --shm-name`);
    expect(error.call).toBe("shm_open");
    const st = statSync(path);
    expect([readFileSync(path, "utf8"), st.uid, st.mode & 0o777, st.size]).toEqual(["not yours", 65534, 0o644, 9]);
  });

  test("a symlink is refused and its target left untouched", () => {
    const name = uniqueName();
    const path = `/dev/shm${name}`;
    const target = join(tmpdir(), `nqptp-test-${process.pid}-target`);
    writeFileSync(target, "precious");
    try {
      symlinkSync(target, path);
      const error = refusal(name);
      expect(error.code).toBe("ELOOP");
      expect(error.message).toBe(`${path} is a symbolic link (refusing to follow it); remove it or choose --shm-name`);
      expect(readFileSync(target, "utf8")).toBe("precious");
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
    } finally {
      rmSync(target, { force: true });
    }
  });

  test("a directory, a FIFO and a hard-linked file are refused", () => {
    const dir = uniqueName();
    mkdirSync(`/dev/shm${dir}`);
    expect(refusal(dir).message).toContain("exists and is a directory");

    const fifo = uniqueName();
    expect(Bun.spawnSync(["mkfifo", `/dev/shm${fifo}`]).exitCode).toBe(0);
    expect(refusal(fifo).message).toContain("exists and is not a regular file");

    const linked = uniqueName();
    const other = uniqueName();
    writeFileSync(`/dev/shm${linked}`, "x");
    linkSync(`/dev/shm${linked}`, `/dev/shm${other}`);
    expect(refusal(linked).message).toContain("exists and has 2 hard links");
    expect(readFileSync(`/dev/shm${linked}`, "utf8")).toBe("x");
  });

  test("our own stale region of the wrong size and mode is reclaimed and reinitialised", async () => {
    const name = uniqueName();
    const path = `/dev/shm${name}`;
    writeFileSync(path, Buffer.alloc(1000, 0xab), { mode: 0o600 });
    const writer = open(name, 6);
    expect(writer.reusedStaleRegion).toBe(true);
    const st = statSync(path);
    expect([st.size, st.mode & 0o777]).toEqual([writer.layout.size, 0o666]);
    expect(await read(name, 6)).toEqual(expected(6, null));
    writer.publish(RECORD);
    expect(await read(name, 6)).toEqual(expected(6, RECORD));
  });
});

// --- the mutex ------------------------------------------------------------------------------

describe("the mutex (versions 5–9)", () => {
  test("a reader holding the lock makes publish() give up ('busy') while the reader still holds it, then it writes", async () => {
    const name = uniqueName();
    const writer = open(name, 9, 2);
    writer.publish(RECORD);
    const holder = await holdLock(name, 9, 1500);
    // A writer that waited for the reader would get the lock once it let go, and write: every
    // "busy" is an update given up while the lock was held. (How long the bounded wait takes is
    // measured by bench/shm-lock.ts.)
    for (let i = 0; i < 3; i++) expect(writer.publish({ ...RECORD, clockId: 1n })).toBe("busy");
    expect(holder.child.exitCode).toBeNull(); // it still holds the lock
    expect(await holder.rest()).toBe(`${JSON.stringify(expected(9, RECORD))}\n`);
    expect(await holder.child.exited).toBe(0);
    expect(writer.publish({ ...RECORD, clockId: 2n })).toBe("written");
    expect((await read(name, 9)).clock_id).toBe(hex(2n));
    expect(writer.recoveredOwnerDead).toBe(0);
  });

  for (const version of MUTEX_VERSIONS) {
    test(`version ${version}: a reader killed while holding the lock does not block the writer`, async () => {
      const name = uniqueName();
      const writer = open(name, version);
      const { child: holder } = await holdLock(name, version, 60_000);
      holder.kill(9);
      await holder.exited;
      expect(writer.publish(RECORD)).toBe("written");
      expect(writer.recoveredOwnerDead).toBe(1);
      expect(await read(name, version)).toEqual(expected(version, RECORD));
      expect(writer.publish(null)).toBe("written");
      expect(writer.recoveredOwnerDead).toBe(1);
    });
  }

  test("a mutex left unrecoverable by a careless reader is re-initialised", async () => {
    const name = uniqueName();
    const writer = open(name, 5);
    const { child: holder } = await holdLock(name, 5, 60_000);
    holder.kill(9);
    await holder.exited;
    // This reader gets EOWNERDEAD and unlocks without pthread_mutex_consistent.
    const careless = await readOnce(name, 5, "--no-consistent");
    expect(careless.code).toBe(0);
    // Now every lock fails with ENOTRECOVERABLE, including a normal reader's.
    const blocked = await readOnce(name, 5);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain("State not recoverable");
    expect(writer.publish(RECORD)).toBe("written");
    expect(writer.reinitialisedMutex).toBe(1);
    expect(await read(name, 5)).toEqual(expected(5, RECORD));
  });
});

// --- concurrent writer and reader -----------------------------------------------------------

interface Summary {
  reads: number;
  accepted: number;
  torn: number;
  retries: number;
  violations: number;
  changes: number;
}

async function stress(version: InterfaceVersion, readMs: number): Promise<{ summary: Summary; writer: { published: number; busy: number } }> {
  const name = uniqueName();
  const script = join(import.meta.dir, "stress-writer.ts");
  const writerProcess = Bun.spawn([process.execPath, script, name, String(version), String(readMs + 1000)], { stdout: "pipe", stderr: "pipe" });
  children.push(writerProcess);
  const out = writerProcess.stdout.getReader();
  const first = new TextDecoder().decode((await out.read()).value);
  expect(first).toBe("ready\n");
  const result = await readOnce(name, version, "--loop-ms", String(readMs), "--summary", "--check-derived");
  let rest = "";
  for (;;) {
    const { value, done } = await out.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  expect(await writerProcess.exited).toBe(0);
  expect(result.stderr).toBe("");
  return { summary: result.lines[0] as Summary, writer: JSON.parse(rest) };
}

describe("concurrent writer and reader", () => {
  test("version 10: no torn record is ever accepted (10 s)", async () => {
    const { summary, writer } = await stress(10, 10_000);
    console.log("v10 stress:", JSON.stringify(summary), JSON.stringify(writer));
    expect(summary.violations).toBe(0);
    expect(summary.accepted).toBeGreaterThan(1000);
    expect(summary.changes).toBeGreaterThan(100); // the writer really was writing meanwhile
  });

  test("version 9: the mutex keeps every record whole (1.5 s)", async () => {
    const { summary, writer } = await stress(9, 1500);
    console.log("v9 stress:", JSON.stringify(summary), JSON.stringify(writer));
    expect(summary.violations).toBe(0);
    expect(summary.torn).toBe(0);
    expect(summary.changes).toBeGreaterThan(100);
  });
});
