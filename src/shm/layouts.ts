// The shared-memory interface, one declaration per interface version, as data.
// Offsets are not typed in by hand: each version is declared as its C field list and a small
// C-alignment calculator lays it out for the target architecture (LP64 on both x86_64 and
// aarch64; only pthread_mutex_t differs). test/shm/layout.test.ts compiles the same structs with
// the system C compiler and compares every offset and size on the machine it runs on.
// Pure: no FFI, no I/O.

import { traitsOf, type InterfaceVersion, type LayoutKind } from "../rules/interface-version.ts";
import type { Arch } from "../sys/linux.ts";
import type { LocalClock } from "../time/clocks.ts";

// --- a C type model just big enough for these structs ------------------------------------------

type CType =
  | { kind: "u16" }
  | { kind: "u32" }
  | { kind: "u64" }
  | { kind: "char[]"; length: number }
  | { kind: "pthread_mutex_t" }
  | { kind: "struct"; fields: readonly CField[] };

interface CField {
  name: string;
  type: CType;
}

const u16: CType = { kind: "u16" };
const u32: CType = { kind: "u32" };
const u64: CType = { kind: "u64" };
const mutex: CType = { kind: "pthread_mutex_t" };
const chars = (length: number): CType => ({ kind: "char[]", length });
const struct = (...fields: CField[]): CType => ({ kind: "struct", fields });
const field = (name: string, type: CType): CField => ({ name, type });

/** sizeof and _Alignof of pthread_mutex_t in glibc (bits/pthreadtypes-arch.h of each arch). */
const PTHREAD_MUTEX: Record<Arch, { size: number; align: number }> = {
  x64: { size: 40, align: 8 },
  arm64: { size: 48, align: 8 },
};

/** The kinds a leaf field can have, as the writer needs to know them. */
export type FieldKind = "u16" | "u32" | "u64" | "char[]" | "pthread_mutex_t";

export interface FieldLayout {
  /** C member designator: "master_clock_id", "main.local_time". */
  path: string;
  kind: FieldKind;
  offset: number;
  /** sizeof the member. */
  size: number;
}

interface Placed {
  size: number;
  align: number;
  leaves: FieldLayout[];
}

const alignUp = (n: number, align: number) => Math.ceil(n / align) * align;

/** Lay out a C type: members in order, each at the next multiple of its alignment; a struct is
 * as aligned as its most aligned member and padded to a multiple of that. */
function place(type: CType, arch: Arch, path: string): Placed {
  switch (type.kind) {
    case "u16":
      return { size: 2, align: 2, leaves: [{ path, kind: "u16", offset: 0, size: 2 }] };
    case "u32":
      return { size: 4, align: 4, leaves: [{ path, kind: "u32", offset: 0, size: 4 }] };
    case "u64":
      return { size: 8, align: 8, leaves: [{ path, kind: "u64", offset: 0, size: 8 }] };
    case "char[]":
      return { size: type.length, align: 1, leaves: [{ path, kind: "char[]", offset: 0, size: type.length }] };
    case "pthread_mutex_t": {
      const { size, align } = PTHREAD_MUTEX[arch];
      return { size, align, leaves: [{ path, kind: "pthread_mutex_t", offset: 0, size }] };
    }
    case "struct": {
      let offset = 0;
      let align = 1;
      const leaves: FieldLayout[] = [];
      for (const member of type.fields) {
        const inner = place(member.type, arch, path === "" ? member.name : `${path}.${member.name}`);
        offset = alignUp(offset, inner.align);
        for (const leaf of inner.leaves) leaves.push({ ...leaf, offset: leaf.offset + offset });
        offset += inner.size;
        align = Math.max(align, inner.align);
      }
      return { size: alignUp(offset, align), align, leaves };
    }
  }
}

// --- the interface versions -----------------------------------------------------------------

/** The four values published about the master clock, in the order of every version's struct. */
const CLOCK_RECORD = [
  field("master_clock_id", u64),
  field("local_time", u64),
  field("local_to_master_time_offset", u64),
  field("master_clock_start_time", u64),
];

// Versions 5 and 6: the seed README's struct shm_structure.
const WITH_FLAGS = struct(
  field("shm_mutex", mutex),
  field("version", u16),
  field("flags", u32),
  field("master_clock_id", u64),
  field("master_clock_ip", chars(64)),
  field("local_time", u64),
  field("local_to_master_time_offset", u64),
  field("master_clock_start_time", u64),
);

// Versions 8 and 9 (Shairport Sync 4.1, 4.2): the same without `flags`. Because
// master_clock_id is 8-aligned, every later offset is unchanged.
const WITHOUT_FLAGS = struct(
  field("shm_mutex", mutex),
  field("version", u16),
  field("master_clock_id", u64),
  field("master_clock_ip", chars(64)),
  field("local_time", u64),
  field("local_to_master_time_offset", u64),
  field("master_clock_start_time", u64),
);

// Version 10 (Shairport Sync 4.3 and later): no mutex; the record twice.
const DOUBLE_RECORD = struct(field("version", u16), field("main", struct(...CLOCK_RECORD)), field("secondary", struct(...CLOCK_RECORD)));

/** The C struct of each layout kind; which version uses which is src/rules/interface-version.ts. */
const STRUCTS: Record<LayoutKind, CType> = {
  "mutex-with-flags": WITH_FLAGS,
  "mutex-without-flags": WITHOUT_FLAGS,
  "double-record": DOUBLE_RECORD,
};

export interface ShmLayout {
  version: InterfaceVersion;
  arch: Arch;
  /** sizeof the whole struct: the size of the region. */
  size: number;
  /** Where pthread_mutex_t sits, or null (version 10 has none). */
  mutex: { offset: number; size: number } | null;
  /** Permission bits of the region. */
  mode: number;
  /** The clock local_time and the offset are expressed in. */
  localClock: LocalClock;
  /** Every leaf member in declaration order, nested ones as "main.local_time". */
  fields: readonly FieldLayout[];
}

const cache = new Map<string, ShmLayout>();

/** The layout of interface `version` as a C compiler for `arch` would lay it out. */
export function layoutFor(version: InterfaceVersion, arch: Arch): ShmLayout {
  const key = `${version}/${arch}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const traits = traitsOf(version);
  if (!(arch in PTHREAD_MUTEX)) throw new RangeError(`unknown architecture "${arch}"; known: ${Object.keys(PTHREAD_MUTEX).join(", ")}`);
  const placed = place(STRUCTS[traits.layout], arch, "");
  const mutexField = placed.leaves.find((f) => f.kind === "pthread_mutex_t");
  const layout: ShmLayout = Object.freeze({
    version,
    arch,
    size: placed.size,
    mutex: mutexField ? Object.freeze({ offset: mutexField.offset, size: mutexField.size }) : null,
    mode: traits.regionMode,
    localClock: traits.localClock,
    fields: Object.freeze(placed.leaves.map((f) => Object.freeze(f))),
  });
  cache.set(key, layout);
  return layout;
}

/** The member at `path` ("version", "main.local_time"), or an error naming what exists. */
export function fieldAt(layout: ShmLayout, path: string): FieldLayout {
  const found = layout.fields.find((f) => f.path === path);
  if (!found) {
    throw new RangeError(`interface version ${layout.version} has no field "${path}" (it has ${layout.fields.map((f) => f.path).join(", ")})`);
  }
  return found;
}

/** Whether the layout has a member at `path` (e.g. master_clock_ip exists in 5–9 only). */
export function hasField(layout: ShmLayout, path: string): boolean {
  return layout.fields.some((f) => f.path === path);
}
