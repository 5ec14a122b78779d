// The control port's socket, its log: at -vv every message is logged as it came and from where, which is how
// a user (and the real-client test) sees that Shairport Sync's messages reach the daemon.

import { describe, expect, test } from "bun:test";
import { ControlServer, printable } from "../../src/daemon/control-server.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import type { ControlCommand } from "../../src/control/parse.ts";
import { traitsOf } from "../../src/rules/interface-version.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

const cleanups = cleanupAfterEach();

type Line = { level: number; tag: string; message: string };

async function openServer(verbosity: number, address: string) {
  const lines: Line[] = [];
  const commands: { command: ControlCommand; shmName: string | undefined }[] = [];
  const log = createLogger({ verbosity, reporters: [memoryReporter(lines)] });
  for (let attempt = 0; ; attempt++) {
    const port = 30000 + Math.floor(Math.random() * 20000);
    try {
      const server = await ControlServer.open({
        addresses: [address],
        port,
        traits: traitsOf(10),
        allowRemoteControl: false,
        log,
        warnLimited: (_key, message) => log.warn(message),
        onCommand: (command, shmName) => commands.push({ command, shmName }),
        statusReport: () => new Uint8Array(0),
      });
      cleanups.push(() => server.close());
      return { port, lines, commands };
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

async function send(bytes: Uint8Array, port: number, address: string): Promise<void> {
  const socket = await Bun.udpSocket({ hostname: address });
  socket.send(bytes, port, address);
  socket.close();
}

async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe("control port log", () => {
  test("-vv logs each message with its sender, the NUL shown; the message is still handled", async () => {
    for (const address of ["127.0.0.1", "::1"]) {
      const { port, lines, commands } = await openServer(2, address);
      await send(new TextEncoder().encode("/nqptp-kitchen T\0"), port, address);
      await until("the command", () => commands.length === 1);
      const trace = lines.filter((l) => l.level === 5);
      expect(trace).toHaveLength(1);
      expect(trace[0]!.message).toMatch(
        new RegExp(`^control message from ${address.replaceAll(".", "\\.")} port \\d+: "/nqptp-kitchen T\\\\0" \\(17 bytes\\)$`),
      );
      expect(commands[0]).toEqual({ command: { kind: "timing-peers", addresses: [], skipped: [] }, shmName: "/nqptp-kitchen" });
    }
  });

  test("below -vv nothing is logged for a message that parses", async () => {
    const { port, lines, commands } = await openServer(1, "127.0.0.1");
    await send(new TextEncoder().encode("/nqptp T\0"), port, "127.0.0.1");
    await until("the command", () => commands.length === 1);
    expect(lines).toEqual([]);
  });

  test("a message that does not parse is logged as it came at -vv, besides the warning", async () => {
    const { port, lines } = await openServer(2, "127.0.0.1");
    await send(new Uint8Array([0x2f, 0x6e, 0x01, 0xff, 0x0a]), port, "127.0.0.1");
    await until("the warning", () => lines.some((l) => l.level === 1));
    expect(lines.find((l) => l.level === 5)?.message).toMatch(/: "\/n\?\uFFFD\?" \(5 bytes\)$/);
  });
});

describe("printable", () => {
  test("quotes the text, shows NULs as \\0 and other control bytes as ?, and cuts long messages", () => {
    expect(printable(new TextEncoder().encode("/nqptp T 10.0.0.5\0"))).toBe('"/nqptp T 10.0.0.5\\0" (18 bytes)');
    expect(printable(new TextEncoder().encode("T\r\n"))).toBe('"T??" (3 bytes)');
    const long = printable(new TextEncoder().encode(`/nqptp T ${"1".repeat(200)}`));
    expect(long).toMatch(/^"\/nqptp T 1+\.\.\." \(209 bytes\)$/);
    expect(long.length).toBeLessThan(100);
  });
});
