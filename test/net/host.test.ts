// Host facts (src/net/host.ts): our own addresses, and the clock identity our Announces carry,
// from the MAC or, on a host without one, from the machine id, the boot id or the host name.

import { describe, expect, test } from "bun:test";
import type { NetworkInterfaceInfo } from "node:os";
import {
  clockIdentityFromHost,
  hostClockIdentity,
  identityFromSeed,
  OwnAddresses,
  ownAddresses,
  readHostIdentitySources,
  type HostIdentitySources,
} from "../../src/net/host.ts";

function nic(address: string, mac: string, internal = false): NetworkInterfaceInfo {
  const family = address.includes(":") ? "IPv6" : "IPv4";
  return { address, mac, internal, family, netmask: "", cidr: null, ...(family === "IPv6" ? { scopeid: 0 } : {}) } as NetworkInterfaceInfo;
}

const LOOPBACK_ONLY = { lo: [nic("127.0.0.1", "00:00:00:00:00:00", true), nic("::1", "00:00:00:00:00:00", true)] };
const MACHINE_A = "0123456789abcdef0123456789abcdef";
const MACHINE_B = "fedcba9876543210fedcba9876543210";
const BOOT = "6a1f3c52-2b9e-4d0a-9c77-1e5b2f4d8a10";

function sources(s: Partial<HostIdentitySources>): () => HostIdentitySources {
  return () => ({ machineId: null, bootId: null, hostname: "nqptp", ...s });
}

/** Octet i (0 = most significant) of a 64-bit identity. */
const octet = (id: bigint, i: number) => Number((id >> BigInt(8 * (7 - i))) & 0xffn);

describe("clock identity", () => {
  test("from the first non-loopback MAC in interface-name order, FF FE in the middle", () => {
    const table = { wlan0: [nic("192.168.1.9", "b8:27:eb:00:00:02")], eth0: [nic("192.168.1.8", "dc:a6:32:12:34:56")], ...LOOPBACK_ONLY };
    expect(hostClockIdentity(table, sources({ machineId: MACHINE_A }))).toEqual({ identity: 0xdca632fffe123456n, source: "mac" });
  });

  test("the host facts are not read when there is a MAC", () => {
    let read = 0;
    const counting = () => {
      read++;
      return { machineId: MACHINE_A, bootId: null, hostname: "x" };
    };
    clockIdentityFromHost({ eth0: [nic("10.0.0.1", "02:00:00:00:00:01")] }, counting);
    expect(read).toBe(0);
  });

  test("without a MAC, hosts with different machine ids get different identities, whatever their host names", () => {
    const a = hostClockIdentity(LOOPBACK_ONLY, sources({ machineId: MACHINE_A, hostname: "nqptp" }));
    const b = hostClockIdentity(LOOPBACK_ONLY, sources({ machineId: MACHINE_B, hostname: "nqptp" }));
    expect(a.source).toBe("machine-id");
    expect(b.source).toBe("machine-id");
    expect(a.identity).not.toBe(b.identity);
    // Stable: the same machine gets the same identity again, also after a reboot (new boot id).
    expect(hostClockIdentity(LOOPBACK_ONLY, sources({ machineId: MACHINE_A, bootId: BOOT, hostname: "renamed" })).identity).toBe(a.identity);
  });

  test("without a machine id, the host name and the boot id; without either, the host name", () => {
    const withBoot = hostClockIdentity(LOOPBACK_ONLY, sources({ bootId: BOOT, hostname: "speaker" }));
    expect(withBoot.source).toBe("hostname and boot id");
    const otherBoot = hostClockIdentity(LOOPBACK_ONLY, sources({ bootId: "0b9e0d7c-6a55-4e3f-8f21-3c4d5e6f7a8b", hostname: "speaker" }));
    expect(otherBoot.identity).not.toBe(withBoot.identity);
    const nameOnly = hostClockIdentity(LOOPBACK_ONLY, sources({ hostname: "speaker" }));
    expect(nameOnly.source).toBe("hostname");
    expect(nameOnly.identity).not.toBe(hostClockIdentity(LOOPBACK_ONLY, sources({ hostname: "kitchen" })).identity);
  });

  test("a derived identity is EUI-64-like: unicast, locally administered, FF FE in the middle, machine id not on the wire", () => {
    for (const seed of [`machine-id ${MACHINE_A}`, `machine-id ${MACHINE_B}`, "hostname nqptp", "", "x".repeat(1000)]) {
      const id = identityFromSeed(seed);
      expect(id >= 0n && id < 1n << 64n).toBe(true);
      expect(octet(id, 0) & 0x01).toBe(0); // not a group address
      expect(octet(id, 0) & 0x02).toBe(2); // locally administered: cannot equal a real MAC's EUI-64
      expect([octet(id, 3), octet(id, 4)]).toEqual([0xff, 0xfe]);
      expect(identityFromSeed(seed)).toBe(id);
    }
    const id = hostClockIdentity(LOOPBACK_ONLY, sources({ machineId: MACHINE_A })).identity.toString(16);
    expect(MACHINE_A.includes(id.slice(0, 6))).toBe(false);
  });
});

