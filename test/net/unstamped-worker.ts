// A Worker for test/net/ptp-sockets.test.ts and interface-sockets.test.ts: the daemon's own event-port reader
// (src/net/event-reader-loop.ts), except that every datagram it reads is reported as if the kernel
// had given no receive stamp (no SCM_TIMESTAMPNS), its time read from the clock instead.

import type { EventReaderMessage, EventReaderStart } from "../../src/net/event-reader-protocol.ts";
import { runEventReader } from "../../src/net/event-reader-loop.ts";
import { readClock } from "../../src/time/clocks.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<EventReaderStart>) => {
  const start = event.data;
  if (start?.kind !== "event-reader-start") return;
  runEventReader(start, (message: EventReaderMessage) =>
    self.postMessage(
      message.kind === "datagrams"
        ? { ...message, datagrams: message.datagrams.map((d) => ({ ...d, receivedAtNs: readClock(start.localClock), kernelStamp: false })) }
        : message,
    ),
  );
};
