// The control port's socket (src/daemon/control-server.ts), in-process on real loopback UDP and an
// unprivileged port: messages handed on, the status exchange, the loopback rule, the warnings for
// what does not parse (the wrong generation's form once per run), bind failures.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { networkInterfaces } from "node:os";
import type { ControlCommand } from "../../src/control/parse.ts";
import { STATUS_REQUEST } from "../../src/control/status.ts";
import { ControlServer, type ControlServerOptions } from "../../src/daemon/control-server.ts";
import { createLogger, memoryReporter } from "../../src/daemon/log.ts";
import { NqptpError } from "../../src/errors.ts";
import { traitsOf, type InterfaceVersion } from "../../src/rules/interface-version.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";
import { onFreePorts, until } from "../support/sockets.ts";

setDefaultTimeout(20_000);

const cleanups = cleanupAfterEach();

const LEVELS: Record<number, string> = { 0: "error", 1: "warn", 3: "info", 4: "debug" };
const encoder = new TextEncoder();

/** This host's first IPv4 address that is not loopback, or null. */
function nonLoopbackAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return null;
}

async function open(
  options: { version?: InterfaceVersion; addresses?: string[]; allowRemoteControl?: boolean; statusReport?: () => Uint8Array } = {},
) {
  const commands: { command: ControlCommand; shmName: string | undefined }[] = [];
  const warnings: { key: string; message: string }[] = [];
  const lines: { level: number; tag: string; message: string }[] = [];
  return onFreePorts(async (port) => {
    const serverOptions: ControlServerOptions = {
      addresses: options.addresses ?? ["127.0.0.1", "::1"],
      port,
      traits: traitsOf(options.version ?? 5),
      allowRemoteControl: options.allowRemoteControl ?? false,
      log: createLogger({ verbosity: 1, reporters: [memoryReporter(lines)] }),
      warnLimited: (key, message) => warnings.push({ key, message }),
      onCommand: (command, shmName) => commands.push({ command, shmName }),
      statusReport: options.statusReport ?? (() => encoder.encode('{"report":true}')),
    };
    const server = await ControlServer.open(serverOptions);
    cleanups.push(() => server.close());
    return { server, port, commands, warnings, logged: () => lines.map((l) => `${LEVELS[l.level] ?? l.level} ${l.message}`) };
  });
}

/** A UDP socket on `hostname` that keeps what it receives. */
async function client(hostname = "127.0.0.1") {
  const received: string[] = [];
  const socket = await Bun.udpSocket({
    hostname,
    socket: { data: (_s, data) => void received.push(new TextDecoder().decode(data)) },
  });
  cleanups.push(() => socket.close());
  return {
    received,
    send: (text: string, port: number, address = hostname) => socket.send(encoder.encode(text), port, address),
  };
}

describe("messages from this host", () => {
  test("a timing peer list from 127.0.0.1 or ::1 is parsed and handed on, every datagram counted", async () => {
    const t = await open();
    (await client("127.0.0.1")).send("T 10.0.0.5 10.0.0.6\0", t.port);
    (await client("::1")).send("T\n", t.port);
    await until(() => t.commands.length === 2, "two commands");
    expect(t.commands).toEqual([
      { command: { kind: "timing-peers", addresses: ["10.0.0.5", "10.0.0.6"], skipped: [] }, shmName: undefined },
      { command: { kind: "timing-peers", addresses: [], skipped: [] }, shmName: undefined },
    ]);
    expect(t.server.stats).toEqual({ datagrams: 2, ignoredRemote: 0, errors: {} });
    expect(t.warnings).toEqual([]);
  });

  test("interfaces 8-10: the client's name comes with its command", async () => {
    const t = await open({ version: 10 });
    (await client()).send("/nqptp-kitchen B\0", t.port);
    await until(() => t.commands.length === 1, "a command");
    expect(t.commands).toEqual([{ command: { kind: "play-begin" }, shmName: "/nqptp-kitchen" }]);
  });

  test("the status exchange: a STATUS request is answered with the report, to the port it came from", async () => {
    const t = await open();
    const asker = await client();
    asker.send(`${STATUS_REQUEST}\n`, t.port);
    await until(() => asker.received.length === 1, "the answer");
    expect(asker.received).toEqual(['{"report":true}']);
    expect(t.commands).toEqual([]);
  });

  test("a report that cannot be made is warned about; the port goes on", async () => {
    const t = await open({
      statusReport: () => {
        throw new Error("snapshot failed");
      },
    });
    const asker = await client();
    asker.send(STATUS_REQUEST, t.port);
    await until(() => t.warnings.length === 1, "the warning");
    expect(t.warnings).toEqual([{ key: "control:status", message: "could not answer a status request from 127.0.0.1: snapshot failed" }]);
    asker.send("T 10.0.0.5", t.port);
    await until(() => t.commands.length === 1, "the next command");
  });
});

