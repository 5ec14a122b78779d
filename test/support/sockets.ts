// Helpers for tests that open sockets in this process: waiting for a condition, a random pair of
// unprivileged ports, a retry when another test took the port first, and a UDP socket to send
// from that is closed after the test.

import { NqptpError } from "../../src/errors.ts";
import type { Cleanup } from "./cleanups.ts";

/** Resolves once condition() holds; throws after timeoutMs, naming what was awaited. */
export async function until(condition: () => boolean, what = "the condition", timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** An even port in 30000–59998, so that it and the next one are both unprivileged. */
export function randomPortPair(): number {
  return 30000 + Math.floor(Math.random() * 15000) * 2;
}

/** open(port) on a random port pair, again on another pair (up to six tries) while the port is taken. */
export async function onFreePorts<T>(open: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(randomPortPair());
    } catch (error) {
      if (attempt < 5 && error instanceof NqptpError && error.code === "bind-in-use") continue;
      throw error;
    }
  }
}

/** A UDP socket bound to hostname on any port, closed by the test's cleanups. */
export async function udpSender(cleanups: Cleanup[], hostname = "127.0.0.1") {
  const socket = await Bun.udpSocket({ hostname });
  cleanups.push(() => socket.close());
  return socket;
}
