// Reading a region back, for `nqptp status`: which interface version it holds (detected from the
// bytes, the way each generation of client finds its version field) and its record. Pure: bytes in.

import type { Arch } from "../sys/linux.ts";
import { INTERFACE_VERSIONS, type InterfaceVersion } from "../rules/interface-version.ts";
import { fieldAt, hasField, layoutFor, type ShmLayout } from "./layouts.ts";

export interface RegionRecord {
  version: InterfaceVersion;
  layout: ShmLayout;
  clockId: bigint;
  /** Versions 5-9 only. */
  ip: string | null;
  localTimeNs: bigint;
  offsetNs: bigint;
  startTimeNs: bigint;
}

export type RegionReadResult = { ok: true; record: RegionRecord } | { ok: false; reason: string };

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The interface version whose version field, at its own offset, holds its own number. */
export function detectVersion(bytes: Uint8Array, arch: Arch): InterfaceVersion | null {
  const v = view(bytes);
  // The region is exactly the layout's size, which tells 5-9 (mutex first) from 10 (version first):
  // a robust mutex's lock word holds its owner's thread id, which could read as any number.
  for (const version of INTERFACE_VERSIONS) {
    const layout = layoutFor(version, arch);
    if (bytes.byteLength !== layout.size) continue;
    const field = fieldAt(layout, "version");
    if (v.getUint16(field.offset, true) !== version) continue;
    return version;
  }
  return null;
}

export function readRegion(bytes: Uint8Array, arch: Arch): RegionReadResult {
  const version = detectVersion(bytes, arch);
  if (version === null) {
    return { ok: false, reason: `holds no interface version this nqptp knows (${bytes.byteLength} bytes)` };
  }
  const layout = layoutFor(version, arch);
  const v = view(bytes);
  const prefix = version === 10 ? "main." : "";
  const u64 = (name: string) => v.getBigUint64(fieldAt(layout, prefix + name).offset, true);
  let ip: string | null = null;
  if (hasField(layout, "master_clock_ip")) {
    const field = fieldAt(layout, "master_clock_ip");
    const raw = bytes.subarray(field.offset, field.offset + field.size);
    const end = raw.indexOf(0);
    ip = new TextDecoder().decode(end >= 0 ? raw.subarray(0, end) : raw);
  }
  return {
    ok: true,
    record: {
      version,
      layout,
      clockId: u64("master_clock_id"),
      ip,
      localTimeNs: u64("local_time"),
      offsetNs: u64("local_to_master_time_offset"),
      startTimeNs: u64("master_clock_start_time"),
    },
  };
}
