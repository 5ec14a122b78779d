// The only module that imports bun:ffi. It declares exactly the libc functions the daemon calls,
// plus five small helpers that need bun:ffi itself (errno, pointers to our buffers, views over
// mapped memory, a full memory barrier, and reading the if_nameindex() array). The typed,
// error-checked API is src/sys/posix.ts.
//
// Rules that keep bun:ffi safe here (each learnt on Bun 1.4.5; re-check them when Bun is upgraded):
// - dlopen("libc.so.6"): plain "libc.so" is a linker script on glibc.
// - errno is read through __errno_location() and read.i32, never through the `errno` symbol.
// - Pointers are only taken of typed arrays built over `new ArrayBuffer(n)` and kept alive by the
//   caller: the storage of a small inline typed array moves when its .buffer is first touched.

import { CFunction, CString, dlopen, ptr, read, toArrayBuffer, type FFIFunction, type Library, type Pointer } from "bun:ffi";
import { SysError } from "./errors.ts";
import { HOST_ARCH, MAP_ANONYMOUS, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE, SOCKET_ABI, type Arch } from "./linux.ts";

const IF_NAMEINDEX_BYTES = SOCKET_ABI.ifNameindex.size;

export { HOST_ARCH, SUPPORTED_ARCHES, isSupportedArch, type Arch } from "./linux.ts";

/** A native address (bun:ffi represents pointers as numbers). */
export type Address = Pointer;

