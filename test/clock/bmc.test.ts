import { describe, expect, test } from "bun:test";
import { Comparison, compareDataSets, selectMaster, type ComparableDataSet, type ComparisonOutcome } from "../../src/clock/bmc.ts";

const GM_A = 0x0000_0000_0000_00a0n;
const GM_B = 0x0000_0000_0000_00b0n;

function ds(
  o: Partial<ComparableDataSet> & { clockClass?: number; clockAccuracy?: number; offsetScaledLogVariance?: number } = {},
): ComparableDataSet {
  return {
    grandmasterPriority1: o.grandmasterPriority1 ?? 128,
    grandmasterClockQuality: {
      clockClass: o.clockClass ?? 248,
      clockAccuracy: o.clockAccuracy ?? 0x21,
      offsetScaledLogVariance: o.offsetScaledLogVariance ?? 0x4e5d,
    },
    grandmasterPriority2: o.grandmasterPriority2 ?? 128,
    grandmasterIdentity: o.grandmasterIdentity ?? GM_A,
    stepsRemoved: o.stepsRemoved ?? 0,
    senderClockIdentity: o.senderClockIdentity ?? 0x10n,
    senderPortNumber: o.senderPortNumber ?? 1,
  };
}

const other = { grandmasterIdentity: GM_B };

// [name, a, b, expected]: each row decides at one step of the ladder, in the standard's order.
const table: [string, ComparableDataSet, ComparableDataSet, ComparisonOutcome][] = [
  // Figure 27, different grandmasters
  ["priority1 lower wins", ds({ grandmasterPriority1: 127 }), ds({ ...other }), Comparison.A_BETTER],
  ["priority1 higher loses", ds({ grandmasterPriority1: 129 }), ds({ ...other }), Comparison.B_BETTER],
  ["clockClass lower wins", ds({ clockClass: 6 }), ds({ ...other }), Comparison.A_BETTER],
  ["clockClass higher loses", ds({ clockClass: 255 }), ds({ ...other }), Comparison.B_BETTER],
  ["clockAccuracy lower wins", ds({ clockAccuracy: 0x20 }), ds({ ...other }), Comparison.A_BETTER],
  ["clockAccuracy higher loses", ds({ clockAccuracy: 0xfe }), ds({ ...other }), Comparison.B_BETTER],
  ["variance lower wins", ds({ offsetScaledLogVariance: 0x4000 }), ds({ ...other }), Comparison.A_BETTER],
  ["variance higher loses", ds({ offsetScaledLogVariance: 0xffff }), ds({ ...other }), Comparison.B_BETTER],
  ["priority2 lower wins", ds({ grandmasterPriority2: 1 }), ds({ ...other }), Comparison.A_BETTER],
  ["priority2 higher loses", ds({ grandmasterPriority2: 200 }), ds({ ...other }), Comparison.B_BETTER],
  ["grandmasterIdentity lower wins", ds({ grandmasterIdentity: GM_A }), ds({ ...other }), Comparison.A_BETTER],
  ["grandmasterIdentity higher loses", ds({ grandmasterIdentity: GM_B }), ds({ grandmasterIdentity: GM_A }), Comparison.B_BETTER],
  // Order of the ladder: an earlier step decides even when a later one points the other way.
  ["priority1 before clockClass", ds({ grandmasterPriority1: 1, clockClass: 255 }), ds({ ...other, clockClass: 6 }), Comparison.A_BETTER],
  [
    "clockClass before accuracy",
    ds({ clockClass: 255, clockAccuracy: 0 }),
    ds({ ...other, clockClass: 6, clockAccuracy: 0xfe }),
    Comparison.B_BETTER,
  ],
  [
    "accuracy before variance",
    ds({ clockAccuracy: 0x20, offsetScaledLogVariance: 0xffff }),
    ds({ ...other, offsetScaledLogVariance: 0 }),
    Comparison.A_BETTER,
  ],
  [
    "variance before priority2",
    ds({ offsetScaledLogVariance: 0xffff, grandmasterPriority2: 0 }),
    ds({ ...other, grandmasterPriority2: 255 }),
    Comparison.B_BETTER,
  ],
  ["priority2 before identity", ds({ grandmasterIdentity: GM_B, grandmasterPriority2: 1 }), ds({ grandmasterIdentity: GM_A }), Comparison.A_BETTER],
  ["stepsRemoved ignored across grandmasters", ds({ stepsRemoved: 9 }), ds({ ...other, stepsRemoved: 0 }), Comparison.A_BETTER],
  // Figure 28, same grandmaster: priorities and quality are not compared at all.
  ["same GM skips priority1", ds({ grandmasterPriority1: 0, stepsRemoved: 3 }), ds({ stepsRemoved: 1 }), Comparison.B_BETTER],
  ["steps fewer by 2 wins outright", ds({ stepsRemoved: 1 }), ds({ stepsRemoved: 3 }), Comparison.A_BETTER],
  ["steps more by 2 loses outright", ds({ stepsRemoved: 5 }), ds({ stepsRemoved: 3 }), Comparison.B_BETTER],
  ["steps fewer by 1 wins by topology", ds({ stepsRemoved: 2 }), ds({ stepsRemoved: 3 }), Comparison.A_BETTER_TOPO],
  ["steps more by 1 loses by topology", ds({ stepsRemoved: 1 }), ds({ stepsRemoved: 0 }), Comparison.B_BETTER_TOPO],
  [
    "equal steps: lower sender identity",
    ds({ senderClockIdentity: 0x10n, senderPortNumber: 9 }),
    ds({ senderClockIdentity: 0x11n, senderPortNumber: 1 }),
    Comparison.A_BETTER_TOPO,
  ],
  ["equal steps: higher sender identity", ds({ senderClockIdentity: 0x12n }), ds({ senderClockIdentity: 0x11n }), Comparison.B_BETTER_TOPO],
  ["equal sender: lower port", ds({ senderPortNumber: 1 }), ds({ senderPortNumber: 2 }), Comparison.A_BETTER_TOPO],
  ["equal sender: higher port", ds({ senderPortNumber: 3 }), ds({ senderPortNumber: 2 }), Comparison.B_BETTER_TOPO],
  ["identical", ds(), ds(), Comparison.SAME],
  // 64-bit identities compare as unsigned numbers, not as floats.
  [
    "identity above 2^53",
    ds({ grandmasterIdentity: 0xffff_ffff_ffff_fffen }),
    ds({ grandmasterIdentity: 0xffff_ffff_ffff_ffffn }),
    Comparison.A_BETTER,
  ],
];

