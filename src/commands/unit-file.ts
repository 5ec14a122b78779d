// The systemd unit that `nqptp install` writes, as text: rendering it from the repository's
// nqptp.service, recognising one we wrote, and reading the few directives the installer acts on.
// Pure: no files, no processes.

import type { InterfaceVersion } from "../rules/interface-version.ts";

/** Where the unit's ExecStart= expects the binary (relative to the root installed into). */
export const INSTALLED_BINARY = "/usr/local/bin/nqptp";
export const INSTALLED_UNIT = "/etc/systemd/system/nqptp.service";
export const UNIT_NAME = "nqptp.service";

/** The first line of every unit we install; `nqptp uninstall` removes only units that carry it. */
export const UNIT_MARKER_PREFIX = "# Installed by nqptp ";

export function markerLine(version: string): string {
  return `${UNIT_MARKER_PREFIX}${version}. \`nqptp uninstall\` removes this file; for local changes use \`systemctl edit nqptp\`.`;
}

/** True when some line of the unit is our marker (it is the first line unless someone edited the file). */
export function isOurUnit(text: string): boolean {
  return text.split("\n").some((line) => line.startsWith(UNIT_MARKER_PREFIX));
}

export interface UnitDirective {
  section: string;
  key: string;
  value: string;
  /** Index of the line in text.split("\n"). */
  line: number;
}

/** systemd.syntax(7), as much as we need: sections, key=value, comments; no line continuations. */
export function unitDirectives(text: string): UnitDirective[] {
  const out: UnitDirective[] = [];
  let section = "";
  text.split("\n").forEach((raw, line) => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) return;
    const header = /^\[(.+)\]$/.exec(trimmed);
    if (header) {
      section = header[1]!;
      return;
    }
    const eq = trimmed.indexOf("=");
    if (eq <= 0) return;
    out.push({ section, key: trimmed.slice(0, eq).trim(), value: trimmed.slice(eq + 1).trim(), line });
  });
  return out;
}

export interface RenderOptions {
  /** Added to ExecStart= as `--interface-version N`; absent leaves the command as the template has it. */
  interfaceVersion?: InterfaceVersion;
  /** Added to ExecStart= as `--interface NAME`, one each, in this order (network interfaces, for PTP). */
  interfaces?: readonly string[];
  /** The nqptp version that installs the unit, for the marker line. */
  version: string;
}

export type RenderResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * One argument of ExecStart=, written so that systemd passes it on unchanged (systemd.service(5),
 * "Command lines"): as it is when it holds only letters, digits and `_.@+,=-`; otherwise in
 * double quotes, with `\` and `"` escaped, control characters as `\xNN`, and `$` and `%` doubled
 * (systemd expands variables and specifiers inside quotes too).
 */
export function execArgument(word: string): string {
  if (/^[A-Za-z0-9_.@+,=-]+$/.test(word)) return word;
  const escaped = [...word]
    .map((c) => {
      if (c === "\\" || c === '"') return `\\${c}`;
      if (c === "$" || c === "%") return c + c;
      const code = c.codePointAt(0)!;
      return code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : c;
    })
    .join("");
  return `"${escaped}"`;
}

/** Words of the template's ExecStart= that our options replace: `--interface-version`, `--interface`/`-i`, with their values. */
function replacedBy(word: string): "word" | "word and value" | null {
  if (word === "--interface-version" || word === "--interface" || word === "-i") return "word and value";
  if (word.startsWith("--interface-version=") || word.startsWith("--interface=")) return "word";
  return null;
}

/**
 * The template with our marker as its first line and the interface version (and network
 * interfaces) on ExecStart=. Every other line is kept byte for byte. An `--interface-version` or
 * `--interface` already on the line is replaced.
 */
export function renderUnit(template: string, options: RenderOptions): RenderResult {
  const lines = template.split("\n");
  const execStarts = unitDirectives(template).filter((d) => d.section === "Service" && d.key === "ExecStart" && d.value !== "");
  if (execStarts.length !== 1) {
    return { ok: false, error: `the unit template needs exactly one ExecStart= in [Service], found ${execStarts.length}` };
  }
  const exec = execStarts[0]!;
  const words = exec.value.split(/\s+/);
  if (words[0] !== INSTALLED_BINARY) {
    return { ok: false, error: `the unit template's ExecStart= runs ${words[0]}, not ${INSTALLED_BINARY}` };
  }
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const replaced = replacedBy(word);
    if (replaced === "word and value") i++;
    if (replaced === null) kept.push(word);
  }
  if (options.interfaceVersion !== undefined) kept.push("--interface-version", String(options.interfaceVersion));
  for (const name of options.interfaces ?? []) kept.push("--interface", execArgument(name));
  lines[exec.line] = `ExecStart=${kept.join(" ")}`;
  // A template that already carries a marker (someone rendered it twice) keeps only the new one.
  const body = lines.filter((line) => !line.startsWith(UNIT_MARKER_PREFIX));
  return { ok: true, text: [markerLine(options.version), ...body].join("\n") };
}

/** The ExecStart= command of a unit, for messages. */
export function execStartOf(text: string): string | null {
  return unitDirectives(text).find((d) => d.section === "Service" && d.key === "ExecStart" && d.value !== "")?.value ?? null;
}

export type ServiceAccount =
  /** DynamicUser=yes: systemd allocates a user each time the service starts. */
  | { kind: "dynamic" }
  /** User=NAME: an account that must exist. */
  | { kind: "user"; name: string }
  /** User= a number: nothing we can create by name. */
  | { kind: "uid"; uid: number }
  /** No User= (or User=root): runs as root. */
  | { kind: "root" };

const TRUE_WORDS = new Set(["1", "yes", "y", "true", "t", "on"]);

/** Which account the service runs as (systemd.exec(5) User=, DynamicUser=; the last assignment wins). */
export function serviceAccount(text: string): ServiceAccount {
  const service = unitDirectives(text).filter((d) => d.section === "Service");
  const dynamic = service.filter((d) => d.key === "DynamicUser").at(-1);
  if (dynamic && TRUE_WORDS.has(dynamic.value.toLowerCase())) return { kind: "dynamic" };
  const user = service.filter((d) => d.key === "User").at(-1)?.value ?? "";
  if (user === "" || user === "root" || user === "0") return { kind: "root" };
  if (/^[0-9]+$/.test(user)) return { kind: "uid", uid: Number(user) };
  return { kind: "user", name: user };
}

/**
 * The links `systemctl enable` makes for the unit, relative to /etc/systemd/system:
 * `<target>.wants/nqptp.service` for each WantedBy=, `.requires/` for each RequiredBy= (systemd.unit(5) [Install]).
 */
export function enablementLinks(text: string, unitName = UNIT_NAME): string[] {
  const out: string[] = [];
  for (const d of unitDirectives(text)) {
    if (d.section !== "Install") continue;
    const suffix = d.key === "WantedBy" ? "wants" : d.key === "RequiredBy" ? "requires" : null;
    if (!suffix) continue;
    for (const target of d.value.split(/\s+/).filter((t) => t !== "")) {
      if (target.includes("/")) continue;
      const link = `${target}.${suffix}/${unitName}`;
      if (!out.includes(link)) out.push(link);
    }
  }
  return out;
}
