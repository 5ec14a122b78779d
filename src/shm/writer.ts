// Publishing the master clock record in POSIX shared memory, for every interface version.
//
// Versions 5–9 (ShmWriterWithMutex): the record sits behind a process-shared, robust
// pthread_mutex_t that readers lock too. We never wait for a reader for long: trylock, then a
// timed wait of lockTimeoutMs, then give up on this update ("busy").
// Version 10 (ShmWriterV10): no mutex. A reader (Shairport Sync 4.3+) copies the region twice and
// accepts the first copy's `main` when it equals the second copy's `secondary`. We write
// `secondary`, a full memory barrier, `main`, a full barrier: in that order no torn record can
// pass that test. A first copy that catches `main` half-written holds parts of records k-1 and k;
// by then `secondary` holds k whole (it was written first), and any later `secondary` holds k or
// newer parts, never k-1's. Written the other way round (main first), a first copy torn inside
// `main` and a second copy torn at the same field inside `secondary` are the same half-new,
// half-old record, and are accepted: test/shm/writer.test.ts's stress test caught that twice in
// 4.6 million reads with a writer publishing millions of records a second.

import { INTERFACE_VERSIONS, isInterfaceVersion, type InterfaceVersion } from "../rules/interface-version.ts";
import { fieldAt, layoutFor, type ShmLayout } from "./layouts.ts";
import { createRegion, destroyRegion, placeRegion, type MappedRegion } from "./region.ts";
import { fullMemoryBarrier, memoryAt, offsetAddress, prepareFullMemoryBarrier, HOST_ARCH, type Address } from "../sys/libc.ts";
import type { PublishedMaster } from "../clock/effects.ts";
import { isSupportedArch, type Arch } from "../sys/linux.ts";
import { destroyMutex, initRobustSharedMutex, lockMutexWithin, markMutexConsistent, unlockMutex } from "../sys/posix.ts";

/** "busy": a reader held the mutex for the whole bounded wait; this update was not written. */
export type PublishResult = "written" | "busy";

export interface ShmWriterOptions {
  /** shm_open name: "/" and then no other "/", e.g. "/nqptp". */
  name: string;
  version: InterfaceVersion;
  /** Defaults to process.arch; must be the host's (the region is shared with native readers). */
  arch?: string;
  /** Longest wait for the mutex (versions 5–9) before publish() returns "busy". Default 2 ms. */
  lockTimeoutMs?: number;
}

export interface ShmWriter {
  /** The shm_open name. */
  readonly name: string;
  /** The file behind it, "/dev/shm/nqptp". */
  readonly path: string;
  readonly layout: ShmLayout;
  /** True if open found a stale region of ours (from a crash) and reinitialised it. */
  readonly reusedStaleRegion: boolean;
  /** Times a reader died holding the mutex and we recovered it (pthread_mutex_consistent). */
  readonly recoveredOwnerDead: number;
  /** Times the mutex was found unrecoverable and re-initialised. */
  readonly reinitialisedMutex: number;
  /** Write the record; null means "no master": zero the record, keep the version. */
  publish(record: PublishedMaster | null): PublishResult;
  /** munmap, close and shm_unlink. Safe to call more than once. */
  close(): void;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 2;

// Both supported architectures are little-endian, so "host byte order" is little-endian.
const LITTLE_ENDIAN = true;

/** Offsets of the four u64 values of one record. */
interface RecordOffsets {
  clockId: number;
  localTime: number;
  offset: number;
  startTime: number;
}

function recordOffsets(layout: ShmLayout, prefix: string): RecordOffsets {
  return {
    clockId: fieldAt(layout, `${prefix}master_clock_id`).offset,
    localTime: fieldAt(layout, `${prefix}local_time`).offset,
    offset: fieldAt(layout, `${prefix}local_to_master_time_offset`).offset,
    startTime: fieldAt(layout, `${prefix}master_clock_start_time`).offset,
  };
}

/** setBigUint64 takes its argument modulo 2^64, so a negative or oversized bigint wraps. */
function writeRecord(view: DataView, at: RecordOffsets, record: PublishedMaster | null): void {
  view.setBigUint64(at.clockId, record ? record.clockId : 0n, LITTLE_ENDIAN);
  view.setBigUint64(at.localTime, record ? record.localTimeNs : 0n, LITTLE_ENDIAN);
  view.setBigUint64(at.offset, record ? record.offsetNs : 0n, LITTLE_ENDIAN);
  view.setBigUint64(at.startTime, record ? record.masterStartTimeNs : 0n, LITTLE_ENDIAN);
}

function resolveArch(requested: string | undefined): Arch {
  const arch = requested ?? process.arch;
  if (!isSupportedArch(arch)) {
    throw new Error(`unsupported architecture "${arch}": the shared-memory layouts are known for x64 and arm64 only`);
  }
  if (arch !== HOST_ARCH) {
    throw new Error(`cannot write the ${arch} shared-memory layout on a ${HOST_ARCH ?? process.arch} host`);
  }
  return arch;
}

abstract class RegionWriter implements ShmWriter {
  readonly name: string;
  readonly path: string;
  readonly reusedStaleRegion: boolean;
  recoveredOwnerDead = 0;
  reinitialisedMutex = 0;
  protected region: MappedRegion | null;
  protected view: DataView | null;

