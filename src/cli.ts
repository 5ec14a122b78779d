// The command line (spec section 9): citty defines and renders it; this module turns raw
// arguments into a validated plan without touching process.argv, stdout or the network.

import { defineCommand, parseArgs, renderUsage, type ArgsDef } from "citty";
import { parseAddress } from "./net/address.ts";
import { DEFAULT_INTERFACE_VERSION, INTERFACE_VERSIONS, isInterfaceVersion, type InterfaceVersion } from "./interface-version.ts";
import type { OffsetFilterName } from "./clock/offset-filter.ts";
import { VERSION } from "./version.ts";

export interface DaemonOptions {
  interfaceVersion: InterfaceVersion;
  shmName: string;
  controlPort: number;
  controlAddresses: string[];
  eventPort: number;
  generalPort: number;
  /** Addresses the PTP ports listen on; empty means every address of both families. */
  ptpAddresses: string[];
  /** Accept timing peer lists from senders that are not on loopback (off by default). */
  allowRemoteControl: boolean;
  /** How offsets are estimated (default: classic). */
  offsetFilter?: OffsetFilterName;
  /** Interfaces 8-10: at most this many client regions, the main one included (default 8). */
  maxClients?: number;
  verbosity: number;
}

export const DEFAULTS: Omit<DaemonOptions, "verbosity"> = {
  interfaceVersion: DEFAULT_INTERFACE_VERSION,
  shmName: "/nqptp",
  controlPort: 9000,
  controlAddresses: ["127.0.0.1", "::1"],
  eventPort: 319,
  generalPort: 320,
  ptpAddresses: [],
  allowRemoteControl: false,
};

const args = {
  version: { type: "boolean", alias: ["V"], description: "Print the version and the shared memory interface version, then exit" },
  verbose: { type: "boolean", alias: ["v"], description: "More log detail: -v debug, -vv trace (repeatable)" },
  help: { type: "boolean", alias: ["h"], description: "Show this help" },
  "interface-version": {
    type: "string",
    valueHint: INTERFACE_VERSIONS.join("|"),
    description: "Shared memory interface to serve (5: this README's struct)",
    default: String(DEFAULTS.interfaceVersion),
  },
  "shm-name": { type: "string", valueHint: "/name", description: "POSIX shared memory name", default: DEFAULTS.shmName },
  "control-port": { type: "string", valueHint: "port", description: "UDP port for timing peer lists", default: String(DEFAULTS.controlPort) },
  "control-address": {
    type: "string",
    valueHint: "addr[,addr]",
    description: "Addresses the control port listens on",
    default: DEFAULTS.controlAddresses.join(","),
  },
  "event-port": { type: "string", valueHint: "port", description: "PTP event port (Sync)", default: String(DEFAULTS.eventPort) },
  "general-port": { type: "string", valueHint: "port", description: "PTP general port (Follow_Up, Announce)", default: String(DEFAULTS.generalPort) },
  "allow-remote-control": {
    type: "boolean",
    description: "Accept control messages from other hosts when --control-address is not loopback (unsafe on an open LAN)",
  },
  "ptp-address": {
    type: "string",
    valueHint: "addr[,addr]",
    description: "Listen for PTP on these addresses only (default: all addresses, IPv4 and IPv6)",
  },
} as const satisfies ArgsDef;

export const command = defineCommand({
  meta: {
    name: "nqptp",
    version: VERSION,
    description: "Not Quite PTP: publishes the AirPlay master clock's offset in shared memory for Shairport Sync",
  },
  args,
  // Listed for the help text; src/main.ts dispatches them before these options are parsed.
  subCommands: {
    status: defineCommand({ meta: { name: "status", description: "Show the published master (and with --clocks every clock seen)" } }),
    install: defineCommand({ meta: { name: "install", description: "Install this binary and its systemd unit (root)" } }),
    uninstall: defineCommand({ meta: { name: "uninstall", description: "Remove what install put in place (root)" } }),
  },
});

export type CliPlan =
  | { kind: "run"; options: DaemonOptions }
  | { kind: "version"; interfaceVersion: InterfaceVersion }
  | { kind: "help" }
  | { kind: "error"; message: string };

const VALUE_OPTIONS = new Set(
  Object.entries(args)
    .filter(([, def]) => def.type === "string")
    .map(([name]) => `--${name}`),
);
const FLAG_OPTIONS = new Set(["--version", "-V", "--help", "-h", "--verbose", "--allow-remote-control"]);

