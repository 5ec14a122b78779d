// Clock identities (IEEE 1588-2008 7.5.2.2: 8 bytes, here a u64) as people read them.

/** 0x0123456789abcdef: clock identities in logs and status output. */
export function formatClockId(id: bigint): string {
  return `0x${id.toString(16).padStart(16, "0")}`;
}
