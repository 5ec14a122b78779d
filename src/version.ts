// The version baked in by scripts/build.ts (`git describe --dirty` of the build), or the
// package version when running from source.

import pkg from "../package.json" with { type: "json" };

declare const NQPTP_BUILD_VERSION: string | undefined;

export const VERSION: string = typeof NQPTP_BUILD_VERSION === "string" ? NQPTP_BUILD_VERSION : pkg.version;

/** Exactly the line the original prints for -V (spec section 9). */
export function versionLine(interfaceVersion: number): string {
  return `Version: ${VERSION}. Shared Memory Interface Version: ${interfaceVersion}.`;
}
