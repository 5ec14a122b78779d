// The tracker in the daemon (src/daemon/tracker-runner.ts): the real reducer's effects carried
// out — regions written (real shared memory, read back), Announces sent, lines logged, the one
// tick timer kept — and a bug in the core logged with the last good state kept. Timers are Bun's
// fake ones, the local clock is the test's.

import { afterEach, beforeEach, describe, expect, jest, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createTracker } from "../../src/clock/tracker.ts";
import { dispatchControl } from "../../src/control/dispatch.ts";
import { parseControlMessage } from "../../src/control/parse.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import { DEFAULTS } from "../../src/daemon/options.ts";
import { TrackerRunner } from "../../src/daemon/tracker-runner.ts";
import { decode } from "../../src/ptp/decode.ts";
import type { AnnounceMessage, PtpMessage } from "../../src/ptp/types.ts";
import { traitsOf, type InterfaceVersion } from "../../src/rules/interface-version.ts";
import { Publisher } from "../../src/shm/publisher.ts";
import { readRegion, type RegionRecord } from "../../src/shm/read.ts";
import { HOST_ARCH } from "../../src/sys/linux.ts";
import { MS, OUR_CLOCK_ID, S, announce, followUp, sync } from "../clock/helpers.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { uniqueShmName } from "../support/daemon.ts";

const cleanups = cleanupAfterEach();
beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const IP = "10.0.0.5";
const CLOCK = 0x00aa_bbff_fecc_dd01n;
const T0 = 5_000n * S;
/** master time − local time of the simulated master. */
const OFFSET = 700n * S;

function setUp(options: { version?: InterfaceVersion; maxClients?: number } = {}) {
  const version = options.version ?? 9;
  const mainName = uniqueShmName("runner");
  const lines: { level: number; tag: string; message: string }[] = [];
  const logger = createLogger({ verbosity: 2, reporters: [memoryReporter(lines)] });
  const warnings: { key: string; message: string }[] = [];
  const warnLimited = (key: string, message: string) => warnings.push({ key, message });
  const log = logger.withTag("nqptp");
  const publisher = new Publisher({ interfaceVersion: version, mainName, maxClients: options.maxClients ?? 2, log, warnLimited });
  cleanups.push(() => publisher.close());
  publisher.openMain();
  const sent: { to: string; message: PtpMessage }[] = [];
  let sendResult: () => boolean = () => true;
  let nowNs = T0;
  const runner = new TrackerRunner({
    initial: createTracker({
      interfaceVersion: version,
      ourClockIdentity: OUR_CLOCK_ID,
      mainClient: mainName,
      maxClients: options.maxClients ?? 2,
      offsetFilter: DEFAULTS.offsetFilter,
    }),
    publisher,
    now: () => nowNs,
    sendGeneral: (data, to) => {
      const decoded = decode(data);
      if (!decoded.ok) throw new Error(`sent something that does not decode: ${decoded.error.kind}`);
      sent.push({ to, message: decoded.message });
      return sendResult();
    },
    clockLog: logger.withTag("clock"),
    log,
    warnLimited,
  });
  cleanups.push(() => runner.stop());
  let sequenceId = 0;
  return {
    runner,
    mainName,
    sent,
    warnings,
    /** "tag level message" of every line logged. */
    logged: () => lines.map((l) => `${l.tag} ${LEVELS[l.level] ?? l.level} ${l.message}`),
    sendReturns(result: () => boolean) {
      sendResult = result;
    },
    get now() {
      return nowNs;
    },
    /** The local clock and the timers move on together. */
    advance(ms: number) {
      nowNs += BigInt(ms) * MS;
      jest.advanceTimersByTime(ms);
    },
    /** A control message as the control port hands it on. */
    control(text: string) {
      const parsed = parseControlMessage(new TextEncoder().encode(`${text}\0`), version);
      if (!parsed.ok) throw new Error(`${text}: ${parsed.error.kind}`);
      runner.control(dispatchControl(parsed.command, parsed.shmName, traitsOf(version)));
    },
    ptp(message: PtpMessage) {
      runner.dispatch({ kind: "ptp", source: IP, message, receivedAtNs: nowNs }, nowNs);
    },
    /** One Sync/Follow_Up pair from the master, received now. */
    round() {
      const seq = ++sequenceId;
      this.ptp(sync(CLOCK, seq));
      this.ptp(followUp(CLOCK, seq, nowNs + OFFSET));
    },
    region(name = mainName): RegionRecord {
      const read = readRegion(new Uint8Array(readFileSync(`/dev/shm${name}`)), HOST_ARCH!);
      if (!read.ok) throw new Error(read.reason);
      return read.record;
    },
  };
}

