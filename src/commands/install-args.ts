// The command lines of `nqptp install` and `nqptp uninstall`: citty defines and renders them,
// src/cli/args.ts reads them strictly (as every command's); parsing touches nothing.

import { resolve } from "node:path";
import { defineCommand, renderUsage, type ArgsDef, type BooleanArgDef, type StringArgDef } from "citty";
import { parseCommandLine, parseInterfaceName, parseInterfaceVersion, type CommandLine } from "../cli/args.ts";
import { DEFAULT_INTERFACE_VERSION, INTERFACE_VERSIONS, type InterfaceVersion } from "../rules/interface-version.ts";

const rootArg: StringArgDef = {
  type: "string",
  valueHint: "DIR",
  description: "Install into a staging tree: DIR/usr/local/bin/nqptp and DIR/etc/systemd/system/nqptp.service (created as needed); root not required",
};
const helpArg: BooleanArgDef = { type: "boolean", alias: ["h"], description: "Show this help" };

const installArgs = {
  "interface-version": {
    type: "string",
    valueHint: INTERFACE_VERSIONS.join("|"),
    description: `Put --interface-version N on the unit's ExecStart= (default: what \`shairport-sync -V\` asks for, else ${DEFAULT_INTERFACE_VERSION})`,
  },
  interface: {
    type: "string",
    alias: ["i"],
    valueHint: "name",
    description:
      "Put --interface NAME on the unit's ExecStart= (repeat for more): the daemon hears PTP only on these network interfaces (default: every interface)",
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
    description: "Copy this nqptp to /usr/local/bin/nqptp and install /etc/systemd/system/nqptp.service (run as root). Running it again is safe.",
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
  /** Network interfaces for the daemon's --interface (empty: every interface). */
  interfaces: string[];
  shairportSync: string | null;
  force: boolean;
}

export interface UninstallOptions {
  root: string;
  rootGiven: boolean;
}

export type ArgsPlan<T> = { kind: "run"; options: T } | { kind: "help" } | { kind: "error"; message: string };

function rootOption(line: CommandLine): { root: string; rootGiven: boolean } {
  const root = line.value("root");
  return root === undefined ? { root: "/", rootGiven: false } : { root: resolve(root), rootGiven: true };
}

export function parseInstallArgs(rawArgs: readonly string[]): ArgsPlan<InstallOptions> {
  const parsed = parseCommandLine(rawArgs, installArgs, ["interface"]);
  if (!parsed.ok) return { kind: "error", message: parsed.reason };
  const line = parsed.line;
  if (line.flag("help")) return { kind: "help" };
  const interfaceVersion = line.take("interface-version", parseInterfaceVersion, null);
  const interfaces = line.takeEach("interface", parseInterfaceName);
  if (line.error) return { kind: "error", message: line.error };
  return {
    kind: "run",
    options: {
      ...rootOption(line),
      interfaceVersion,
      interfaces,
      shairportSync: line.value("shairport-sync") ?? null,
      force: line.flag("force"),
    },
  };
}

export function parseUninstallArgs(rawArgs: readonly string[]): ArgsPlan<UninstallOptions> {
  const parsed = parseCommandLine(rawArgs, uninstallArgs);
  if (!parsed.ok) return { kind: "error", message: parsed.reason };
  if (parsed.line.flag("help")) return { kind: "help" };
  return { kind: "run", options: rootOption(parsed.line) };
}

export async function installHelp(): Promise<string> {
  return renderUsage(installCommand);
}

export async function uninstallHelp(): Promise<string> {
  return renderUsage(uninstallCommand);
}
