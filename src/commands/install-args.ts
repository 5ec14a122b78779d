// The command lines of `nqptp install` and `nqptp uninstall`: citty defines and renders them;
// parsing is strict (an unknown option is an error, not ignored) and touches nothing.

import { resolve } from "node:path";
import { defineCommand, renderUsage, type ArgsDef, type BooleanArgDef, type StringArgDef } from "citty";
import { parseInterfaceVersion } from "../cli.ts";
import type { InterfaceVersion } from "../interface-version.ts";

const rootArg: StringArgDef = {
  type: "string",
  valueHint: "DIR",
  description: "Install into a staging tree: DIR/usr/local/bin/nqptp and DIR/etc/systemd/system/nqptp.service (created as needed); root not required",
};
const helpArg: BooleanArgDef = { type: "boolean", alias: ["h"], description: "Show this help" };

const installArgs = {
  "interface-version": {
    type: "string",
    valueHint: "5|6|8|9|10",
    description: "Put --interface-version N on the unit's ExecStart= (default: what `shairport-sync -V` asks for, else 5)",
  },
  "shairport-sync": {
    type: "string",
    valueHint: "PATH",
    description: "The shairport-sync executable to ask with -V (default: shairport-sync on PATH)",
  },
  force: { type: "boolean", description: "Replace a binary or unit at the target that nqptp did not install" },
  root: rootArg,
  help: helpArg,
} satisfies ArgsDef;

const uninstallArgs = { root: rootArg, help: helpArg } satisfies ArgsDef;

export const installCommand = defineCommand({
  meta: {
    name: "nqptp install",
    description:
      "Copy this nqptp to /usr/local/bin/nqptp and install /etc/systemd/system/nqptp.service (run as root). Running it again is safe.",
  },
  args: installArgs,
});

export const uninstallCommand = defineCommand({
  meta: {
    name: "nqptp uninstall",
    description: "Stop and disable nqptp when systemd runs, then remove the unit and the binary that `nqptp install` put there (run as root).",
  },
  args: uninstallArgs,
});

export interface InstallOptions {
  /** Absolute; "/" unless --root was given. */
  root: string;
  rootGiven: boolean;
  interfaceVersion: InterfaceVersion | null;
  shairportSync: string | null;
  force: boolean;
}

export interface UninstallOptions {
  root: string;
  rootGiven: boolean;
}

export type ArgsPlan<T> = { kind: "run"; options: T } | { kind: "help" } | { kind: "error"; message: string };

type Parsed = { values: Record<string, string>; flags: Set<string> } | { error: string };

/** `--name value`, `--name=value`, `--flag`, `-h`; anything else is an error. */
function parseStrict(rawArgs: string[], def: ArgsDef): Parsed {
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const lookup = (spelled: string): string | undefined => {
    if (spelled.startsWith("--")) return Object.hasOwn(def, spelled.slice(2)) ? spelled.slice(2) : undefined;
    const short = spelled.slice(1);
    return Object.entries(def).find(([, d]) => {
      const alias = (d as { alias?: string | string[] }).alias;
      return Array.isArray(alias) ? alias.includes(short) : alias === short;
    })?.[0];
  };
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (!arg.startsWith("-") || arg === "-" || arg === "--") return { error: `unexpected argument ${JSON.stringify(arg)}` };
    const eq = arg.indexOf("=");
    const spelled = eq > 0 ? arg.slice(0, eq) : arg;
    const name = lookup(spelled);
    if (name === undefined) return { error: `unknown option ${JSON.stringify(spelled)}` };
    if (def[name]!.type === "boolean") {
      if (eq > 0) return { error: `option ${spelled} takes no value` };
      flags.add(name);
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < rawArgs.length) value = rawArgs[++i]!;
    else return { error: `option ${spelled} needs a value` };
    if (value === "") return { error: `option ${spelled} needs a value` };
    values[name] = value;
  }
  return { values, flags };
}

function rootOption(values: Record<string, string>): { root: string; rootGiven: boolean } {
  return values.root === undefined ? { root: "/", rootGiven: false } : { root: resolve(values.root), rootGiven: true };
}

export function parseInstallArgs(rawArgs: string[]): ArgsPlan<InstallOptions> {
  const parsed = parseStrict(rawArgs, installArgs);
  if ("error" in parsed) return { kind: "error", message: parsed.error };
  if (parsed.flags.has("help")) return { kind: "help" };
  let interfaceVersion: InterfaceVersion | null = null;
  if (parsed.values["interface-version"] !== undefined) {
    const version = parseInterfaceVersion(parsed.values["interface-version"]);
    if (typeof version === "string") return { kind: "error", message: version };
    interfaceVersion = version;
  }
  return {
    kind: "run",
    options: {
      ...rootOption(parsed.values),
      interfaceVersion,
      shairportSync: parsed.values["shairport-sync"] ?? null,
      force: parsed.flags.has("force"),
    },
  };
}

export function parseUninstallArgs(rawArgs: string[]): ArgsPlan<UninstallOptions> {
  const parsed = parseStrict(rawArgs, uninstallArgs);
  if ("error" in parsed) return { kind: "error", message: parsed.error };
  if (parsed.flags.has("help")) return { kind: "help" };
  return { kind: "run", options: rootOption(parsed.values) };
}

export async function installHelp(): Promise<string> {
  return renderUsage(installCommand);
}

export async function uninstallHelp(): Promise<string> {
  return renderUsage(uninstallCommand);
}
