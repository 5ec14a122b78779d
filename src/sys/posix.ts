// Typed, error-checked wrappers over the libc calls in src/sys/libc.ts.
// Every wrapper turns a failure into a SysError that names the call, its argument and errno:
// ordinary calls report -1 and set errno; pthread_* calls return the error number instead.

import {
  HOST_ARCH,
  MAP_FAILED,
  allocateNative,
  describeErrno,
  errno,
  fstatRaw,
  libc,
  pthreadSymbols,
  shmSymbols,
  type Address,
  type Arch,
} from "./libc.ts";
import { EBUSY, ENOTRECOVERABLE, EOWNERDEAD, ETIMEDOUT, SysError } from "./errors.ts";
import {
  CLOCK_REALTIME,
  MUTEXATTR_BYTES,
  PTHREAD_MUTEX_ROBUST,
  PTHREAD_PROCESS_SHARED,
  STAT_BUFFER_BYTES,
  TIMESPEC_BYTES,
  statLayout,
} from "./linux.ts";

export { SysError } from "./errors.ts";

/** The host architecture, or a clear error if we do not know its ABI. */
export function requireSupportedArch(): Arch {
  if (HOST_ARCH === null) {
    throw new Error(
      `unsupported architecture "${process.arch}": the shared-memory layout (pthread_mutex_t, ` +
        `struct stat, open flags) is only known for x64 and arm64`,
    );
  }
  return HOST_ARCH;
}

function fail(call: string, errnum: number, subject?: string): never {
  throw new SysError(call, errnum, { subject, description: describeErrno(errnum) });
}

const quote = (s: string) => JSON.stringify(s);

// --- shared memory objects and descriptors ---------------------------------------------------

/** shm_open(name, flags, mode) → file descriptor. */
export function shmOpen(name: string, flags: number, mode: number): number {
  const fd = shmSymbols().shm_open(name, flags, mode);
  if (fd < 0) fail("shm_open", errno(), quote(name));
  return fd;
}

export function shmUnlink(name: string): void {
  if (shmSymbols().shm_unlink(name) !== 0) fail("shm_unlink", errno(), quote(name));
}

export function ftruncate(fd: number, length: number): void {
  if (libc.ftruncate(fd, BigInt(length)) !== 0) fail("ftruncate", errno(), `${fd}, ${length}`);
}

export function fchmod(fd: number, mode: number): void {
  if (libc.fchmod(fd, mode) !== 0) fail("fchmod", errno(), `${fd}, 0${mode.toString(8)}`);
}

export function close(fd: number): void {
  if (libc.close(fd) !== 0) fail("close", errno(), String(fd));
}

export function geteuid(): number {
  return libc.geteuid();
}

