// What the daemon runs with: the options type and the defaults (written here once: the daemon's
// command line and `nqptp status` both take them from here, the offset filter's included).
// The shell depends on this module, never on the command line that fills it in.

import type { OffsetFilterName } from "../clock/offset/names.ts";
import { DEFAULT_INTERFACE_VERSION, type InterfaceVersion } from "../rules/interface-version.ts";

// The offset filters (spec section 10) are the pure core's: clock/offset/names.ts names them.
export { OFFSET_FILTERS, type OffsetFilterName } from "../clock/offset/names.ts";

/** The most shared-memory regions (clients) one daemon serves, whatever --max-clients says. */
export const MAX_CLIENTS_LIMIT = 64;

export interface DaemonOptions {
  interfaceVersion: InterfaceVersion;
  /** The region that exists from start-up (and, for 5 and 6, the only one). */
  shmName: string;
  controlPort: number;
  controlAddresses: string[];
  eventPort: number;
  generalPort: number;
  /** Addresses the PTP ports listen on; empty means every address of both families. */
  ptpAddresses: string[];
  /**
   * Network interfaces PTP is heard and answered on, by name; empty means every interface.
   * Not combined with ptpAddresses (the command line refuses both).
   */
  interfaces: readonly string[];
  /** Accept timing peer lists from senders that are not on loopback (off by default). */
  allowRemoteControl: boolean;
  offsetFilter: OffsetFilterName;
  /**
   * How many regions (clients) interfaces 8-10 serve, the --shm-name one included: 1 to
   * MAX_CLIENTS_LIMIT. Interfaces 5 and 6 serve one client and ignore it.
   */
  maxClients: number;
  verbosity: number;
}

/** Every default but the verbosity's (0). Frozen: take copies of the lists. */
export const DEFAULTS = Object.freeze({
  interfaceVersion: DEFAULT_INTERFACE_VERSION,
  shmName: "/nqptp",
  controlPort: 9000,
  controlAddresses: Object.freeze(["127.0.0.1", "::1"]),
  eventPort: 319,
  generalPort: 320,
  /** Empty: every address. */
  ptpAddresses: Object.freeze([] as string[]),
  /** Empty: every interface. */
  interfaces: Object.freeze([] as string[]),
  allowRemoteControl: false,
  /** For every interface version: better than classic in every case measured (README, bench/accuracy-network.ts). */
  offsetFilter: "tracking" satisfies OffsetFilterName,
  maxClients: 8,
});
