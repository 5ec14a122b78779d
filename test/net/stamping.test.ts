// Which stamping each PTP port gets, and the one warning about it, for every combination of what
// the kernel and the runtime refused, with and without --interface (src/net/stamping.ts); and
// which socket a general-port send goes out on (src/net/send-socket.ts).

import { describe, expect, test } from "bun:test";
import { pickSendSocket } from "../../src/net/send-socket.ts";
import { chooseInterfaceStamping, chooseStamping, type EventPortFacts, type StampingChoice } from "../../src/net/stamping.ts";

const OPTION = "setsockopt(7, SO_TIMESTAMPNS 1) failed: Protocol not available (ENOPROTOOPT)";
const IOCTL = "ioctl(SIOCGSTAMPNS) failed with ENOTTY";
const WORKER = "the event-port reader did not start within 5000 ms";

const rows: [string, EventPortFacts, string | null, StampingChoice][] = [
  ["all works", { kind: "reader" }, null, { event: "worker", general: "ioctl", warning: null }],
  [
    "only the general port's ioctl is refused",
    { kind: "reader" },
    IOCTL,
    {
      event: "worker",
      general: "callback",
      warning: {
        role: "general",
        text: "kernel receive timestamps are not available on the PTP general port (ioctl(SIOCGSTAMPNS) failed with ENOTTY); stamping there in JavaScript",
      },
    },
  ],
  [
    "SO_TIMESTAMPNS refused, the ioctl works",
    { kind: "no-timestamp-option", reason: OPTION, ioctlRefusal: null },
    null,
    {
      event: "ioctl",
      general: "ioctl",
      warning: {
        role: "event",
        text:
          "kernel receive timestamps per datagram are not available (setsockopt(7, SO_TIMESTAMPNS 1) failed: Protocol not available (ENOPROTOOPT)); " +
          "stamping PTP event messages with ioctl(SIOCGSTAMPNS) instead, which is late when several arrive together: offsets will be less accurate",
      },
    },
  ],
  [
    "SO_TIMESTAMPNS and the ioctl refused everywhere: the event port is told, the general port's refusal is not",
    { kind: "no-timestamp-option", reason: OPTION, ioctlRefusal: IOCTL },
    IOCTL,
    {
      event: "callback",
      general: "callback",
      warning: {
        role: "event",
        text:
          "kernel receive timestamps per datagram are not available (setsockopt(7, SO_TIMESTAMPNS 1) failed: Protocol not available (ENOPROTOOPT)); " +
          "stamping PTP event messages in JavaScript instead (ioctl(SIOCGSTAMPNS) failed with ENOTTY), which can be milliseconds late under load: offsets will be less accurate",
      },
    },
  ],
  [
    "the Worker did not start, the ioctl works",
    { kind: "reader-failed", reason: WORKER, ioctlRefusal: null },
    null,
    {
      event: "ioctl",
      general: "ioctl",
      warning: {
        role: "event",
        text:
          "kernel receive timestamps per datagram are not available (the event-port reader did not start: the event-port reader did not start within 5000 ms); " +
          "stamping PTP event messages with ioctl(SIOCGSTAMPNS) instead, which is late when several arrive together: offsets will be less accurate",
      },
    },
  ],
  [
    "the Worker did not start and the general port's ioctl is refused: only the event port is told",
    { kind: "reader-failed", reason: "worker.ts: not found", ioctlRefusal: null },
    IOCTL,
    {
      event: "ioctl",
      general: "callback",
      warning: {
        role: "event",
        text:
          "kernel receive timestamps per datagram are not available (the event-port reader did not start: worker.ts: not found); " +
          "stamping PTP event messages with ioctl(SIOCGSTAMPNS) instead, which is late when several arrive together: offsets will be less accurate",
      },
    },
  ],
];

describe("chooseStamping", () => {
  test.each(rows)("%s", (_name, event, generalIoctlRefusal, expected) => {
    expect(chooseStamping(event, generalIoctlRefusal)).toEqual(expected);
  });
});

describe("chooseInterfaceStamping (--interface: both ports in the reader thread)", () => {
  test.each([
    ["SO_TIMESTAMPNS works: kernel stamps on both ports, nothing to say", null, { event: "worker", general: "worker", warning: null }],
    [
      "SO_TIMESTAMPNS refused: the reader thread's clock, said once",
      OPTION,
      {
        event: "reader-clock",
        general: "reader-clock",
        warning: {
          role: "event",
          text:
            "kernel receive timestamps per datagram are not available (setsockopt(7, SO_TIMESTAMPNS 1) failed: Protocol not available (ENOPROTOOPT)); " +
            "stamping PTP messages with the clock of the reader thread instead, as it receives them: offsets will be less accurate",
        },
      },
    ],
  ] as const)("%s", (_name, refusal, expected) => {
    expect(chooseInterfaceStamping(refusal)).toEqual(expected);
  });
});

describe("pickSendSocket", () => {
  const wildcard = { hostname: "::", id: "wildcard" };
  const v4 = { hostname: "192.168.1.5", id: "v4" };
  const v6 = { hostname: "fe80::1%eth0", id: "v6" };
  test.each([
    ["the dual-stack wildcard, IPv4 through a mapped address", [wildcard], "10.0.0.7", "wildcard", "::ffff:10.0.0.7"],
    ["the dual-stack wildcard, IPv6 as it is", [wildcard], "fe80::2", "wildcard", "fe80::2"],
    ["the IPv4-only wildcard", [{ hostname: "0.0.0.0", id: "any4" }], "10.0.0.7", "any4", "10.0.0.7"],
    ["a socket of the address's family: IPv4", [v6, v4], "10.0.0.7", "v4", "10.0.0.7"],
    ["a socket of the address's family: IPv6", [v4, v6], "fe80::2", "v6", "fe80::2"],
    ["no socket of that family: the first, which reports the error", [v4], "fe80::2", "v4", "fe80::2"],
  ] as const)("%s", (_name, sockets, address, id, target) => {
    const picked = pickSendSocket(sockets, address);
    expect(picked.socket.id).toBe(id);
    expect(picked.target).toBe(target);
  });
});
