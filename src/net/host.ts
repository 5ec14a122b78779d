// Facts about this host the daemon needs: its own addresses (packets from them are ignored,
// spec section 2) and a clock identity for the Announces it sends (spec section 7).

import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { canonicalSender } from "./address.ts";

type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

export function ownAddresses(table: InterfaceTable = networkInterfaces()): Set<string> {
  const out = new Set<string>();
  for (const infos of Object.values(table)) {
    for (const info of infos ?? []) out.add(canonicalSender(info.address));
  }
  return out;
}

/**
 * EUI-64 from the first non-loopback interface's MAC (interfaces in name order), FF FE inserted
 * in the middle. When there is no MAC at all (a container with only loopback), a fixed
 * locally-administered identity derived from the host name, so that it is at least stable.
 */
export function clockIdentityFromHost(table: InterfaceTable = networkInterfaces(), hostname = "nqptp"): bigint {
  for (const name of Object.keys(table).sort()) {
    for (const info of table[name] ?? []) {
      if (info.internal || !info.mac || info.mac === "00:00:00:00:00:00") continue;
      const mac = info.mac.split(":").map((h) => parseInt(h, 16));
      if (mac.length !== 6 || mac.some((b) => !Number.isInteger(b))) continue;
      const octets = [mac[0]!, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!];
      return octets.reduce((id, b) => (id << 8n) | BigInt(b), 0n);
    }
  }
  let hash = 0xcbf29ce484222325n; // FNV-1a 64
  for (const c of new TextEncoder().encode(hostname)) hash = ((hash ^ BigInt(c)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return (hash & ~(0x01n << 56n)) | (0x02n << 56n); // unicast, locally administered
}

/**
 * The host's own addresses, refreshed at most once a minute and only when asked (a packet
 * arrives): no timer, so an idle daemon stays asleep; DHCP changes are picked up within a minute.
 */
export class OwnAddresses {
  private addresses: Set<string>;
  private refreshedAtMs: number;
  constructor(
    private readonly read: () => Set<string> = () => ownAddresses(),
    private readonly refreshMs = 60_000,
    nowMs = Date.now(),
  ) {
    this.addresses = read();
    this.refreshedAtMs = nowMs;
  }
  has(canonicalAddress: string, nowMs: number): boolean {
    if (nowMs - this.refreshedAtMs >= this.refreshMs) {
      this.addresses = this.read();
      this.refreshedAtMs = nowMs;
    }
    return this.addresses.has(canonicalAddress);
  }
}
