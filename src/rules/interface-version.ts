// The shared-memory interface versions this build serves, and what each one means (spec
// sections 5, 6, 8 and 11). Every other module asks here: no file compares a version number
// with `>=` or lists the versions itself.
//
// A new interface version is one entry in TRAITS (and, if it has a new struct, one declaration
// in shm/layouts.ts); the type checker then shows every switch that has to learn about it.

export type InterfaceVersion = 5 | 6 | 8 | 9 | 10;

/** The clock an interface's times are expressed in: 5 uses CLOCK_REALTIME; 6, 8, 9 and 10 CLOCK_MONOTONIC_RAW. */
export type LocalClock = "realtime" | "monotonic-raw";

/** Which struct a version's region holds (shm/layouts.ts declares each). */
export type LayoutKind = "mutex-with-flags" | "mutex-without-flags" | "double-record";

/** How a version's clients speak on the control port (control/parse.ts). */
export type ControlForm =
  /** "T ip ip…": the timing peer list (Shairport Sync 4.0 and earlier). */
  | "seed"
  /** "<shm name> T ip" / "B" / "E" / "P" (Shairport Sync 4.1 and later). */
  | "named";

export interface InterfaceTraits {
  readonly version: InterfaceVersion;
  /** The clock local_time and the offset are expressed in. */
  readonly localClock: LocalClock;
  readonly layout: LayoutKind;
  /** Permission bits of the region: clients of a mutex must be able to write it to lock it. */
  readonly regionMode: number;
  readonly controlForm: ControlForm;
  /**
   * true: the client names one clock to follow (8-10); false: the BMC selects the master among
   * the timing peers (5, 6).
   */
  readonly followsOneClock: boolean;
  /** The client sends B/E/P (9, 10); in 8 a followed clock is active whenever it is followed. */
  readonly hasPlayCommands: boolean;
  /** The control message names the client's region, so one daemon serves several (spec 11). */
  readonly namedClients: boolean;
  /** What `-V` prints after "Shared Memory Interface Version: " (the original's form). */
  readonly versionTag: string;
  /** The Shairport Sync releases that read this interface, for help and warnings. */
  readonly shairportSync: string;
}

const TRAITS: Readonly<Record<InterfaceVersion, InterfaceTraits>> = Object.freeze({
  5: {
    version: 5,
    localClock: "realtime",
    layout: "mutex-with-flags",
    regionMode: 0o666,
    controlForm: "seed",
    followsOneClock: false,
    hasPlayCommands: false,
    namedClients: false,
    versionTag: "5",
    shairportSync: "4.0 and earlier (AirPlay 2 builds)",
  },
  6: {
    version: 6,
    localClock: "monotonic-raw",
    layout: "mutex-with-flags",
    regionMode: 0o666,
    controlForm: "seed",
    followsOneClock: false,
    hasPlayCommands: false,
    namedClients: false,
    versionTag: "6",
    shairportSync: "clients built against version 6",
  },
  8: {
    version: 8,
    localClock: "monotonic-raw",
    layout: "mutex-without-flags",
    regionMode: 0o666,
    controlForm: "named",
    followsOneClock: true,
    hasPlayCommands: false,
    namedClients: true,
    versionTag: "smi8",
    shairportSync: "4.1.x",
  },
  9: {
    version: 9,
    localClock: "monotonic-raw",
    layout: "mutex-without-flags",
    regionMode: 0o666,
    controlForm: "named",
    followsOneClock: true,
    hasPlayCommands: true,
    namedClients: true,
    versionTag: "smi9",
    shairportSync: "4.2.x",
  },
  10: {
    version: 10,
    localClock: "monotonic-raw",
    layout: "double-record",
    regionMode: 0o644,
    controlForm: "named",
    followsOneClock: true,
    hasPlayCommands: true,
    namedClients: true,
    versionTag: "smi10",
    shairportSync: "4.3.x and 5.x",
  },
});

/** Every version this build serves, in ascending order. */
export const INTERFACE_VERSIONS: readonly InterfaceVersion[] = Object.freeze([5, 6, 8, 9, 10]);

/** The seed's interface: what runs when no --interface-version is given. */
export const DEFAULT_INTERFACE_VERSION: InterfaceVersion = 5;

export function isInterfaceVersion(n: unknown): n is InterfaceVersion {
  return typeof n === "number" && (INTERFACE_VERSIONS as readonly number[]).includes(n);
}

/** What `version` means. Throws a RangeError naming the known versions for anything else. */
export function traitsOf(version: InterfaceVersion): InterfaceTraits {
  const traits = isInterfaceVersion(version) ? TRAITS[version] : undefined;
  if (!traits) {
    throw new RangeError(`unknown shared-memory interface version ${String(version)}; known: ${INTERFACE_VERSIONS.join(", ")}`);
  }
  return traits;
}
