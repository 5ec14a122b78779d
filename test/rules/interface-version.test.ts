import { describe, expect, test } from "bun:test";
import { DEFAULT_INTERFACE_VERSION, INTERFACE_VERSIONS, isInterfaceVersion, traitsOf } from "../../src/rules/interface-version.ts";

describe("interface versions", () => {
  test("5, 6, 8, 9 and 10 are known; nothing else is", () => {
    expect([0, 4, 5, 6, 7, 8, 9, 10, 11, 5.5, Number.NaN].filter(isInterfaceVersion)).toEqual([5, 6, 8, 9, 10]);
    expect(isInterfaceVersion("5")).toBe(false);
    expect(INTERFACE_VERSIONS.every(isInterfaceVersion)).toBe(true);
    expect(DEFAULT_INTERFACE_VERSION).toBe(5);
  });

  test("each version's traits say what the spec says it means", () => {
    const table = INTERFACE_VERSIONS.map((v) => {
      const t = traitsOf(v);
      return [v, t.localClock, t.layout, t.regionMode.toString(8), t.controlForm, t.followsOneClock, t.hasPlayCommands, t.namedClients, t.versionTag];
    });
    expect(table).toEqual([
      [5, "realtime", "mutex-with-flags", "666", "seed", false, false, false, "5"],
      [6, "monotonic-raw", "mutex-with-flags", "666", "seed", false, false, false, "6"],
      [8, "monotonic-raw", "mutex-without-flags", "666", "named", true, false, true, "smi8"],
      [9, "monotonic-raw", "mutex-without-flags", "666", "named", true, true, true, "smi9"],
      [10, "monotonic-raw", "double-record", "644", "named", true, true, true, "smi10"],
    ]);
  });

  test("an unknown version is a RangeError that names the known ones", () => {
    expect(() => traitsOf(7 as never)).toThrow(/unknown shared-memory interface version 7; known: 5, 6, 8, 9, 10/);
  });
});