/** The parts of struct stat the shm writer checks. */
export interface FileStatus {
  ino: bigint;
  /** st_mode: file type and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  size: number;
}

const stat = allocateNative(STAT_BUFFER_BYTES);

export function fstat(fd: number): FileStatus {
  const arch = requireSupportedArch();
  const layout = statLayout(arch);
  if (fstatRaw(fd, stat.address, layout.statVer) !== 0) fail("fstat", errno(), String(fd));
  const statView = stat.view;
  return {
    ino: statView.getBigUint64(layout.ino.offset, true),
    mode: statView.getUint32(layout.mode.offset, true),
    nlink:
      layout.nlink.bytes === 8
        ? Number(statView.getBigUint64(layout.nlink.offset, true))
        : statView.getUint32(layout.nlink.offset, true),
    uid: statView.getUint32(layout.uid.offset, true),
    size: Number(statView.getBigInt64(layout.fileSize.offset, true)),
  };
}

// --- memory mappings --------------------------------------------------------------------------

/** mmap(NULL, length, prot, flags, fd, 0). */
export function mmap(length: number, prot: number, flags: number, fd: number): Address {
  const result = libc.mmap(null, BigInt(length), prot, flags, fd, 0n);
  if (result === MAP_FAILED) fail("mmap", errno(), `NULL, ${length}, ${prot}, ${flags}, ${fd}, 0`);
  return Number(result) as Address;
}

export function munmap(address: Address, length: number): void {
  if (libc.munmap(address, BigInt(length)) !== 0) fail("munmap", errno(), `0x${address.toString(16)}, ${length}`);
}

// --- process-shared robust mutexes -------------------------------------------------------------

const attr = allocateNative(MUTEXATTR_BYTES);

function check(call: string, result: number): void {
  if (result !== 0) fail(call, result);
}

/**
 * pthread_mutex_init at `mutex` with a process-shared, robust attribute: other processes can
 * lock it, and if one dies holding it the next locker gets EOWNERDEAD instead of hanging.
 */
export function initRobustSharedMutex(mutex: Address): void {
  const p = pthreadSymbols();
  const attrAddress = attr.address;
  check("pthread_mutexattr_init", p.pthread_mutexattr_init(attrAddress));
  try {
    check("pthread_mutexattr_setpshared", p.pthread_mutexattr_setpshared(attrAddress, PTHREAD_PROCESS_SHARED));
    check("pthread_mutexattr_setrobust", p.pthread_mutexattr_setrobust(attrAddress, PTHREAD_MUTEX_ROBUST));
    check("pthread_mutex_init", p.pthread_mutex_init(mutex, attrAddress));
  } finally {
    p.pthread_mutexattr_destroy(attrAddress);
  }
}

export function destroyMutex(mutex: Address): void {
  check("pthread_mutex_destroy", pthreadSymbols().pthread_mutex_destroy(mutex));
}

export function unlockMutex(mutex: Address): void {
  check("pthread_mutex_unlock", pthreadSymbols().pthread_mutex_unlock(mutex));
}

export function markMutexConsistent(mutex: Address): void {
  check("pthread_mutex_consistent", pthreadSymbols().pthread_mutex_consistent(mutex));
}

/**
 * - "locked": we hold it.
 * - "owner-dead": we hold it, but its previous owner died holding it (the data it protects may be
 *   half-written); call markMutexConsistent before unlocking or it becomes unusable.
 * - "not-recoverable": nobody can ever lock it again (an owner-dead lock was released without
 *   being marked consistent); only re-initialising it helps. We do not hold it.
 * - "timed-out": someone else held it for the whole wait. We do not hold it.
 */
export type MutexLockOutcome = "locked" | "owner-dead" | "not-recoverable" | "timed-out";

const deadlineMemory = allocateNative(TIMESPEC_BYTES);
const deadline = new BigInt64Array(deadlineMemory.buffer);

/**
 * Lock with a bounded wait: trylock, then pthread_mutex_timedlock until now + timeoutMs. The
 * deadline is absolute CLOCK_REALTIME, as POSIX defines it for timedlock; a wall-clock step
 * during a wait of a few milliseconds can only shorten or lengthen that one wait.
 */
export function lockMutexWithin(mutex: Address, timeoutMs: number): MutexLockOutcome {
  const p = pthreadSymbols();
  let call = "pthread_mutex_trylock";
  let result = p.pthread_mutex_trylock(mutex);
  if (result === EBUSY) {
    if (timeoutMs <= 0) return "timed-out";
    if (libc.clock_gettime(CLOCK_REALTIME, deadlineMemory.address) !== 0) fail("clock_gettime", errno(), "CLOCK_REALTIME");
    const nanoseconds = (deadline[1] as bigint) + BigInt(Math.round(timeoutMs * 1e6));
    deadline[0] = (deadline[0] as bigint) + nanoseconds / 1_000_000_000n;
    deadline[1] = nanoseconds % 1_000_000_000n;
    call = "pthread_mutex_timedlock";
    result = p.pthread_mutex_timedlock(mutex, deadlineMemory.address);
  }
  switch (result) {
    case 0:
      return "locked";
    case EOWNERDEAD:
      return "owner-dead";
    case ENOTRECOVERABLE:
      return "not-recoverable";
    case ETIMEDOUT:
      return "timed-out";
    default:
      return fail(call, result);
  }
}