describe("what does not parse", () => {
  test("counted by kind and warned about (rate-limited by the caller's key)", async () => {
    const t = await open();
    const sender = await client();
    sender.send("X 10.0.0.5\0", t.port);
    sender.send("\0", t.port);
    await until(() => t.server.stats.datagrams === 2 && t.warnings.length === 2, "two warnings");
    expect(t.server.stats.errors).toEqual({ "unknown-command": 1, empty: 1 });
    expect(t.warnings).toEqual([
      { key: "control:unknown-command", message: 'ignored a control message: unknown-command: unknown command "X"' },
      { key: "control:empty", message: "ignored a control message: empty: empty message" },
    ]);
    expect(t.commands).toEqual([]);
  });

  test("the other generation's form: one warning per run that says which --interface-version to choose, then debug lines", async () => {
    const t = await open({ version: 5 });
    const sender = await client();
    sender.send("/nqptp T 10.0.0.5\0", t.port);
    await until(() => t.server.stats.datagrams === 1, "the first");
    sender.send("/nqptp T 10.0.0.5\0", t.port);
    await until(() => t.server.stats.datagrams === 2, "the second");
    await until(() => t.logged().length === 2, "two lines");
    const [warning, debug] = t.logged();
    expect(warning).toStartWith(
      'warn control message "/nqptp T 10.0.0.5" is the form Shairport Sync 4.1 and later send, but this nqptp serves shared memory interface 5.',
    );
    expect(warning).toContain("smi10 → 10 (4.3.x and 5.x), smi9 → 9 (4.2.x); 4.1.x shows no smi tag and needs 8; AirPlay 2 builds before 4.1 → 5.");
    expect(debug).toBe('debug ignored a control message: wrong-form: "/nqptp T 10.0.0.5" is the form Shairport Sync 4.1 and later send');
    expect(t.server.stats.errors).toEqual({ "wrong-form": 2 });
    expect(t.warnings).toEqual([]);
  });
});

describe("the loopback rule", () => {
  const remote = nonLoopbackAddress();
  const why = "skipped when this host has no non-loopback IPv4 address to send from";

  test.skipIf(remote === null)(`a sender that is not on loopback is ignored and warned about, even for STATUS (${why})`, async () => {
    const t = await open({ addresses: [remote!] });
    const outsider = await client(remote!);
    outsider.send("T 10.0.0.66\0", t.port);
    outsider.send(STATUS_REQUEST, t.port);
    await until(() => t.server.stats.datagrams === 2, "both datagrams");
    expect(t.server.stats.ignoredRemote).toBe(2);
    expect(t.commands).toEqual([]);
    expect(outsider.received).toEqual([]);
    expect(t.warnings[0]).toEqual({
      key: "control:remote",
      message: `ignored a control message from ${remote}: only this host may send timing peer lists (--allow-remote-control accepts other hosts)`,
    });
  });

  test.skipIf(remote === null)(`--allow-remote-control lets it in (${why})`, async () => {
    const t = await open({ addresses: [remote!], allowRemoteControl: true });
    const outsider = await client(remote!);
    outsider.send("T 10.0.0.66\0", t.port);
    await until(() => t.commands.length === 1, "the command");
    expect(t.commands[0]!.command).toEqual({ kind: "timing-peers", addresses: ["10.0.0.66"], skipped: [] });
    expect(t.server.stats.ignoredRemote).toBe(0);
  });
});

describe("binding", () => {
  test("a port in use is an NqptpError naming it; what was already bound is closed again; close() is idempotent", async () => {
    const t = await open({ addresses: ["127.0.0.1"] });
    const squatter = await Bun.udpSocket({ hostname: "::1", port: t.port + 1 });
    cleanups.push(() => squatter.close());
    const failed = ControlServer.open({
      addresses: ["127.0.0.1", "::1"],
      port: t.port + 1,
      traits: traitsOf(5),
      allowRemoteControl: false,
      log: createLogger({ verbosity: 0, reporters: [memoryReporter([])] }),
      warnLimited: () => {},
      onCommand: () => {},
      statusReport: () => new Uint8Array(),
    });
    await expect(failed).rejects.toBeInstanceOf(NqptpError);
    await expect(failed).rejects.toMatchObject({ code: "bind-in-use", message: expect.stringContaining(`control port [::1]:${t.port + 1}`) });
    // 127.0.0.1 of that port was bound first: it is free again.
    const again = await Bun.udpSocket({ hostname: "127.0.0.1", port: t.port + 1 });
    again.close();

    t.server.close();
    t.server.close();
    const reuse = await Bun.udpSocket({ hostname: "127.0.0.1", port: t.port });
    reuse.close();
  });
});
