// Control-port messages (spec section 6). Pure: bytes in, a command or a reason out. Never throws.
//
// Two forms exist, one per generation of Shairport Sync:
//   seed (interface 5, 6):        "T 10.0.0.5 10.0.0.9"      replaces the timing peer list
//   named (interface 8, 9, 10):   "/nqptp T 10.0.0.5"        follow one clock
//                                 "/nqptp B" | "E" | "P"      play began / ended / paused (9+)
// Shairport Sync ends a message with a NUL; people testing by hand end it with a newline.

import { traitsOf, type InterfaceVersion } from "../rules/interface-version.ts";
import { parseAddress } from "../rules/ip-address.ts";

export const MAX_CONTROL_MESSAGE_BYTES = 4096;

export type ControlCommand =
  /** `T ip…` (seed: the whole timing peer list; named: follow the first address). `T` alone clears. */
  { kind: "timing-peers"; addresses: string[]; skipped: string[] } | { kind: "play-begin" } | { kind: "play-end" } | { kind: "pause" };

export type ControlErrorKind =
  | "too-long"
  | "empty"
  /** Not UTF-8, or holds control characters other than the trailing NUL/newline. */
  | "not-text"
  | "unknown-command"
  | "unexpected-arguments"
  /** The other generation's form: the user chose the wrong --interface-version. */
  | "wrong-form";

export interface ControlError {
  kind: ControlErrorKind;
  detail: string;
}

export type ControlParseResult = { ok: true; command: ControlCommand; shmName?: string } | { ok: false; error: ControlError };

const decoder = new TextDecoder("utf-8", { fatal: true });

function fail(kind: ControlErrorKind, detail: string): ControlParseResult {
  return { ok: false, error: { kind, detail } };
}

/** Printable excerpt of a message for logs: never more than 80 characters, no control bytes. */
export function excerpt(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

function messageText(bytes: Uint8Array): { ok: true; text: string } | { ok: false; result: ControlParseResult } {
  if (bytes.byteLength > MAX_CONTROL_MESSAGE_BYTES) {
    return { ok: false, result: fail("too-long", `${bytes.byteLength} bytes (at most ${MAX_CONTROL_MESSAGE_BYTES})`) };
  }
  // Everything from the first NUL on is the C string terminator and what follows it.
  const nul = bytes.indexOf(0);
  const body = nul >= 0 ? bytes.subarray(0, nul) : bytes;
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    return { ok: false, result: fail("not-text", "not UTF-8") };
  }
  text = text.replace(/[\r\n]+$/, "");
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text) || /[\r\n]/.test(text)) {
    return { ok: false, result: fail("not-text", `control characters in ${JSON.stringify(excerpt(text))}`) };
  }
  return { ok: true, text };
}

function parsePeers(words: string[]): ControlCommand {
  const addresses: string[] = [];
  const skipped: string[] = [];
  for (const word of words) {
    const parsed = parseAddress(word);
    if (!parsed) skipped.push(excerpt(word));
    else if (!addresses.includes(parsed.text)) addresses.push(parsed.text);
  }
  return { kind: "timing-peers", addresses, skipped };
}

export function parseControlMessage(bytes: Uint8Array, version: InterfaceVersion): ControlParseResult {
  const decoded = messageText(bytes);
  if (!decoded.ok) return decoded.result;
  const words = decoded.text.split(/[ \t]+/).filter((w) => w.length > 0);
  if (words.length === 0) return fail("empty", "empty message");

  const traits = traitsOf(version);
  if (traits.controlForm === "seed") {
    const [command, ...rest] = words;
    if (command === "T") return { ok: true, command: parsePeers(rest) };
    if (command!.startsWith("/")) {
      return fail("wrong-form", `"${excerpt(decoded.text)}" is the form Shairport Sync 4.1 and later send`);
    }
    return fail("unknown-command", `unknown command ${JSON.stringify(excerpt(command!))}`);
  }

  const [shmName, command, ...rest] = words;
  if (shmName === "T") {
    return fail("wrong-form", `"${excerpt(decoded.text)}" is the form Shairport Sync 4.0 and earlier send`);
  }
  if (command === undefined) return fail("unknown-command", `no command after ${JSON.stringify(excerpt(shmName!))}`);
  if (command === "T") return { ok: true, command: parsePeers(rest), shmName: shmName! };
  if (traits.hasPlayCommands && (command === "B" || command === "E" || command === "P")) {
    if (rest.length > 0) {
      return fail("unexpected-arguments", `"${command}" takes no arguments, got ${JSON.stringify(excerpt(rest.join(" ")))}`);
    }
    const kind = command === "B" ? "play-begin" : command === "E" ? "play-end" : "pause";
    return { ok: true, command: { kind }, shmName: shmName! };
  }
  return fail("unknown-command", `unknown command ${JSON.stringify(excerpt(command))} for interface version ${version}`);
}
