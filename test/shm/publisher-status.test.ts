// systemd's STATUS line with --interface: the regions' part as before, then where PTP is heard,
// sent again whenever that changes (src/shm/publisher.ts, statusText and setPtpInterfaces).

import { expect, test } from "bun:test";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import { Publisher } from "../../src/shm/publisher.ts";
import { uniqueShmName } from "../support/daemon.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

const cleanups = cleanupAfterEach();

function publisher(version: 5 | 10) {
  const lines: { level: number; tag: string; message: string }[] = [];
  const statuses: string[] = [];
  const mainName = uniqueShmName("status-line");
  const p = new Publisher({
    interfaceVersion: version,
    mainName,
    maxClients: 2,
    log: createLogger({ verbosity: 0, reporters: [memoryReporter(lines)] }),
    warnLimited: () => {},
    onStatus: (line) => statuses.push(line),
  });
  cleanups.push(() => p.close());
  return { p, mainName, statuses };
}

test("without --interface the line is as it was; with it, where PTP is heard follows", () => {
  const plain = publisher(5);
  plain.p.openMain();
  expect(plain.p.statusText()).toBe(`no master; interface 5 at ${plain.mainName}`);

  const { p, mainName, statuses } = publisher(10);
  p.setPtpInterfaces("no interface yet (waiting for wlan0)"); // before the region exists: no line yet
  expect(statuses).toEqual([]);
  p.openMain();
  expect(p.statusText()).toBe(`no master; interface 10 at ${mainName}; PTP on no interface yet (waiting for wlan0)`);
  p.setPtpInterfaces("interface wlan0");
  p.setPtpInterfaces("interface wlan0"); // unchanged: not sent again
  p.publish(mainName, { clockId: 0xabn, ip: "10.0.0.5", localTimeNs: 1n, offsetNs: 2n, masterStartTimeNs: 1n });
  expect(statuses).toEqual([
    `no master; interface 10 at ${mainName}; PTP on interface wlan0`,
    `master 0x00000000000000ab at 10.0.0.5; interface 10 at ${mainName}; PTP on interface wlan0`,
  ]);
  const kitchen = uniqueShmName("status-line-kitchen");
  expect(p.openClient(kitchen)).toBe(true);
  expect(p.statusText()).toBe(`2 clients: ${mainName} following 10.0.0.5, ${kitchen} idle; interface 10; PTP on interface wlan0`);
});
