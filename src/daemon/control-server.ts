// The control port (spec section 6): timing peer lists and play commands from Shairport Sync on
// this host, and the status exchange (`nqptp status --clocks`). Only loopback senders are heard
// unless --allow-remote-control says otherwise: a host on the LAN must not rewrite what we
// follow. A message that parses is handed on; one that does not is counted and logged, the
// wrong generation's form once per run with what to do about it.

import type { InterfaceTraits } from "../rules/interface-version.ts";
import type { Logger } from "./log.ts";
import { parseAddress } from "../rules/ip-address.ts";
import { bindUdp, type BoundSocket } from "../net/udp.ts";
import { excerpt, parseControlMessage, type ControlCommand } from "../control/parse.ts";
import { isStatusRequest } from "../control/status.ts";

export interface ControlStats {
  datagrams: number;
  ignoredRemote: number;
  errors: Record<string, number>;
}

export interface ControlServerOptions {
  addresses: readonly string[];
  port: number;
  traits: InterfaceTraits;
  allowRemoteControl: boolean;
  log: Logger;
  /** Rate-limited warning (key, message). */
  warnLimited: (key: string, message: string) => void;
  /** A command that parsed; shmName is the client's region name (8-10). */
  onCommand: (command: ControlCommand, shmName: string | undefined) => void;
  /** The answer to a status request (control/status.ts). */
  statusReport: () => Uint8Array;
}

/** consola's level for trace (-vv). */
const TRACE_LEVEL = 5;

const lenientDecoder = new TextDecoder("utf-8", { fatal: false });

/** A datagram for the log: quoted, NULs as \\0, other control bytes as "?", at most 80 characters. */
export function printable(data: Uint8Array): string {
  return `"${excerpt(lenientDecoder.decode(data).replaceAll("\0", "\\0"))}" (${data.byteLength} bytes)`;
}

export class ControlServer {
  readonly stats: ControlStats = { datagrams: 0, ignoredRemote: 0, errors: {} };
  private readonly sockets: BoundSocket[] = [];
  private wrongFormWarned = false;

  private constructor(private readonly options: ControlServerOptions) {}

  /** Binds every address; throws NqptpError (naming the port and why) when one cannot be bound. */
  static async open(options: ControlServerOptions): Promise<ControlServer> {
    const server = new ControlServer(options);
    try {
      for (const hostname of options.addresses) {
        let bound: BoundSocket | undefined;
        bound = await bindUdp({
          hostname,
          port: options.port,
          role: "control port",
          onData: (data, port, address) => server.onDatagram(bound, data, port, address),
          onError: (e) => options.warnLimited("socket:control", `control port: ${e.message}`),
        });
        server.sockets.push(bound);
      }
    } catch (error) {
      server.close();
      throw error;
    }
    return server;
  }

  private onDatagram(socket: BoundSocket | undefined, data: Buffer, port: number, address: string): void {
    const { stats, options } = this;
    stats.datagrams++;
    const source = parseAddress(address);
    if (!source?.isLoopback && !options.allowRemoteControl) {
      stats.ignoredRemote++;
      options.warnLimited(
        "control:remote",
        `ignored a control message from ${address}: only this host may send timing peer lists (--allow-remote-control accepts other hosts)`,
      );
      return;
    }
    if (isStatusRequest(data)) {
      // Only loopback senders get here (or the user allowed remote control explicitly).
      if (socket) this.answerStatus(socket, port, address);
      return;
    }
    // -vv: every message as it came, and from where (Shairport Sync 4.3.3+ sends to "localhost",
    // which often resolves to ::1 first).
    if (options.log.level >= TRACE_LEVEL) options.log.trace(`control message from ${address} port ${port}: ${printable(data)}`);
    const parsed = parseControlMessage(data, options.traits.version);
    if (parsed.ok) {
      options.onCommand(parsed.command, parsed.shmName);
      return;
    }
    const { kind, detail } = parsed.error;
    stats.errors[kind] = (stats.errors[kind] ?? 0) + 1;
    if (kind !== "wrong-form") {
      options.warnLimited(`control:${kind}`, `ignored a control message: ${kind}: ${detail}`);
      return;
    }
    // Once per run: a mismatched Shairport Sync repeats this with every session.
    if (this.wrongFormWarned) {
      options.log.debug(`ignored a control message: ${kind}: ${detail}`);
      return;
    }
    this.wrongFormWarned = true;
    options.log.warn(
      `control message ${detail}, but this nqptp serves shared memory interface ${options.traits.version}. ` +
        `Choose --interface-version to match your Shairport Sync: its "shairport-sync -V" string shows ` +
        `smi10 → 10 (4.3.x and 5.x), smi9 → 9 (4.2.x); 4.1.x shows no smi tag and needs 8; AirPlay 2 builds before 4.1 → 5.`,
    );
  }

  private answerStatus(socket: BoundSocket, port: number, address: string): void {
    try {
      socket.send(this.options.statusReport(), port, address);
    } catch (error) {
      this.options.warnLimited("control:status", `could not answer a status request from ${address}: ${(error as Error).message}`);
    }
  }

  close(): void {
    for (const socket of this.sockets.splice(0)) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }
}
