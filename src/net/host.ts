// Facts about this host the daemon needs: its own addresses (packets from them are ignored,
// spec section 2) and a clock identity for the Announces it sends (spec section 7).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { canonicalSender } from "../rules/ip-address.ts";

type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

export function ownAddresses(table: InterfaceTable = networkInterfaces()): Set<string> {
  const out = new Set<string>();
  for (const infos of Object.values(table)) {
    for (const info of infos ?? []) out.add(canonicalSender(info.address));
  }
  return out;
}

/** What tells this host apart when it has no MAC, read from the system; null when absent or unreadable. */
export interface HostIdentitySources {
  /** systemd's machine id (/etc/machine-id, or D-Bus's copy): 32 hex digits, stable across boots. */
  machineId: string | null;
  /** The kernel's id of this boot (/proc/sys/kernel/random/boot_id), a UUID. */
  bootId: string | null;
  hostname: string;
}

export type ClockIdentitySource = "mac" | "machine-id" | "hostname and boot id" | "hostname";

const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
const BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id";

function readTrimmed(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim().toLowerCase();
  } catch {
    return null; // absent, or hidden by the service's sandbox (ProcSubset=pid hides /proc/sys)
  }
}

export function readHostIdentitySources(read: (path: string) => string | null = readTrimmed): HostIdentitySources {
  let machineId: string | null = null;
  for (const path of MACHINE_ID_FILES) {
    const id = read(path);
    // An image not yet booted has an empty file, or "uninitialized"; an all-zero id is no id.
    if (id !== null && /^[0-9a-f]{32}$/.test(id) && !/^0+$/.test(id)) {
      machineId = id;
      break;
    }
  }
  const boot = read(BOOT_ID_FILE);
  return { machineId, bootId: boot !== null && /^[0-9a-f-]{36}$/.test(boot) ? boot : null, hostname: hostname() };
}

/**
 * An EUI-64-like identity from any text: the first 6 bytes of SHA-256("nqptp clock identity\0" +
 * seed) as an EUI-48 with the locally-administered bit set and the group bit clear, FF FE inserted
 * in the middle as for a MAC. Hashed, so the machine id itself is never sent on the LAN.
 */
export function identityFromSeed(seed: string): bigint {
  const h = createHash("sha256").update(`nqptp clock identity\0${seed}`).digest();
  const octets = [(h[0]! & ~0x01) | 0x02, h[1]!, h[2]!, 0xff, 0xfe, h[3]!, h[4]!, h[5]!];
  return octets.reduce((id, b) => (id << 8n) | BigInt(b), 0n);
}

/**
 * The clock identity for the Announces this host sends (spec section 7): the EUI-64 of the first
 * non-loopback interface's MAC (interfaces in name order), FF FE inserted in the middle. With no
 * MAC at all (a container with only loopback), one derived from the machine id; failing that
 * from the host name and this boot's id (unique, but new at each boot); failing that from the
 * host name alone. `sources` is read only when there is no MAC.
 */
export function hostClockIdentity(
  table: InterfaceTable = networkInterfaces(),
  sources: () => HostIdentitySources = readHostIdentitySources,
): { identity: bigint; source: ClockIdentitySource } {
  for (const name of Object.keys(table).sort()) {
    for (const info of table[name] ?? []) {
      if (info.internal || !info.mac || info.mac === "00:00:00:00:00:00") continue;
      const mac = info.mac.split(":").map((h) => parseInt(h, 16));
      if (mac.length !== 6 || mac.some((b) => !Number.isInteger(b))) continue;
      const octets = [mac[0]!, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!];
      return { identity: octets.reduce((id, b) => (id << 8n) | BigInt(b), 0n), source: "mac" };
    }
  }
  const host = sources();
  if (host.machineId !== null) return { identity: identityFromSeed(`machine-id ${host.machineId}`), source: "machine-id" };
  if (host.bootId !== null) {
    return { identity: identityFromSeed(`hostname ${host.hostname} boot ${host.bootId}`), source: "hostname and boot id" };
  }
  return { identity: identityFromSeed(`hostname ${host.hostname}`), source: "hostname" };
}

/** hostClockIdentity()'s identity. */
export function clockIdentityFromHost(
  table: InterfaceTable = networkInterfaces(),
  sources: () => HostIdentitySources = readHostIdentitySources,
): bigint {
  return hostClockIdentity(table, sources).identity;
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
