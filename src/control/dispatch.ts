// What a parsed control message asks of the clock tracker (spec sections 6 and 11). Pure: a
// command and the interface's traits in, tracker events and log notes out. The shell carries it
// out: for a client it has not seen, it creates the region first (shm/publisher.ts).
//
//   seed form (5, 6):  "T ip…" replaces the timing peer list; "T" alone or "T garbage" clears it
//                      (the seed's behaviour: whatever survives parsing is the list).
//   named (8-10):      "<name> T ip…" the client follows the first address; "<name> T" stops it;
//                      "<name> T garbage" is a mistake, not a request to stop timing, and is
//                      ignored; "<name> B" / "E" / "P" (9, 10) play began / ended / paused.
//                      <name> is the client's region: it must be a valid shm name.

import type { TrackerEvent } from "../clock/tracker.ts";
import type { InterfaceTraits } from "../rules/interface-version.ts";
import { checkShmName } from "../rules/shm-name.ts";
import type { ControlCommand } from "./parse.ts";

export interface DispatchNote {
  /** Key for the shell's log rate limiter. */
  key: string;
  level: "debug" | "warn";
  message: string;
}

export type Dispatch =
  /** Hand `events` to the tracker, in order, on behalf of `client` (null: the seed's one client). */
  | { kind: "events"; client: string | null; events: TrackerEvent[]; notes: DispatchNote[] }
  /** Nothing for the tracker; say why. */
  | { kind: "ignore"; notes: DispatchNote[] };

export function dispatchControl(command: ControlCommand, shmName: string | undefined, traits: InterfaceTraits): Dispatch {
  const notes: DispatchNote[] = [];
  if (command.kind === "timing-peers" && command.skipped.length > 0) {
    notes.push({ key: "control:skipped", level: "warn", message: `timing peer list: skipped malformed address(es) ${command.skipped.join(", ")}` });
  }
  if (traits.controlForm === "seed") {
    if (command.kind !== "timing-peers") return { kind: "ignore", notes };
    return { kind: "events", client: null, events: [{ kind: "timing-peers", addresses: command.addresses }], notes };
  }
  const client = shmName ?? "";
  const invalid = checkShmName(client);
  if (invalid !== null) {
    notes.push({ key: "control:client-name", level: "warn", message: `ignored a control message for client ${JSON.stringify(client)}: ${invalid}` });
    return { kind: "ignore", notes };
  }
  switch (command.kind) {
    case "timing-peers": {
      if (command.addresses.length === 0 && command.skipped.length > 0) return { kind: "ignore", notes };
      if (command.addresses.length > 1) {
        notes.push({
          key: "control:first-only",
          level: "debug",
          message: `${client}: following ${command.addresses[0]} only (interface ${traits.version} follows the first address)`,
        });
      }
      return { kind: "events", client, events: [{ kind: "follow", client, address: command.addresses[0] ?? null }], notes };
    }
    case "play-begin":
    case "play-end":
    case "pause":
      return { kind: "events", client, events: [{ kind: command.kind, client }], notes };
  }
}
