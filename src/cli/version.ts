// The version baked in by scripts/build.ts (`git describe --dirty` of the build), or the
// package version when running from source.

import pkg from "../../package.json" with { type: "json" };
import { traitsOf, type InterfaceVersion } from "../rules/interface-version.ts";

declare const NQPTP_BUILD_VERSION: string | undefined;

export const VERSION: string = typeof NQPTP_BUILD_VERSION === "string" ? NQPTP_BUILD_VERSION : pkg.version;

/**
 * Exactly the line the original prints for -V (spec section 9): the seed's interfaces as the bare
 * number (`5.`, `6.`), 8-10 as nqptp 1.2 names them (`smi8.`, `smi9.`, `smi10.`).
 */
export function versionLine(interfaceVersion: InterfaceVersion): string {
  return `Version: ${VERSION}. Shared Memory Interface Version: ${traitsOf(interfaceVersion).versionTag}.`;
}