  constructor(
    readonly layout: ShmLayout,
    region: MappedRegion,
  ) {
    this.name = region.name;
    this.path = region.path;
    this.reusedStaleRegion = region.reusedStale;
    this.region = region;
    // A fresh view over the whole mapping. It must not be touched after munmap: close() drops it.
    this.view = new DataView(memoryAt(region.address, layout.size));
  }

  protected openView(): DataView {
    if (this.view === null) throw new Error(`shared memory ${this.name} is closed`);
    return this.view;
  }

  /** Zero everything, then write the version: what every reader checks first. */
  protected initialise(): void {
    const view = this.openView();
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength).fill(0);
    view.setUint16(fieldAt(this.layout, "version").offset, this.layout.version, LITTLE_ENDIAN);
  }

  abstract publish(record: PublishedMaster | null): PublishResult;

  close(): void {
    const region = this.region;
    if (region === null) return;
    this.view = null;
    this.region = null;
    destroyRegion(region);
  }
}

/** Interface versions 5, 6, 8 and 9. */
export class ShmWriterWithMutex extends RegionWriter {
  private readonly mutex: Address;
  private readonly record: RecordOffsets;
  private readonly ipBytes: Uint8Array;
  private readonly encoder = new TextEncoder();

  constructor(
    layout: ShmLayout,
    region: MappedRegion,
    private readonly lockTimeoutMs: number,
  ) {
    super(layout, region);
    if (layout.mutex === null) throw new Error(`interface version ${layout.version} has no mutex`);
    this.mutex = offsetAddress(region.address, layout.mutex.offset);
    this.record = recordOffsets(layout, "");
    const ip = fieldAt(layout, "master_clock_ip");
    const view = this.openView();
    this.ipBytes = new Uint8Array(view.buffer, view.byteOffset + ip.offset, ip.size);
    this.initialise();
    initRobustSharedMutex(this.mutex);
  }

  publish(record: PublishedMaster | null): PublishResult {
    const view = this.openView();
    if (!this.lock()) return "busy";
    try {
      writeRecord(view, this.record, record);
      this.ipBytes.fill(0);
      // encodeInto writes whole characters only, so stopping at 63 bytes never splits one, and
      // the last byte stays NUL.
      if (record) this.encoder.encodeInto(record.ip, this.ipBytes.subarray(0, this.ipBytes.length - 1));
    } finally {
      unlockMutex(this.mutex);
    }
    return "written";
  }

  /** True when we hold the mutex. */
  private lock(): boolean {
    for (let round = 0; round < 2; round++) {
      switch (lockMutexWithin(this.mutex, this.lockTimeoutMs)) {
        case "locked":
          return true;
        case "timed-out":
          return false;
        case "owner-dead":
          // A reader died while holding the lock. Readers only copy under it, so the record
          // is intact (and we are about to overwrite it anyway): mark it usable and go on.
          markMutexConsistent(this.mutex);
          this.recoveredOwnerDead++;
          return true;
        case "not-recoverable":
          // Someone got EOWNERDEAD and unlocked without pthread_mutex_consistent (a reader
          // that does not know about robust mutexes). POSIX then makes the mutex permanently
          // unusable: every lock fails at once with ENOTRECOVERABLE, so nobody is or can be
          // inside it. Re-initialising it in place is the only way back, and is safe exactly
          // because nobody can hold it. (pthread_mutex_destroy may complain; its result does
          // not matter, the init that follows rewrites the whole object.)
          try {
            destroyMutex(this.mutex);
          } catch {
            // ignored, see above
          }
          initRobustSharedMutex(this.mutex);
          this.reinitialisedMutex++;
          break; // and try once more
      }
    }
    return false;
  }
}

/** Interface version 10 (Shairport Sync 4.3 and later). */
export class ShmWriterV10 extends RegionWriter {
  private readonly main: RecordOffsets;
  private readonly secondary: RecordOffsets;

  constructor(layout: ShmLayout, region: MappedRegion) {
    super(layout, region);
    this.main = recordOffsets(layout, "main.");
    this.secondary = recordOffsets(layout, "secondary.");
    this.initialise();
    fullMemoryBarrier();
  }

  publish(record: PublishedMaster | null): PublishResult {
    const view = this.openView();
    writeRecord(view, this.secondary, record);
    fullMemoryBarrier(); // every store to `secondary` is visible before any store to `main`
    writeRecord(view, this.main, record);
    fullMemoryBarrier(); // and `main` before whatever we write next
    return "written";
  }
}

/** Create (or reclaim our own stale) region `name` for interface `version` and initialise it. */
export function openShm(options: ShmWriterOptions): ShmWriter {
  const { name, version } = options;
  if (!isInterfaceVersion(version)) {
    throw new RangeError(`unknown shared-memory interface version ${String(version)}; known: ${INTERFACE_VERSIONS.join(", ")}`);
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!Number.isFinite(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new RangeError(`lockTimeoutMs must be a finite number ≥ 0, not ${lockTimeoutMs}`);
  }
  const arch = resolveArch(options.arch);
  const layout = layoutFor(version, arch);
  // Build the barrier before touching /dev/shm, so a system that forbids it fails cleanly.
  if (layout.mutex === null) prepareFullMemoryBarrier();
  const region = createRegion(name, layout.size, layout.mode, arch);
  try {
    const writer = layout.mutex === null ? new ShmWriterV10(layout, region) : new ShmWriterWithMutex(layout, region, lockTimeoutMs);
    // Only now, initialised (version, zeros, the mutex), does a new region get its name.
    placeRegion(region);
    return writer;
  } catch (e) {
    destroyRegion(region);
    throw e;
  }
}
