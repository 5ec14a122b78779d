// Entry point of the daemon's one Worker thread: the PTP event-port reader
// (src/net/event-reader-loop.ts). It is a separate entry point of the single executable
// (scripts/build.ts passes it to `bun build --compile`), started by src/net/event-reader.ts.

import type { EventReaderMessage, EventReaderStart } from "./net/event-reader-protocol.ts";
import { runEventReader } from "./net/event-reader-loop.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<EventReaderStart>) => {
  const start = event.data;
  if (start?.kind !== "event-reader-start") return;
  const post = (message: EventReaderMessage) => self.postMessage(message);
  try {
    runEventReader(start, post);
  } catch (error) {
    post({ kind: "error", message: `event-port reader stopped: ${(error as Error).stack ?? error}` });
  }
};
