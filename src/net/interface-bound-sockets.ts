// The PTP ports with --interface: heard and answered only on the named interfaces. Each one that
// exists has its own pair of sockets and reader (interface-ports.ts); the kernel's list is read
// at start and every couple of seconds after (no timer without --interface), and what to open,
// close or wait for is decided by watchInterfaces (interface-watch.ts, pure). An interface that is
// there at start but cannot be used (the port is held there, no permission) stops the start, as a
// port in use does without --interface; one that appears later and cannot be used is warned about
// and tried again at each look.

import type { PtpInterfaceStatus } from "../control/status.ts";
import { canonicalSender } from "../rules/ip-address.ts";
import { listInterfaces } from "../sys/posix.ts";
import { openInterfacePorts, type InterfacePorts } from "./interface-ports.ts";
import {
  interfaceStatuses,
  noticeFor,
  slotAfter,
  watchInterfaces,
  type InterfaceChange,
  type InterfaceSlot,
  type ListedInterface,
  type Notice,
  type OpenProblem,
} from "./interface-watch.ts";
import type { PtpSockets, PtpSocketsOptions } from "./ptp-sockets.ts";
import { chooseInterfaceStamping } from "./stamping.ts";
import { timestampOptionRefusal } from "./timestamped-socket.ts";

/** How often the kernel's interface list is read (ms): an interface that appears is heard within this. */
export const INTERFACE_WATCH_MS = 2000;

const SENDER_CACHE_SIZE = 4096;

/** Which interface each sender was last heard on, so that what we send it goes out there. */
class SenderInterfaces {
  private readonly bySocketText = new Map<string, string>();
  private readonly byCanonical = new Map<string, string>();

  note(address: string, interfaceName: string): void {
    if (this.bySocketText.get(address) === interfaceName) return;
    if (this.bySocketText.size >= SENDER_CACHE_SIZE) {
      this.bySocketText.clear();
      this.byCanonical.clear();
    }
    this.bySocketText.set(address, interfaceName);
    this.byCanonical.set(canonicalSender(address), interfaceName);
  }

  interfaceOf(canonicalAddress: string): string | undefined {
    return this.byCanonical.get(canonicalAddress);
  }
}

export async function openInterfaceBoundSockets(options: PtpSocketsOptions & { interfaces: readonly string[] }): Promise<PtpSockets> {
  const stamping = chooseInterfaceStamping(timestampOptionRefusal());
  if (stamping.warning !== null) options.onError(stamping.warning.role, new Error(stamping.warning.text));
  const watcher = new InterfaceWatcher(options, stamping.event === "worker");
  await watcher.start();
  return {
    sendGeneral: (data, address) => watcher.sendGeneral(data, address),
    eventStamping: stamping.event,
    multicastMemberships: () => watcher.memberships(),
    interfaces: () => watcher.statuses(),
    close: () => watcher.close(),
  };
}

class InterfaceWatcher {
  private readonly slots = new Map<string, InterfaceSlot>();
  private readonly ports = new Map<string, InterfacePorts>();
  private readonly heard = new SenderInterfaces();
  private readonly everyMs: number;
  private readonly list: () => ListedInterface[];
  private timer: ReturnType<typeof setInterval> | null = null;
  private looking = false;
  private closed = false;
  private reported = "";

  constructor(
    private readonly options: PtpSocketsOptions & { interfaces: readonly string[] },
    private readonly timestamps: boolean,
  ) {
    this.everyMs = options.interfaceWatchMs ?? INTERFACE_WATCH_MS;
    this.list = options.listInterfaces ?? listInterfaces;
  }

  /** The first look; throws (with nothing left open) if an interface that is there cannot be used. */
  async start(): Promise<void> {
    try {
      await this.look();
    } catch (error) {
      this.close();
      throw error;
    }
    if (this.everyMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.everyMs);
      this.timer.unref();
    }
  }

  private async tick(): Promise<void> {
    if (this.looking || this.closed) return;
    try {
      await this.look();
    } catch (error) {
      this.options.onError("general", new Error(`cannot look for network interfaces: ${(error as Error).message}`));
    }
  }

  private async look(): Promise<void> {
    this.looking = true;
    try {
      for (const change of watchInterfaces(this.options.interfaces, this.slots, this.list())) {
        if (this.closed) return;
        const before = this.slots.get(change.name);
        const problem = await this.carryOut(change);
        this.slots.set(change.name, slotAfter(change, problem));
        this.notify(noticeFor(change, problem, before, this.everyMs));
      }
      for (const ports of this.ports.values()) ports.refreshMulticast();
      this.reportStatuses();
    } finally {
      this.looking = false;
    }
  }

  /** Does what the change asks; how an open went. At start-up a failed open throws instead. */
  private async carryOut(change: InterfaceChange): Promise<OpenProblem> {
    if (change.kind === "wait") return null;
    if (change.kind === "close") {
      this.ports.get(change.name)?.close();
      this.ports.delete(change.name);
      return null;
    }
    const name = change.name;
    try {
      const ports = await openInterfacePorts({
        name,
        index: change.index,
        eventPort: this.options.eventPort,
        generalPort: this.options.generalPort,
        localClock: this.options.localClock,
        timestamps: this.timestamps,
        workerUrl: this.options.workerUrl,
        onDatagram: (datagram) => {
          this.heard.note(datagram.address, name);
          this.options.onDatagram(datagram);
        },
        onError: this.options.onError,
      });
      if (this.closed) ports.close();
      else this.ports.set(name, ports);
      return null;
    } catch (error) {
      if (change.why === "start") throw error;
      return (error as Error).message;
    }
  }

  private notify(notice: Notice | null): void {
    if (notice !== null) this.options.onNotice?.(notice);
  }

  private reportStatuses(): void {
    const statuses = this.statuses();
    const text = JSON.stringify(statuses);
    if (text === this.reported) return;
    this.reported = text;
    this.options.onInterfacesChanged?.(statuses);
  }

  statuses(): PtpInterfaceStatus[] {
    return interfaceStatuses(this.options.interfaces, this.slots);
  }

  /** From the interface the address was last heard on (else the first one served); false when none is. */
  sendGeneral(data: Uint8Array, address: string): boolean {
    const heardOn = this.heard.interfaceOf(address);
    const ports = (heardOn === undefined ? undefined : this.ports.get(heardOn)) ?? this.ports.values().next().value;
    if (ports === undefined) return false;
    ports.sendGeneral(data, address);
    return true;
  }

  memberships(): string[] {
    return [...this.ports.values()].flatMap((ports) => ports.memberships());
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const ports of this.ports.values()) ports.close();
    this.ports.clear();
  }
}