// Calls that have been in libc.so.6 for as long as glibc has had a libc.so.6.
const core = dlopen("libc.so.6", {
  ftruncate: { args: ["i32", "i64"], returns: "i32" },
  // int posix_fallocate(int fd, off_t offset, off_t len): returns the error number, not -1.
  posix_fallocate: { args: ["i32", "i64", "i64"], returns: "i32" },
  flock: { args: ["i32", "i32"], returns: "i32" },
  fchmod: { args: ["i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset). Returned
  // as u64 so MAP_FAILED ((void *)-1) arrives exactly (2^64 - 1 is not a safe JS number).
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "u64" },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
  mprotect: { args: ["ptr", "u64", "i32"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
  geteuid: { args: [], returns: "u32" },
}).symbols;

export const libc = core;

// glibc 2.34 moved shm_open (from librt.so.1) and the pthread calls (from libpthread.so.0) into
// libc.so.6. Older systems that still run Shairport Sync (Debian 11 and Raspberry Pi OS
// "bullseye" ship glibc 2.31) need the old libraries. These groups are loaded on first use so
// that a problem with one of them cannot break, say, reading the clocks.
const SHM_SYMBOLS = {
  shm_open: { args: ["cstring", "i32", "u32"], returns: "i32" },
  shm_unlink: { args: ["cstring"], returns: "i32" },
} as const;

const PTHREAD_SYMBOLS = {
  pthread_mutexattr_init: { args: ["ptr"], returns: "i32" },
  pthread_mutexattr_setpshared: { args: ["ptr", "i32"], returns: "i32" },
  pthread_mutexattr_setrobust: { args: ["ptr", "i32"], returns: "i32" },
  pthread_mutexattr_destroy: { args: ["ptr"], returns: "i32" },
  pthread_mutex_init: { args: ["ptr", "ptr"], returns: "i32" },
  pthread_mutex_trylock: { args: ["ptr"], returns: "i32" },
  pthread_mutex_timedlock: { args: ["ptr", "ptr"], returns: "i32" },
  pthread_mutex_unlock: { args: ["ptr"], returns: "i32" },
  pthread_mutex_consistent: { args: ["ptr"], returns: "i32" },
  pthread_mutex_destroy: { args: ["ptr"], returns: "i32" },
} as const;

// fstat became an exported function in glibc 2.33; before, <sys/stat.h> inlined a call to
// __fxstat(_STAT_VER, fd, buf), which glibc still exports for old binaries.
const FSTAT_SYMBOLS = { fstat: { args: ["i32", "ptr"], returns: "i32" } } as const;
const FXSTAT_SYMBOLS = { __fxstat: { args: ["i32", "i32", "ptr"], returns: "i32" } } as const;

function loadFromFirst<T extends Record<string, FFIFunction>>(libraries: readonly string[], symbols: T): Library<T>["symbols"] {
  const failures: string[] = [];
  for (const library of libraries) {
    try {
      return dlopen(library, symbols).symbols;
    } catch (e) {
      failures.push(`${library}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new Error(`cannot load ${Object.keys(symbols).join(", ")}: ${failures.join("; ")}`);
}

let shmLib: Library<typeof SHM_SYMBOLS>["symbols"] | null = null;
export function shmSymbols() {
  shmLib ??= loadFromFirst(["libc.so.6", "librt.so.1"], SHM_SYMBOLS);
  return shmLib;
}

let pthreadLib: Library<typeof PTHREAD_SYMBOLS>["symbols"] | null = null;
export function pthreadSymbols() {
  pthreadLib ??= loadFromFirst(["libc.so.6", "libpthread.so.0"], PTHREAD_SYMBOLS);
  return pthreadLib;
}

// Sockets and polling, for the PTP event port's kernel receive timestamps and multicast
// (src/net/kernel-stamps.ts, src/net/event-reader.ts, src/net/multicast.ts). Loaded on first use, in
// whichever thread uses them (the event-port reader runs in a Worker).
// ioctl is variadic in C; its third argument is a pointer here, which both 64-bit ABIs pass in
// the same register as a fixed argument.
const SOCKET_SYMBOLS = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
  if_nametoindex: { args: ["cstring"], returns: "u32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
  if_nameindex: { args: [], returns: "ptr" },
  if_freenameindex: { args: ["ptr"], returns: "void" },
} as const;

let socketLib: Library<typeof SOCKET_SYMBOLS>["symbols"] | null = null;
export function socketSymbols() {
  socketLib ??= loadFromFirst(["libc.so.6"], SOCKET_SYMBOLS);
  return socketLib;
}

/**
 * if_nameindex(): every network interface of this network namespace, up or down, with or without
 * addresses (node:os networkInterfaces() lists only interfaces that are up, running and
 * addressed). Null when the call fails (errno says why). struct if_nameindex is
 * { unsigned int if_index; char *if_name; }, 16 bytes on LP64, ended by a zero index.
 */
export function interfaceNameIndex(): { index: number; name: string }[] | null {
  const symbols = socketSymbols();
  const list = symbols.if_nameindex();
  if (list === null) return null;
  const out: { index: number; name: string }[] = [];
  try {
    for (let at = 0; ; at += IF_NAMEINDEX_BYTES) {
      const index = read.u32(list, at);
      const name = read.ptr(list, at + 8);
      if (index === 0 || name === 0) break;
      out.push({ index, name: new CString(name as Address).toString() });
    }
  } finally {
    symbols.if_freenameindex(list);
  }
  return out;
}

let fstatImpl: ((fd: number, buf: Address, statVer: number) => number) | null = null;
/** fstat(fd, buf) on any glibc; statVer is the arch's _STAT_VER, used only by the old entry point. */
export function fstatRaw(fd: number, buf: Address, statVer: number): number {
  if (fstatImpl === null) {
    try {
      const { fstat } = loadFromFirst(["libc.so.6"], FSTAT_SYMBOLS);
      fstatImpl = (f, b) => fstat(f, b);
    } catch {
      const { __fxstat } = loadFromFirst(["libc.so.6"], FXSTAT_SYMBOLS);
      fstatImpl = (f, b, v) => __fxstat(v, f, b);
    }
  }
  return fstatImpl(fd, buf, statVer);
}

// errno is thread-local; __errno_location() returns this thread's slot, which never moves. Each
// Worker evaluates this module afresh and so gets its own. Reading it is one load, no call, so
// nothing between the failed call and the read can overwrite it.
const errnoAddress = core.__errno_location();
if (errnoAddress === null) throw new Error("__errno_location() returned NULL");

/** The calling thread's errno. Read it immediately after the call that failed. */
export function errno(): number {
  return read.i32(errnoAddress as Address, 0);
}

/** strerror(errnum), e.g. "Permission denied". */
export function describeErrno(errnum: number): string {
  return core.strerror(errnum) ?? `errno ${errnum}`;
}

/**
 * Memory for C to read or write (a struct timespec, a struct stat...), with its address.
 *
 * The address is a plain number: it does NOT keep the memory alive. If nothing the program still
 * uses refers to the ArrayBuffer, the GC frees it and the next C call writes into freed heap.
 * A module-level `const buf` that no function mentions is not enough: JSC keeps only the
 * variables closures capture. That happened here: such a buffer died and pthread_mutexattr_init
 * corrupted Bun's heap. So buffer and address travel together in this object, and code passes
 * `native.address` from it, which keeps `native.buffer` alive. (Regression test: "native buffers
 * outlive garbage collection" in test/sys/libc.test.ts.)
 * The buffer is a `new ArrayBuffer(n)`: its storage never moves (the third rule at the top of this
 * file: small inline typed arrays move when their .buffer is first touched, which would leave the
 * address stale).
 */
export interface NativeBuffer {
  readonly buffer: ArrayBuffer;
  readonly view: DataView;
  readonly address: Address;
}

export function allocateNative(byteLength: number): NativeBuffer {
  const buffer = new ArrayBuffer(byteLength);
  const bytes = new Uint8Array(buffer);
  return Object.freeze({ buffer, view: new DataView(buffer), address: ptr(bytes) });
}

/** `address + bytes`, for fields inside a mapped region. */
export function offsetAddress(address: Address, bytes: number): Address {
  return (address + bytes) as Address;
}

/** A fresh ArrayBuffer over native memory we own (e.g. from mmap); it frees nothing when collected. */
export function memoryAt(address: Address, length: number): ArrayBuffer {
  return toArrayBuffer(address, 0, length);
}

/** The value of MAP_FAILED as returned by our u64 declaration of mmap. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

// ---------------------------------------------------------------------------------------------
// Full memory barrier.
//
// The version 10 shm protocol needs a full barrier between writing `main` and writing
// `secondary` (and after `secondary`), for a reader in another process. JavaScript offers none
// for memory that comes from mmap:
// - Atomics.* orders accesses only on a SharedArrayBuffer; the region is an external ArrayBuffer.
// - libatomic1 (where a C program would find such helpers) is not installed everywhere, and it
//   exports no plain fence function anyway (__atomic_thread_fence is a compiler built-in).
// - A pthread mutex lock/unlock pair gives acquire and release ordering, not a full fence: a
//   store before the unlock and a load after a later lock may still be reordered (store-load).
// So we emit the two instructions a C compiler emits for atomic_thread_fence(memory_order_seq_cst)
// (or the legacy __sync_synchronize()), followed by a return, into a page of our own and call it:
// - x86_64: `mfence; ret` (0F AE F0, C3). MFENCE serialises every load and store issued before it
//   against every load and store after it, including the store->load case that x86's TSO memory
//   model otherwise allows to pass (Intel SDM vol. 2, MFENCE).
// - aarch64: `dmb ish; ret` (0xD5033BBF, 0xD65F03C0 as little-endian words). DMB with the ISH
//   option and no "LD"/"ST" qualifier orders all loads and stores before it against all loads and
//   stores after it for every observer in the inner-shareable domain (all the cores that run Linux
//   user processes); it is exactly what GCC and Clang emit for __sync_synchronize() and for
//   atomic_thread_fence(memory_order_seq_cst) on AArch64.
// The page is written while mapped PROT_READ|PROT_WRITE, then switched to PROT_READ|PROT_EXEC
// (never writable and executable at once). On arm64 the instruction cache is not coherent with
// data stores, but Linux makes it so when a user page becomes executable: __set_pte_at() in
// arch/arm64/include/asm/pgtable.h calls __sync_icache_dcache() for every present user-executable
// PTE it installs (mprotect goes through it), and __sync_icache_dcache() in arch/arm64/mm/flush.c
// cleans the D-cache and invalidates the I-cache for that page the first time (page flag
// PG_dcache_clean). Kernels as old as v4.3 skipped pages with no page_mapping(), i.e. private
// anonymous memory; a MAP_SHARED|MAP_ANONYMOUS page is backed by shmem and does have a mapping, so
// we use that kind and are covered on those kernels too. On x86 instruction fetch is coherent
// with stores in hardware.
// Bun's JIT needs executable memory itself, so a system that forbids it (SELinux execmem, PaX
// MPROTECT) could not run Bun at all; if mprotect still refuses, the error says so clearly.

const FENCE_CODE: Record<Arch, readonly number[]> = {
  x64: [0x0f, 0xae, 0xf0, 0xc3],
  // Little-endian encodings of 0xD5033BBF (dmb ish) and 0xD65F03C0 (ret).
  arm64: [0xbf, 0x3b, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6],
};
const FENCE_PAGE_BYTES = 4096;

let fence: (() => void) | null = null;

/** Build the barrier function now (so failures surface at shm open time, not mid-publish). */
export function prepareFullMemoryBarrier(): void {
  if (fence !== null) return;
  if (HOST_ARCH === null) {
    throw new Error(`no memory barrier for architecture "${process.arch}": only x64 and arm64 are supported`);
  }
  const code = FENCE_CODE[HOST_ARCH];
  const mapped = core.mmap(null, BigInt(FENCE_PAGE_BYTES), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0n);
  if (mapped === MAP_FAILED) {
    const e = errno();
    throw new SysError("mmap", e, { subject: "anonymous page for the memory barrier", description: describeErrno(e) });
  }
  const page = Number(mapped) as Address;
  // A fresh view over the mapped page, used for these few stores and then dropped: once the page
  // is PROT_EXEC only, a store through it would fault.
  new Uint8Array(toArrayBuffer(page, 0, code.length)).set(code);
  if (core.mprotect(page, BigInt(FENCE_PAGE_BYTES), PROT_READ | PROT_EXEC) !== 0) {
    const e = errno();
    core.munmap(page, BigInt(FENCE_PAGE_BYTES));
    throw new SysError("mprotect", e, {
      subject: "memory barrier page, PROT_READ|PROT_EXEC",
      description: `${describeErrno(e)}; this system forbids executable anonymous memory`,
    });
  }
  // The page stays mapped for the life of the process (one page, one function).
  fence = CFunction({ ptr: page, returns: "void", args: [] }) as unknown as () => void;
}

/** A full (sequentially consistent) hardware memory barrier: `mfence` / `dmb ish`. */
export function fullMemoryBarrier(): void {
  if (fence === null) prepareFullMemoryBarrier();
  (fence as () => void)();
}
