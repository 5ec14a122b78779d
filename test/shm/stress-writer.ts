// A separate writer process for the torn-read stress test, so the C reader runs truly
// concurrently with it (a loop inside the test process would block the test's event loop).
//
//   bun test/shm/stress-writer.ts <shm-name> <version> <duration-ms>
//
// Opens the region, prints "ready", then publishes self-checking records as fast as it can for
// duration-ms: for n = FIRST, FIRST+1, ...: clockId n, localTime 3n, offset 7n, start 11n (all
// mod 2^64; FIRST is near 2^64 so the products wrap). Prints {"published":N,"busy":B}, closes.

import type { PublishedMaster } from "../../src/clock/effects.ts";
import { openShm } from "../../src/shm/writer.ts";
import { isInterfaceVersion } from "../../src/rules/interface-version.ts";

const [name, versionText, durationText] = process.argv.slice(2);
const version = Number(versionText);
const durationMs = Number(durationText);
if (!name || !isInterfaceVersion(version) || !(durationMs > 0)) {
  console.error("usage: bun test/shm/stress-writer.ts <shm-name> <version> <duration-ms>");
  process.exit(1);
}

const FIRST = 0xffff_ffff_ffff_0000n;

const writer = openShm({ name, version });
console.log("ready");

let n = FIRST;
let published = 0;
let busy = 0;
const record: PublishedMaster = { clockId: 0n, ip: "10.0.0.1", localTimeNs: 0n, offsetNs: 0n, masterStartTimeNs: 0n };
const end = Date.now() + durationMs;
while (Date.now() < end) {
  for (let i = 0; i < 1000; i++) {
    record.clockId = n;
    record.localTimeNs = n * 3n;
    record.offsetNs = n * 7n;
    record.masterStartTimeNs = n * 11n;
    if (writer.publish(record) === "written") published++;
    else busy++;
    n = (n + 1n) & 0xffff_ffff_ffff_ffffn;
  }
}
console.log(JSON.stringify({ published, busy }));
writer.close();
