// Which PTP multicast groups are joined where, and the joins themselves on this host's interfaces.

import { describe, expect, test } from "bun:test";
import {
  PTP_PRIMARY_GROUP_V4,
  PTP_PRIMARY_GROUP_V6,
  PtpGroupMembership,
  currentInterfaces,
  joinGroup,
  plannedMemberships,
  type NetworkInterface,
} from "../../src/net/multicast.ts";
import { IFF_LOOPBACK, IFF_MULTICAST, IFF_UP } from "../../src/sys/linux.ts";
import { cleanupAfterEach } from "../support/cleanups.ts";

const cleanups = cleanupAfterEach();
/** Bun 1.4.5 exposes a UDP socket's descriptor as `fd`; its type definitions do not say so. */
const fdOf = (socket: unknown) => (socket as { fd: number }).fd;

const lo: NetworkInterface = { name: "lo", index: 1, flags: IFF_UP | IFF_LOOPBACK };
const eth0: NetworkInterface = { name: "eth0", index: 2, flags: IFF_UP | IFF_MULTICAST };
const wlan0Down: NetworkInterface = { name: "wlan0", index: 4, flags: IFF_MULTICAST };
const wg0: NetworkInterface = { name: "wg0", index: 3, flags: IFF_UP }; // no IFF_MULTICAST

describe("plannedMemberships", () => {
  test("every multicast interface but loopback, down ones too, IPv6 group only on IPv6 sockets", () => {
    expect(plannedMemberships([wlan0Down, lo, wg0, eth0], 6)).toEqual([
      { interfaceName: "eth0", interfaceIndex: 2, family: 4, group: PTP_PRIMARY_GROUP_V4 },
      { interfaceName: "eth0", interfaceIndex: 2, family: 6, group: PTP_PRIMARY_GROUP_V6 },
      { interfaceName: "wlan0", interfaceIndex: 4, family: 4, group: PTP_PRIMARY_GROUP_V4 },
      { interfaceName: "wlan0", interfaceIndex: 4, family: 6, group: PTP_PRIMARY_GROUP_V6 },
    ]);
    expect(plannedMemberships([eth0], 4)).toEqual([{ interfaceName: "eth0", interfaceIndex: 2, family: 4, group: "224.0.1.129" }]);
    expect(plannedMemberships([lo, wg0], 6)).toEqual([]);
  });
});

describe("joining on this host", async () => {
  const probe = await Bun.udpSocket({ hostname: "::" });
  const interfaces = currentInterfaces(fdOf(probe));
  probe.close();
  const usable = interfaces.find((i) => (i.flags & IFF_LOOPBACK) === 0 && (i.flags & IFF_MULTICAST) !== 0);

  test("currentInterfaces lists loopback with its flags", () => {
    const loopback = interfaces.find((i) => (i.flags & IFF_LOOPBACK) !== 0);
    expect(loopback?.name).toBe("lo");
    expect(loopback!.index).toBeGreaterThan(0);
  });

  test.skipIf(usable === undefined)("a join is 'joined', then 'already'; a vanished interface is 'unavailable'", async () => {
    const socket = await Bun.udpSocket({ hostname: "::" });
    cleanups.push(() => socket.close());
    const membership = { interfaceName: usable!.name, interfaceIndex: usable!.index, family: 4 as const, group: PTP_PRIMARY_GROUP_V4 };
    expect(joinGroup(fdOf(socket), membership)).toBe("joined");
    expect(joinGroup(fdOf(socket), membership)).toBe("already");
    expect(joinGroup(fdOf(socket), { ...membership, interfaceIndex: 999_999 })).toBe("unavailable");
  });

  test.skipIf(usable === undefined)("PtpGroupMembership joins every socket and skips closed ones", async () => {
    const a = await Bun.udpSocket({ hostname: "::" });
    const b = await Bun.udpSocket({ hostname: "0.0.0.0" });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const problems: string[] = [];
    const membership = new PtpGroupMembership(
      [
        { fd: fdOf(a), family: 6 },
        { fd: fdOf(b), family: 4 },
        { fd: 999, family: 4, isOpen: () => false },
      ],
      () => [usable!],
      (message) => problems.push(message),
    );
    membership.refresh();
    membership.refresh();
    const joined = [...membership.joined].sort();
    expect(joined).toContain(`${fdOf(a)}/${usable!.name}/224.0.1.129`);
    expect(joined).toContain(`${fdOf(b)}/${usable!.name}/224.0.1.129`);
    expect(joined.some((k) => k.startsWith("999/"))).toBe(false);
    // IPv6 may be switched off on the interface; then it is skipped quietly, never reported.
    expect(problems).toEqual([]);
  });
});