/** consola's levels. */
const LEVELS: Record<number, string> = { 0: "error", 1: "warn", 3: "info", 4: "debug" };

const held = (r: RegionRecord) => ({ clockId: r.clockId, localTimeNs: r.localTimeNs, offsetNs: r.offsetNs, startTimeNs: r.startTimeNs });
const ZEROS = { clockId: 0n, localTimeNs: 0n, offsetNs: 0n, startTimeNs: 0n };

describe("effects become actions", () => {
  test("nothing is reduced before start(): the tracker must not believe it published", () => {
    const t = setUp();
    t.control(`${t.mainName} T ${IP}`);
    t.ptp(announce(CLOCK, 1));
    expect(t.runner.knowsClient(t.mainName)).toBe(true); // the initial state's main client
    expect(t.runner.snapshot().records).toEqual([]);
    expect(t.sent).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  test("log → the clock logger; send-announce → the general port, now and after its delay; publish → the region", () => {
    const t = setUp();
    t.runner.start();
    t.control(`${t.mainName} T ${IP}`);
    expect(t.logged()).toContain(`clock info following ${IP}`);

    // The first Announce of the followed clock wakes it: one Announce now, the other 150 ms later.
    t.ptp(announce(CLOCK, 1));
    expect(t.sent.map((s) => s.to)).toEqual([IP]);
    expect(t.runner.announcesSent).toBe(1);
    t.advance(149);
    expect(t.sent).toHaveLength(1);
    t.advance(1);
    expect(t.sent.map((s) => [s.to, s.message.kind])).toEqual([
      [IP, "announce"],
      [IP, "announce"],
    ]);
    const [better, worse] = t.sent.map((s) => (s.message as AnnounceMessage).grandmasterPriority1);
    expect(better! < worse!).toBe(true);
    expect(t.runner.announcesSent).toBe(2);

    t.advance(100);
    t.round();
    expect(held(t.region())).toEqual({ clockId: CLOCK, localTimeNs: t.now, offsetNs: OFFSET, startTimeNs: t.now });
    expect(t.runner.snapshot().records.map((r) => r.ip)).toEqual([IP]);
  });

  test("an Announce that could not be sent is not counted; one whose send throws is warned about", () => {
    const t = setUp();
    t.runner.start();
    t.control(`${t.mainName} T ${IP}`);
    t.sendReturns(() => false); // no socket yet
    t.ptp(announce(CLOCK, 1));
    expect(t.runner.announcesSent).toBe(0);
    t.sendReturns(() => {
      throw new Error("Network is unreachable");
    });
    t.advance(150);
    expect(t.sent).toHaveLength(2);
    expect(t.runner.announcesSent).toBe(0);
    expect(t.warnings).toEqual([{ key: `send:${IP}`, message: `could not send an Announce to ${IP}: Network is unreachable` }]);
  });

  test("a control message's notes are logged; a client refused a region is not heard", () => {
    const t = setUp({ maxClients: 1 });
    t.runner.start();
    t.control(`${t.mainName} T 10.0.0.7 10.0.0.8`); // follows the first only: a debug note
    expect(t.logged()).toContain(`nqptp debug ${t.mainName}: following 10.0.0.7 only (interface 9 follows the first address)`);
    t.control(`${t.mainName} T bogus`); // a warning note, and nothing for the tracker
    expect(t.warnings.map((w) => w.key)).toEqual(["control:skipped"]);
    t.control(`/nqptp-no-room-${process.pid} T ${IP}`);
    expect(t.runner.knowsClient(`/nqptp-no-room-${process.pid}`)).toBe(false);
    expect(t.warnings.map((w) => w.key)).toEqual(["control:skipped", "clients:full"]);
    expect(t.runner.snapshot().clients?.map((c) => c.name)).toEqual([t.mainName]);
  });
});

describe("the one tick timer", () => {
  test("a new schedule-tick replaces the outstanding timer; the tick comes at the new deadline only", () => {
    const t = setUp();
    t.runner.start();
    t.control(`${t.mainName} T ${IP}`); // valid until T0 + 5 s: a tick in 5 s
    expect(jest.getTimerCount()).toBe(1);
    t.advance(2000);
    t.control(`${t.mainName} T ${IP}`); // again at T0 + 2 s: valid until T0 + 7 s
    expect(jest.getTimerCount()).toBe(1);

    t.ptp(announce(CLOCK, 1));
    t.advance(150); // the wake-up pair is out
    t.round();
    expect(held(t.region())).toMatchObject({ clockId: CLOCK, offsetNs: OFFSET });
    expect(jest.getTimerCount()).toBe(1);

    t.advance(3000 - 150); // T0 + 5 s: the first deadline, replaced; nothing fires
    expect(held(t.region())).toMatchObject({ clockId: CLOCK });
    expect(jest.getTimerCount()).toBe(1);
    t.advance(2000); // T0 + 7 s
    expect(held(t.region())).toEqual(ZEROS);
    expect(t.logged()).toContain(`clock debug clock ${IP} no longer active or valid: publishing zeros`);
    expect(jest.getTimerCount()).toBe(0); // idle: no timer at all
  });

  test("stop() cancels the tick and any Announce still to go; nothing is reduced after it", () => {
    const t = setUp();
    t.runner.start();
    t.control(`${t.mainName} T ${IP}`);
    t.ptp(announce(CLOCK, 1));
    expect(jest.getTimerCount()).toBe(2); // the tick and the second wake-up Announce
    t.runner.stop();
    expect(jest.getTimerCount()).toBe(0);
    t.advance(10_000);
    expect(t.sent).toHaveLength(1);
    t.round();
    expect(held(t.region())).toEqual(ZEROS);
  });
});

describe("a bug in the pure core", () => {
  test("is logged (rate-limited), the last good state is kept, and the next events go on from it", () => {
    const t = setUp({ version: 10 });
    t.runner.start();
    t.control(`${t.mainName} T ${IP}`);
    t.control(`${t.mainName} B`);
    t.ptp(announce(CLOCK, 1));
    t.advance(150);
    t.round();
    const before = t.runner.snapshot();
    const region = held(t.region());
    expect(region.clockId).toBe(CLOCK);

    // A message the decoder would never produce: the reducer throws on it.
    t.runner.dispatch({ kind: "ptp", source: IP, message: { kind: "follow-up" } as unknown as PtpMessage, receivedAtNs: t.now }, t.now);
    expect(t.warnings).toHaveLength(1);
    expect(t.warnings[0]!.key).toStartWith("bug:");
    expect(t.warnings[0]!.message).toStartWith("internal error handling ptp: TypeError");
    expect(t.runner.snapshot()).toEqual(before);
    expect(held(t.region())).toEqual(region);

    t.advance(125);
    t.round();
    expect(held(t.region())).toMatchObject({ clockId: CLOCK, localTimeNs: t.now, startTimeNs: region.startTimeNs });
  });
});