describe("reading the host facts", () => {
  const files = (content: Record<string, string>) => (path: string) => content[path] ?? null;

  test("machine id from /etc/machine-id, else D-Bus's copy; boot id from /proc", () => {
    expect(readHostIdentitySources(files({ "/etc/machine-id": MACHINE_A, "/proc/sys/kernel/random/boot_id": BOOT }))).toMatchObject({
      machineId: MACHINE_A,
      bootId: BOOT,
    });
    expect(readHostIdentitySources(files({ "/var/lib/dbus/machine-id": MACHINE_B })).machineId).toBe(MACHINE_B);
  });

  test("an empty, uninitialized, all-zero or malformed machine id is no machine id", () => {
    for (const bad of ["", "uninitialized", "0".repeat(32), "0123456789abcdef", "g".repeat(32)]) {
      const read = files({ "/etc/machine-id": bad, "/var/lib/dbus/machine-id": bad });
      expect(readHostIdentitySources(read).machineId).toBeNull();
    }
    expect(readHostIdentitySources(files({ "/proc/sys/kernel/random/boot_id": "not a uuid" })).bootId).toBeNull();
  });

  test("on this machine: the real files are read without a throw, and what is kept is well formed", () => {
    const host = readHostIdentitySources();
    if (host.machineId !== null) expect(host.machineId).toMatch(/^[0-9a-f]{32}$/);
    if (host.bootId !== null) expect(host.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(host.hostname.length).toBeGreaterThan(0);
  });
});

describe("own addresses", () => {
  test("every address of every interface, loopback included", () => {
    const own = ownAddresses({ eth0: [nic("192.168.1.8", "dc:a6:32:12:34:56"), nic("fe80::1", "dc:a6:32:12:34:56")], ...LOOPBACK_ONLY });
    expect(own.has("192.168.1.8")).toBe(true);
    expect(own.has("fe80::1")).toBe(true);
    expect(own.has("127.0.0.1")).toBe(true);
    expect(own.has("192.168.1.9")).toBe(false);
  });

  test("OwnAddresses re-reads the table at most once a minute, and only when asked", () => {
    let reads = 0;
    let current = new Set(["10.0.0.1"]);
    const own = new OwnAddresses(
      () => {
        reads++;
        return current;
      },
      60_000,
      0,
    );
    expect(reads).toBe(1);
    current = new Set(["10.0.0.2"]);
    expect(own.has("10.0.0.1", 59_999)).toBe(true);
    expect(reads).toBe(1);
    expect(own.has("10.0.0.2", 60_000)).toBe(true);
    expect(own.has("10.0.0.1", 60_001)).toBe(false);
    expect(reads).toBe(2);
  });
});