/** Counts -v, -vv, -vvv, --verbose; citty would only see a boolean. */
function countVerbosity(rawArgs: string[]): number {
  let count = 0;
  for (const arg of rawArgs) {
    if (arg === "--") break;
    if (/^-v+$/.test(arg)) count += arg.length - 1;
    else if (arg === "--verbose") count += 1;
  }
  return count;
}

/** citty accepts anything; a daemon must refuse what it does not understand. */
function findUnknownArgument(rawArgs: string[]): string | null {
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (FLAG_OPTIONS.has(arg) || /^-v+$/.test(arg)) continue;
    const name = arg.split("=", 1)[0]!;
    if (VALUE_OPTIONS.has(name)) {
      if (!arg.includes("=")) {
        if (i + 1 >= rawArgs.length) return `option ${arg} needs a value`;
        i++;
      }
      continue;
    }
    if (arg.startsWith("-")) return `unknown option ${JSON.stringify(arg)}`;
    return `unexpected argument ${JSON.stringify(arg)}`;
  }
  return null;
}

function parsePort(name: string, value: string): number | string {
  if (!/^[0-9]{1,5}$/.test(value)) return `--${name} must be a port number 1-65535, got ${JSON.stringify(value)}`;
  const port = Number(value);
  if (port < 1 || port > 65535) return `--${name} must be a port number 1-65535, got ${value}`;
  return port;
}

export function parseInterfaceVersion(value: string): InterfaceVersion | string {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !isInterfaceVersion(n)) {
    return `--interface-version must be one of ${INTERFACE_VERSIONS.join(", ")}, got ${JSON.stringify(value)}`;
  }
  return n;
}

/** A POSIX shm name: one leading slash, no other, 2-255 characters (shm_open(3)). */
function parseShmName(value: string): string | { error: string } {
  if (!/^\/[^/\0]{1,254}$/.test(value) || value === "/." || value === "/..") {
    return { error: `--shm-name must look like "/nqptp" (a slash, then a name without slashes), got ${JSON.stringify(value)}` };
  }
  return value;
}

function parseAddressList(name: string, value: string): string[] | string {
  const out: string[] = [];
  for (const word of value.split(",").filter((w) => w.length > 0)) {
    const address = parseAddress(word);
    if (!address) return `--${name}: ${JSON.stringify(word)} is not an IP address`;
    if (!out.includes(address.text)) out.push(address.text);
  }
  return out;
}

export function planFromArgs(rawArgs: string[]): CliPlan {
  const unknown = findUnknownArgument(rawArgs);
  if (unknown) return { kind: "error", message: unknown };
  const parsed = parseArgs(rawArgs, args) as Record<string, string | boolean | undefined>;
  if (parsed.help) return { kind: "help" };

  const version = parseInterfaceVersion(String(parsed["interface-version"]));
  if (typeof version === "string") return { kind: "error", message: version };
  if (parsed.version) return { kind: "version", interfaceVersion: version };

  const ports: Record<string, number> = {};
  for (const name of ["control-port", "event-port", "general-port"]) {
    const port = parsePort(name, String(parsed[name]));
    if (typeof port === "string") return { kind: "error", message: port };
    ports[name] = port;
  }
  if (ports["event-port"] === ports["general-port"]) {
    return { kind: "error", message: "--event-port and --general-port must differ" };
  }

  const shmName = parseShmName(String(parsed["shm-name"]));
  if (typeof shmName !== "string") return { kind: "error", message: shmName.error };

  const controlAddresses = parseAddressList("control-address", String(parsed["control-address"]));
  if (typeof controlAddresses === "string") return { kind: "error", message: controlAddresses };
  if (controlAddresses.length === 0) return { kind: "error", message: "--control-address needs at least one address" };
  const ptpAddresses = parseAddressList("ptp-address", String(parsed["ptp-address"] ?? ""));
  if (typeof ptpAddresses === "string") return { kind: "error", message: ptpAddresses };

  return {
    kind: "run",
    options: {
      interfaceVersion: version,
      shmName,
      controlPort: ports["control-port"]!,
      controlAddresses,
      eventPort: ports["event-port"]!,
      generalPort: ports["general-port"]!,
      ptpAddresses,
      allowRemoteControl: parsed["allow-remote-control"] === true,
      verbosity: countVerbosity(rawArgs),
    },
  };
}

export async function helpText(): Promise<string> {
  return renderUsage(command);
}
