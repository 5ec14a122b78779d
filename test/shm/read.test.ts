import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { INTERFACE_VERSIONS } from "../../src/rules/interface-version.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { detectVersion, readRegion } from "../../src/shm/read.ts";
import { openShm, type ShmWriter } from "../../src/shm/writer.ts";
import { HOST_ARCH } from "../../src/sys/linux.ts";

const writers: ShmWriter[] = [];
afterEach(() => {
  for (const w of writers.splice(0)) w.close();
});

describe("reading a region back", () => {
  test.each([...INTERFACE_VERSIONS])("version %d is detected and its record read", (version) => {
    const writer = openShm({ name: `/nqptp-read-${process.pid}-${version}`, version });
    writers.push(writer);
    writer.publish({ clockId: 0x1234n, ip: "fe80::1", localTimeNs: 111n, offsetNs: (1n << 64n) - 5n, masterStartTimeNs: 99n });
    const result = readRegion(new Uint8Array(readFileSync(writer.path)), HOST_ARCH!);
    if (!result.ok) throw new Error(result.reason);
    expect(result.record).toMatchObject({ version, clockId: 0x1234n, localTimeNs: 111n, offsetNs: (1n << 64n) - 5n, startTimeNs: 99n });
    expect(result.record.ip).toBe(version === 10 ? null : "fe80::1");
  });

  test("a region of unknown size or version is refused, not misread", () => {
    expect(readRegion(new Uint8Array(7), "x64").ok).toBe(false);
    const five = new Uint8Array(layoutFor(5, "x64").size);
    expect(detectVersion(five, "x64")).toBeNull(); // all zero: no version written
    // A version-5 region whose robust mutex is held by thread 10: the lock word at offset 0 is 10,
    // but the size says it is not a version-10 region.
    new DataView(five.buffer).setUint32(0, 10, true);
    new DataView(five.buffer).setUint16(40, 5, true);
    expect(detectVersion(five, "x64")).toBe(5);
    const arm = new Uint8Array(layoutFor(9, "arm64").size);
    new DataView(arm.buffer).setUint16(48, 9, true);
    expect(detectVersion(arm, "arm64")).toBe(9);
  });
});