describe("compareDataSets (IEEE 1588-2008 figures 27, 28)", () => {
  for (const [name, a, b, expected] of table) {
    test(name, () => {
      expect(compareDataSets(a, b)).toBe(expected);
    });
  }

  test("is antisymmetric over the table", () => {
    const mirror: Record<ComparisonOutcome, ComparisonOutcome> = {
      A_BETTER: "B_BETTER",
      B_BETTER: "A_BETTER",
      A_BETTER_TOPO: "B_BETTER_TOPO",
      B_BETTER_TOPO: "A_BETTER_TOPO",
      SAME: "SAME",
    };
    for (const [, a, b, expected] of table) expect(compareDataSets(b, a)).toBe(mirror[expected]);
  });
});

describe("selectMaster", () => {
  const c = (id: string, o: Parameters<typeof ds>[0]) => ({ id, dataSet: ds(o) });

  test("none → null", () => {
    expect(selectMaster([])).toBeNull();
  });

  test("the best wins whatever the order", () => {
    const candidates = [
      c("10.0.0.1", { grandmasterPriority1: 200, grandmasterIdentity: 1n }),
      c("10.0.0.2", { grandmasterPriority1: 100, grandmasterIdentity: 2n }),
      c("10.0.0.3", { grandmasterPriority1: 100, clockClass: 255, grandmasterIdentity: 3n }),
    ];
    for (const order of [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
      [2, 0, 1],
    ]) {
      expect(selectMaster(order.map((i) => candidates[i]!))?.id).toBe("10.0.0.2");
    }
  });

  test("SAME: the current master is kept, else the lower id", () => {
    const v4 = c("10.0.0.9", {});
    const v6 = c("fe80::9", {});
    expect(selectMaster([v6, v4])?.id).toBe("10.0.0.9");
    expect(selectMaster([v4, v6])?.id).toBe("10.0.0.9");
    expect(selectMaster([v4, v6], "fe80::9")?.id).toBe("fe80::9");
    expect(selectMaster([v6, v4], "fe80::9")?.id).toBe("fe80::9");
  });
});
