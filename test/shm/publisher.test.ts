// The regions the daemon publishes to (src/shm/publisher.ts), through PublisherOptions.open: real
// regions where that is what is tested, and a writer whose answers the test chooses where the
// lock's outcomes are (a reader holding it: "busy"; one that died holding it: recovered). Timers
// are Bun's fake ones.

import { afterEach, beforeEach, describe, expect, jest, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import type { PublishedMaster } from "../../src/clock/effects.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import { NqptpError } from "../../src/errors.ts";
import type { InterfaceVersion } from "../../src/rules/interface-version.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { Publisher, SHM_RETRY_MS, type PublisherOptions } from "../../src/shm/publisher.ts";
import { openShm, type PublishResult, type ShmWriter, type ShmWriterOptions } from "../../src/shm/writer.ts";
import { ENOSPC, SysError } from "../../src/sys/errors.ts";
import { HOST_ARCH } from "../../src/sys/linux.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { uniqueShmName } from "../support/daemon.ts";

const cleanups = cleanupAfterEach();
beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const LEVELS: Record<number, string> = { 0: "error", 1: "warn", 3: "info", 4: "debug" };

const record = (clockId: bigint, ip = "10.0.0.5", localTimeNs = 1_000n): PublishedMaster => ({
  clockId,
  ip,
  localTimeNs,
  offsetNs: 77n,
  masterStartTimeNs: 900n,
});

type Answer = "written" | "busy" | "owner-died";

/** A writer that gives the answers it is told to (then "written"), and keeps what it wrote. */
class ScriptedWriter implements ShmWriter {
  readonly path: string;
  readonly layout;
  readonly reusedStaleRegion = false;
  recoveredOwnerDead = 0;
  readonly reinitialisedMutex = 0;
  readonly written: (PublishedMaster | null)[] = [];
  closed = false;

  constructor(
    readonly name: string,
    version: InterfaceVersion,
    private readonly answers: Answer[],
    private readonly closeError: Error | null = null,
  ) {
    this.path = `/dev/shm${name}`;
    this.layout = layoutFor(version, HOST_ARCH!);
  }

  publish(record: PublishedMaster | null): PublishResult {
    const answer = this.answers.shift() ?? "written";
    if (answer === "busy") return "busy";
    // A reader died holding the lock: the real writer recovers it (pthread_mutex_consistent) and writes.
    if (answer === "owner-died") this.recoveredOwnerDead++;
    this.written.push(record);
    return "written";
  }

  close(): void {
    this.closed = true;
    if (this.closeError) throw this.closeError;
  }
}

function setUp(options: Partial<PublisherOptions> = {}) {
  const lines: { level: number; tag: string; message: string }[] = [];
  const warnings: { key: string; message: string }[] = [];
  const statuses: string[] = [];
  const mainName = options.mainName ?? uniqueShmName("publisher");
  const publisher = new Publisher({
    interfaceVersion: 9,
    mainName,
    maxClients: 3,
    log: createLogger({ verbosity: 1, reporters: [memoryReporter(lines)] }),
    warnLimited: (key, message) => warnings.push({ key, message }),
    onStatus: (status) => statuses.push(status),
    ...options,
  });
  cleanups.push(() => publisher.close());
  return { publisher, mainName, warnings, statuses, logged: () => lines.map((l) => `${LEVELS[l.level] ?? l.level} ${l.message}`) };
}

describe("the main region", () => {
  test("openMain creates it (real shared memory); close removes it, once", () => {
    const t = setUp();
    const writer = t.publisher.openMain();
    expect(writer.path).toBe(`/dev/shm${t.mainName}`);
    expect(existsSync(writer.path)).toBe(true);
    expect(t.publisher.statusText()).toBe(`no master; interface 9 at ${t.mainName}`);
    expect(t.publisher.names()).toEqual([t.mainName]);
    t.publisher.close();
    t.publisher.close();
    expect(existsSync(writer.path)).toBe(false);
  });

  test("a stale region of ours from a crash is replaced, and the log says so", () => {
    const t = setUp();
    writeFileSync(`/dev/shm${t.mainName}`, Buffer.alloc(17), { mode: 0o600 });
    t.publisher.openMain();
    expect(t.logged()).toEqual([`warn replaced a stale /dev/shm${t.mainName} left by an earlier run of ours`]);
  });

  test("a region that cannot be made is an NqptpError('shm') naming it: the daemon cannot run", () => {
    const failing = setUp({
      open: () => {
        throw new SysError("shm_open", 13, { subject: '"/x"', description: "Permission denied" });
      },
    });
    const error = (() => {
      try {
        failing.publisher.openMain();
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(NqptpError);
    expect(error).toMatchObject({ code: "shm", message: `shared memory ${failing.mainName}: shm_open("/x") failed: Permission denied (EACCES)` });
    expect((error as NqptpError).exitStatus).toBe(71);

    const refused = new NqptpError("shm", "shared memory /x exists and belongs to uid 1000");
    const ours = setUp({
      open: () => {
        throw refused;
      },
    });
    expect(() => ours.publisher.openMain()).toThrow(refused);
  });
});

describe("a reader holding the lock", () => {
  test("busy: warned once, retried every SHM_RETRY_MS with the newest record; then a reader that died holding it is recovered", () => {
    let writer: ScriptedWriter | null = null;
    const t = setUp({
      open: (o: ShmWriterOptions) => {
        writer = new ScriptedWriter(o.name, o.version, ["busy", "busy", "busy", "owner-died"]);
        return writer;
      },
    });
    t.publisher.openMain();
    const w = writer!;

    t.publisher.publish(t.mainName, record(1n));
    expect(t.logged()).toEqual([
      `warn a client is holding the shared memory lock of ${t.mainName}; skipping updates until it lets go ` +
        "(clients must hold it only long enough to copy the record)",
    ]);
    expect(jest.getTimerCount()).toBe(1);
    t.publisher.publish(t.mainName, record(2n)); // busy again: one retry timer still, the newest record pending
    expect(jest.getTimerCount()).toBe(1);
    expect(t.logged()).toHaveLength(1);
    expect(t.publisher.counters()).toEqual({ written: 0, busy: 2, refused: 0, regions: 1 });

    jest.advanceTimersByTime(SHM_RETRY_MS - 1);
    expect(w.written).toEqual([]);
    jest.advanceTimersByTime(1); // the retry: busy once more, so another
    expect(w.written).toEqual([]);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(SHM_RETRY_MS); // the reader died holding the lock: recovered, written
    expect(w.written).toEqual([record(2n)]);
    expect(jest.getTimerCount()).toBe(0);
    expect(t.logged().slice(1)).toEqual([
      `warn a client died holding the shared memory lock of ${t.mainName}; the lock was recovered`,
      expect.stringMatching(new RegExp(`^info shared memory lock of ${t.mainName} free again after \\d+ ms; publishing resumed$`)),
    ]);
    expect(t.publisher.counters()).toEqual({ written: 1, busy: 3, refused: 0, regions: 1 });

    t.publisher.publish(t.mainName, null);
    expect(w.written).toEqual([record(2n), null]);
    expect(t.logged()).toHaveLength(3);
  });

  test("a retry that throws is warned about and the daemon goes on; close() cancels a retry still to come", () => {
    const writers: ScriptedWriter[] = [];
    const t = setUp({
      open: (o) => {
        const w = new ScriptedWriter(o.name, o.version, ["busy"]);
        writers.push(w);
        return w;
      },
    });
    t.publisher.openMain();
    t.publisher.publish(t.mainName, record(1n));
    writers[0]!.publish = () => {
      throw new Error("the region went away");
    };
    jest.advanceTimersByTime(SHM_RETRY_MS);
    expect(t.warnings).toEqual([{ key: "shm:retry", message: `could not write ${t.mainName}: the region went away` }]);

    const u = setUp({ open: (o) => new ScriptedWriter(o.name, o.version, ["busy"]) });
    u.publisher.openMain();
    u.publisher.publish(u.mainName, record(1n));
    expect(jest.getTimerCount()).toBe(1);
    u.publisher.close();
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe("clients (interfaces 8-10)", () => {
  test("a new client gets a real region, logged; the status line names who each region follows, on change only", () => {
    const t = setUp({ interfaceVersion: 10 });
    t.publisher.openMain();
    const kitchen = uniqueShmName("kitchen");
    expect(t.publisher.openClient(kitchen)).toBe(true);
    expect(t.publisher.openClient(kitchen)).toBe(true); // already there
    expect(existsSync(`/dev/shm${kitchen}`)).toBe(true);
    expect(t.logged()).toEqual([`info new client ${kitchen}: created /dev/shm${kitchen} (2 of at most 3)`]);
    expect(t.statuses).toEqual([`2 clients: ${t.mainName} idle, ${kitchen} idle; interface 10`]);

    t.publisher.publish(kitchen, record(0xabn, "10.0.0.9", 1n));
    t.publisher.publish(kitchen, record(0xabn, "10.0.0.9", 2n)); // a new sample: no new status
    t.publisher.publish("/nqptp-never-opened", record(1n)); // no such region: nothing
    expect(t.statuses).toEqual([
      `2 clients: ${t.mainName} idle, ${kitchen} idle; interface 10`,
      `2 clients: ${t.mainName} idle, ${kitchen} following 10.0.0.9; interface 10`,
    ]);
    expect(t.publisher.counters()).toMatchObject({ written: 2, regions: 2 });
    t.publisher.close();
    expect(existsSync(`/dev/shm${kitchen}`)).toBe(false);
  });

  test("a full /dev/shm for a new client: that client is refused with a warning, every other one goes on", () => {
    const full = uniqueShmName("full");
    const t = setUp({
      interfaceVersion: 10,
      open: (o) => {
        if (o.name !== full) return openShm(o);
        // What region.ts reports when posix_fallocate finds no room (spec section 11).
        throw new SysError("posix_fallocate", ENOSPC, { subject: "7, 0, 72", description: "No space left on device" });
      },
    });
    t.publisher.openMain();
    expect(t.publisher.openClient(full)).toBe(false);
    expect(t.warnings).toEqual([
      { key: `clients:open:${full}`, message: `refused client ${full}: posix_fallocate(7, 0, 72) failed: No space left on device (ENOSPC)` },
    ]);
    expect(t.publisher.has(full)).toBe(false);
    expect(t.publisher.counters()).toMatchObject({ refused: 1, regions: 1 });
    const other = uniqueShmName("other");
    expect(t.publisher.openClient(other)).toBe(true);
    t.publisher.publish(t.mainName, record(5n));
    expect(t.publisher.counters()).toMatchObject({ written: 1, refused: 1, regions: 2 });
    expect(t.statuses.at(-1)).toBe(`2 clients: ${t.mainName} following 10.0.0.5, ${other} idle; interface 10`);
  });

  test("one client more than --max-clients is refused with a warning that names the option; none after close", () => {
    const t = setUp({ maxClients: 1 });
    t.publisher.openMain();
    expect(t.publisher.openClient("/nqptp-one-too-many")).toBe(false);
    expect(t.warnings).toEqual([
      { key: "clients:full", message: "refused client /nqptp-one-too-many: 1 clients are served already (--max-clients 1; raise it to serve more)" },
    ]);
    t.publisher.close();
    expect(t.publisher.openClient("/nqptp-after-close")).toBe(false);
    expect(t.warnings).toHaveLength(1);
  });

  test("close() closes every region even when one fails, then reports the failure", () => {
    const failure = new Error("munmap failed");
    const writers: ScriptedWriter[] = [];
    const t = setUp({
      open: (o) => {
        const w = new ScriptedWriter(o.name, o.version, [], writers.length === 0 ? failure : null);
        writers.push(w);
        return w;
      },
    });
    t.publisher.openMain();
    t.publisher.openClient("/nqptp-second");
    expect(() => t.publisher.close()).toThrow(failure);
    expect(writers.map((w) => w.closed)).toEqual([true, true]);
  });
});
