// The daemon's command line (spec section 9): citty defines and renders it, src/cli/args.ts reads it
// strictly; this module turns raw arguments into a validated plan without touching
// process.argv, stdout or the network. What the options mean is src/daemon/options.ts.

import { defineCommand, renderUsage, type ArgsDef } from "citty";
import {
  integerIn,
  oneOf,
  parseCommandLine,
  parseInterfaceName,
  parseInterfaceVersion,
  parseIpAddressList,
  parsePort,
  parseShmNameOption,
} from "./args.ts";
import { INTERFACE_VERSIONS, traitsOf, type InterfaceVersion } from "../rules/interface-version.ts";
import { DEFAULTS, MAX_CLIENTS_LIMIT, OFFSET_FILTERS, type DaemonOptions } from "../daemon/options.ts";
import { VERSION } from "./version.ts";

const manyClients = INTERFACE_VERSIONS.filter((v) => traitsOf(v).namedClients);
const oneClient = INTERFACE_VERSIONS.filter((v) => !traitsOf(v).namedClients);

const args = {
  version: { type: "boolean", alias: ["V"], description: "Print the version and the shared memory interface version, then exit" },
  verbose: { type: "boolean", alias: ["v"], description: "More log detail: -v debug, -vv trace (repeatable)" },
  help: { type: "boolean", alias: ["h"], description: "Show this help" },
  "interface-version": {
    type: "string",
    valueHint: INTERFACE_VERSIONS.join("|"),
    description: "Shared memory interface to serve (which one your Shairport Sync reads: see the README)",
    default: String(DEFAULTS.interfaceVersion),
  },
  "shm-name": { type: "string", valueHint: "/name", description: "POSIX shared memory name (2-63 bytes)", default: DEFAULTS.shmName },
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
  interface: {
    type: "string",
    alias: ["i"],
    valueHint: "name",
    description:
      "PTP on this network interface only, repeatable (-i eth0 -i wlan0); waited for until it exists; not with --ptp-address (default: every interface)",
  },
  "offset-filter": {
    type: "string",
    valueHint: OFFSET_FILTERS.join("|"),
    description: `Offset filter: tracking follows the master's rate, classic is the original's rules (default: ${DEFAULTS.offsetFilter})`,
  },
  "max-clients": {
    type: "string",
    valueHint: "n",
    description: `Clients (shm regions) interfaces ${manyClients.join(", ")} may serve, --shm-name's included: 1-${MAX_CLIENTS_LIMIT}; no effect on ${oneClient.join(" and ")} (one client)`,
    default: String(DEFAULTS.maxClients),
  },
} as const satisfies ArgsDef;

export const command = defineCommand({
  meta: {
    name: "nqptp",
    version: VERSION,
    description: "Not Quite PTP: publishes the AirPlay master clock's offset in shared memory for Shairport Sync",
  },
  args,
  // Listed for the help text; src/cli/run.ts dispatches them before these options are parsed.
  subCommands: {
    status: defineCommand({
      meta: { name: "status", description: "Show the published master, every client region (8-10), and with --clocks every clock seen" },
    }),
    install: defineCommand({ meta: { name: "install", description: "Install this binary and its systemd unit (root)" } }),
    uninstall: defineCommand({ meta: { name: "uninstall", description: "Remove what install put in place (root)" } }),
  },
});

export type CliPlan =
  | { kind: "run"; options: DaemonOptions }
  | { kind: "version"; interfaceVersion: InterfaceVersion }
  | { kind: "help" }
  | { kind: "error"; message: string };

/** Options that may be given more than once. */
const REPEATABLE = ["interface"] as const;

const parseOffsetFilter = oneOf(OFFSET_FILTERS);
const parseMaxClients = integerIn(1, MAX_CLIENTS_LIMIT);

export function planFromArgs(rawArgs: readonly string[]): CliPlan {
  const parsed = parseCommandLine(rawArgs, args, REPEATABLE);
  if (!parsed.ok) return { kind: "error", message: parsed.reason };
  const line = parsed.line;
  if (line.flag("help")) return { kind: "help" };

  const interfaceVersion = line.take("interface-version", parseInterfaceVersion, DEFAULTS.interfaceVersion);
  if (line.error) return { kind: "error", message: line.error };
  if (line.flag("version")) return { kind: "version", interfaceVersion };

  const options: DaemonOptions = {
    interfaceVersion,
    shmName: line.take("shm-name", parseShmNameOption, DEFAULTS.shmName),
    controlPort: line.take("control-port", parsePort, DEFAULTS.controlPort),
    controlAddresses: line.take("control-address", parseIpAddressList, [...DEFAULTS.controlAddresses]),
    eventPort: line.take("event-port", parsePort, DEFAULTS.eventPort),
    generalPort: line.take("general-port", parsePort, DEFAULTS.generalPort),
    ptpAddresses: line.take("ptp-address", parseIpAddressList, [...DEFAULTS.ptpAddresses]),
    interfaces: line.takeEach("interface", parseInterfaceName),
    allowRemoteControl: line.flag("allow-remote-control"),
    offsetFilter: line.take("offset-filter", parseOffsetFilter, DEFAULTS.offsetFilter),
    maxClients: line.take("max-clients", parseMaxClients, DEFAULTS.maxClients),
    verbosity: line.count("verbose"),
  };
  if (line.error) return { kind: "error", message: line.error };
  if (options.eventPort === options.generalPort) {
    return { kind: "error", message: "--event-port and --general-port must differ" };
  }
  if (options.interfaces.length > 0 && options.ptpAddresses.length > 0) {
    return {
      kind: "error",
      message:
        "--interface and --ptp-address cannot be combined: --interface hears PTP on every address of the named interfaces, " +
        "whichever addresses they have now or get later; give one or the other",
    };
  }
  return { kind: "run", options };
}

export async function helpText(): Promise<string> {
  return renderUsage(command);
}
