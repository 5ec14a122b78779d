// Linux/glibc constants and structure layouts for the two architectures we run on.
// Pure data, no FFI. test/sys/libc.test.ts compares every value here with what the C compiler
// says on the machine the tests run on (so each arch is checked where it is tested).

/** The architectures whose ABI we know (Bun's process.arch names). */
export type Arch = "x64" | "arm64";

export const SUPPORTED_ARCHES: readonly Arch[] = ["x64", "arm64"];

export function isSupportedArch(arch: string): arch is Arch {
  return arch === "x64" || arch === "arm64";
}

/** process.arch if we know its ABI, else null (the shm writer refuses to open; clocks still work). */
export const HOST_ARCH: Arch | null = isSupportedArch(process.arch) ? process.arch : null;

// <fcntl.h>. Identical on both arches except O_NOFOLLOW: arm64 keeps the values of 32-bit ARM
// (arch/arm64/include/uapi/asm/fcntl.h), x86_64 the generic ones.
export const O_RDONLY = 0;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_CLOEXEC = 0o2000000;
const O_NOFOLLOW_BY_ARCH: Record<Arch, number> = { x64: 0o400000, arm64: 0o100000 };
export function oNoFollow(arch: Arch): number {
  return O_NOFOLLOW_BY_ARCH[arch];
}

// <sys/mman.h>, the same on both.
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;

// <sys/stat.h>
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

// <time.h>
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC_RAW = 4;

// <pthread.h>
export const PTHREAD_PROCESS_SHARED = 1;
export const PTHREAD_MUTEX_ROBUST = 1;
/** sizeof(pthread_mutexattr_t) is 4 on x86_64 and 8 on aarch64; we allocate this many bytes. */
export const MUTEXATTR_BYTES = 16;
/** sizeof(struct timespec) on both 64-bit arches: two 64-bit words (tv_sec, tv_nsec). */
export const TIMESPEC_BYTES = 16;

/** The fields of struct stat we read, and where glibc puts them. */
export interface StatLayout {
  /** sizeof(struct stat) */
  size: number;
  ino: { offset: number; bytes: 8 };
  mode: { offset: number; bytes: 4 };
  nlink: { offset: number; bytes: 4 | 8 };
  uid: { offset: number; bytes: 4 };
  fileSize: { offset: number; bytes: 8 };
  /** _STAT_VER for the pre-2.33 __fxstat(ver, fd, buf) entry point. */
  statVer: number;
}

// x86_64 has its own struct stat (nlink is 64-bit and comes before mode); aarch64 uses the
// generic one from asm-generic/stat.h.
const STAT_LAYOUTS: Record<Arch, StatLayout> = {
  x64: {
    size: 144,
    ino: { offset: 8, bytes: 8 },
    nlink: { offset: 16, bytes: 8 },
    mode: { offset: 24, bytes: 4 },
    uid: { offset: 28, bytes: 4 },
    fileSize: { offset: 48, bytes: 8 },
    statVer: 1,
  },
  arm64: {
    size: 128,
    ino: { offset: 8, bytes: 8 },
    mode: { offset: 16, bytes: 4 },
    nlink: { offset: 20, bytes: 4 },
    uid: { offset: 24, bytes: 4 },
    fileSize: { offset: 48, bytes: 8 },
    statVer: 0,
  },
};

export function statLayout(arch: Arch): StatLayout {
  return STAT_LAYOUTS[arch];
}

/** Enough bytes for struct stat on any arch we support. */
export const STAT_BUFFER_BYTES = 256;
