// The offset filters a user can choose (--offset-filter), one name for both seams:
//   master-seam.ts    interfaces 5, 6: a master's estimate from its samples
//   sequence-seam.ts  interfaces 8-10: a followed clock's offset, sequence by sequence
// "classic" is the original's rules, bit for bit (classic-master.ts, classic-sequence.ts); "tracking" models
// the master as offset + rate against the local clock (tracking.ts).

export type OffsetFilterName = "tracking" | "classic";

export const OFFSET_FILTERS: readonly OffsetFilterName[] = Object.freeze(["tracking", "classic"]);

export function isOffsetFilterName(name: unknown): name is OffsetFilterName {
  return typeof name === "string" && (OFFSET_FILTERS as readonly string[]).includes(name);
}
