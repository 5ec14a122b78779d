// control/dispatch.ts: what each parsed control message asks of the tracker, per interface.

import { describe, expect, test } from "bun:test";
import { dispatchControl } from "../../src/control/dispatch.ts";
import { parseControlMessage } from "../../src/control/parse.ts";
import { traitsOf, type InterfaceVersion } from "../../src/rules/interface-version.ts";

function dispatch(text: string, version: InterfaceVersion) {
  const parsed = parseControlMessage(new TextEncoder().encode(`${text}\0`), version);
  if (!parsed.ok) throw new Error(`did not parse: ${parsed.error.kind}`);
  return dispatchControl(parsed.command, parsed.shmName, traitsOf(version));
}

describe("the seed's form (5, 6)", () => {
  test("T ip… replaces the peer list; T alone and T garbage clear it (the seed's behaviour)", () => {
    for (const version of [5, 6] as const) {
      expect(dispatch("T 10.0.0.5 10.0.0.6", version)).toEqual({
        kind: "events",
        client: null,
        events: [{ kind: "timing-peers", addresses: ["10.0.0.5", "10.0.0.6"] }],
        notes: [],
      });
      expect(dispatch("T", version)).toMatchObject({ kind: "events", events: [{ kind: "timing-peers", addresses: [] }] });
      const garbage = dispatch("T nonsense", version);
      expect(garbage).toMatchObject({ kind: "events", events: [{ kind: "timing-peers", addresses: [] }] });
      expect(garbage.notes).toEqual([{ key: "control:skipped", level: "warn", message: "timing peer list: skipped malformed address(es) nonsense" }]);
    }
  });
});

describe("the named form (8-10)", () => {
  test("<name> T ip follows the first address, for that client", () => {
    const d = dispatch("/nqptp-kitchen T 10.0.0.5 10.0.0.6", 10);
    expect(d).toEqual({
      kind: "events",
      client: "/nqptp-kitchen",
      events: [{ kind: "follow", client: "/nqptp-kitchen", address: "10.0.0.5" }],
      notes: [
        { key: "control:first-only", level: "debug", message: "/nqptp-kitchen: following 10.0.0.5 only (interface 10 follows the first address)" },
      ],
    });
  });

  test("<name> T alone stops that client; <name> T garbage is a mistake and is ignored", () => {
    expect(dispatch("/nqptp T", 9)).toEqual({
      kind: "events",
      client: "/nqptp",
      events: [{ kind: "follow", client: "/nqptp", address: null }],
      notes: [],
    });
    const garbage = dispatch("/nqptp T not-an-address", 9);
    expect(garbage.kind).toBe("ignore");
    expect(garbage.notes.map((n) => n.key)).toEqual(["control:skipped"]);
  });

  test("B, E, P become play events of the naming client (9, 10)", () => {
    for (const [command, kind] of [
      ["B", "play-begin"],
      ["E", "play-end"],
      ["P", "pause"],
    ] as const) {
      expect(dispatch(`/room ${command}`, 10)).toEqual({ kind: "events", client: "/room", events: [{ kind, client: "/room" }], notes: [] });
    }
  });

  test("a hostile client name creates nothing: the message is ignored with a warning", () => {
    const names = ["/../x", "/a/b", "/", `/${"x".repeat(63)}`, "/bad\u0007", "/tab\tname", "/non\u00a0breaking", "nqptp"];
    for (const name of names) {
      const parsed = parseControlMessage(new TextEncoder().encode(`${name} T 10.0.0.5\0`), 10);
      // Some never get past the parser (control characters, no leading /); the rest stop here.
      if (!parsed.ok) continue;
      const d = dispatchControl(parsed.command, parsed.shmName, traitsOf(10));
      expect({ name, kind: d.kind }).toEqual({ name, kind: "ignore" });
      expect(d.notes.some((n) => n.key === "control:client-name" && n.level === "warn")).toBe(true);
    }
    // The longest valid name (63 bytes) is accepted.
    const longest = `/${"x".repeat(62)}`;
    expect(dispatch(`${longest} T 10.0.0.5`, 10)).toMatchObject({ kind: "events", client: longest });
  });
});
