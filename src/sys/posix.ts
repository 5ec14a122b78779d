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
  socketSymbols,
  interfaceNameIndex,
  type Address,
  type Arch,
  type NativeBuffer,
} from "./libc.ts";
import { EAGAIN, EBUSY, EINVAL, ENOTRECOVERABLE, EOWNERDEAD, ETIMEDOUT, SysError, errnoName } from "./errors.ts";
import {
  CLOCK_MONOTONIC_RAW,
  CLOCK_REALTIME,
  LOCK_EX,
  LOCK_NB,
  MUTEXATTR_BYTES,
  PTHREAD_MUTEX_ROBUST,
  PTHREAD_PROCESS_SHARED,
  STAT_BUFFER_BYTES,
  TIMESPEC_BYTES,
  statLayout,
  AF_INET6,
  AF_UNIX,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  MSG_DONTWAIT,
  IFNAMSIZ,
  SIOCGIFFLAGS,
  SIOCGSTAMPNS,
  SOCKET_ABI,
  SOL_SOCKET,
  SO_BINDTODEVICE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
} from "./linux.ts";

export { SysError } from "./errors.ts";

// errno values the socket calls below react to (errors.ts keeps the daemon-wide ones).
const EINTR_NUMBER = 4;
const EAGAIN_NUMBER = 11;

/** The host architecture, or a clear error if we do not know its ABI (fstat needs its struct stat). */
function requireSupportedArch(): Arch {
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

/**
 * Reserves the blocks of [0, length) now, so that a full file system is ENOSPC here and not a
 * SIGBUS at the first write through a mapping (tmpfs allocates pages lazily).
 */
export function posixFallocate(fd: number, length: number): void {
  const result = libc.posix_fallocate(fd, 0n, BigInt(length));
  if (result !== 0) fail("posix_fallocate", result, `${fd}, 0, ${length}`);
}

/**
 * flock(fd, LOCK_EX | LOCK_NB): true when we hold the lock now, false when another open file
 * description holds it (EWOULDBLOCK). The lock goes with the descriptor: the kernel drops it
 * when the holder closes it or dies.
 */
export function tryLockExclusive(fd: number): boolean {
  if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const e = errno();
  if (e === EAGAIN) return false;
  fail("flock", e, String(fd));
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

// --- clocks -------------------------------------------------------------------------------------

// One struct timespec { i64 tv_sec; i64 tv_nsec; } for every clock read, allocated once (the
// function below refers to it, which keeps it alive).
const clockMemory = allocateNative(TIMESPEC_BYTES);
const clockTimespec = new BigInt64Array(clockMemory.buffer);

const CLOCK_NAMES: Record<number, string> = { [CLOCK_REALTIME]: "CLOCK_REALTIME", [CLOCK_MONOTONIC_RAW]: "CLOCK_MONOTONIC_RAW" };

/** clock_gettime(clockId) in nanoseconds (tv_sec × 10^9 + tv_nsec). */
export function clockGettimeNs(clockId: number): bigint {
  if (libc.clock_gettime(clockId, clockMemory.address) !== 0) fail("clock_gettime", errno(), CLOCK_NAMES[clockId] ?? String(clockId));
  return (clockTimespec[0] as bigint) * 1_000_000_000n + (clockTimespec[1] as bigint);
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
    nlink: layout.nlink.bytes === 8 ? Number(statView.getBigUint64(layout.nlink.offset, true)) : statView.getUint32(layout.nlink.offset, true),
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
    const at = clockGettimeNs(CLOCK_REALTIME) + BigInt(Math.round(timeoutMs * 1e6));
    deadline[0] = at / 1_000_000_000n;
    deadline[1] = at % 1_000_000_000n;
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

// --- sockets (the PTP event port's kernel timestamps, multicast) ------------------------------

/** socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0): a non-blocking UDP socket. */
export function udpSocket(family: number): number {
  const fd = socketSymbols().socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket", errno(), family === AF_INET6 ? "AF_INET6, SOCK_DGRAM" : "AF_INET, SOCK_DGRAM");
  return fd;
}

const intOption = allocateNative(4);

/** setsockopt(fd, level, name, &value, sizeof(int)). `what` names the option in errors. */
export function setIntSocketOption(fd: number, level: number, name: number, value: number, what: string): void {
  intOption.view.setInt32(0, value, true);
  if (socketSymbols().setsockopt(fd, level, name, intOption.address, 4) !== 0) fail("setsockopt", errno(), `${fd}, ${what}`);
}

/** setsockopt with a structure the caller filled (ip_mreqn, ipv6_mreq...). */
export function setSocketOptionBytes(fd: number, level: number, name: number, value: NativeBuffer, length: number, what: string): void {
  if (socketSymbols().setsockopt(fd, level, name, value.address, length) !== 0) fail("setsockopt", errno(), `${fd}, ${what}`);
}

const deviceName = allocateNative(IFNAMSIZ);

/**
 * setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name): from now on the socket hears only what
 * arrives on that interface and sends out of it. ENODEV when there is no such interface.
 */
export function bindToDevice(fd: number, name: string): void {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length >= IFNAMSIZ) fail("setsockopt", EINVAL, `${fd}, SO_BINDTODEVICE ${quote(name)}`);
  new Uint8Array(deviceName.buffer).fill(0).set(bytes);
  if (socketSymbols().setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, deviceName.address, bytes.length) !== 0) {
    fail("setsockopt", errno(), `${fd}, SO_BINDTODEVICE ${quote(name)}`);
  }
}

/** The largest datagram sendDatagram takes (PTP messages are far smaller). */
export const MAX_SENT_DATAGRAM = 2048;
const sentPayload = allocateNative(MAX_SENT_DATAGRAM);

/**
 * sendto(fd, data, address): one UDP datagram from a libc socket. `address` holds a struct
 * sockaddr_in/sockaddr_in6 of `length` bytes (src/net/timestamps.ts encodes them); `what` names
 * the destination in errors.
 */
export function sendDatagram(fd: number, data: Uint8Array, address: NativeBuffer, length: number, what: string): void {
  if (data.byteLength > MAX_SENT_DATAGRAM) fail("sendto", EINVAL, `${fd}, ${what}: ${data.byteLength} bytes is too long`);
  new Uint8Array(sentPayload.buffer).set(data);
  const sent = socketSymbols().sendto(fd, sentPayload.address, BigInt(data.byteLength), 0, address.address, length);
  if (sent < 0n) fail("sendto", errno(), `${fd}, ${what}`);
}

/** bind(fd, address, length); `what` is the address as text, for the error. */
export function bindSocket(fd: number, address: NativeBuffer, length: number, what: string): void {
  if (socketSymbols().bind(fd, address.address, length) !== 0) fail("bind", errno(), `${fd}, ${what}`);
}

/**
 * recvmsg(fd, msghdr, MSG_DONTWAIT): the datagram's length, or null when none is waiting
 * (EAGAIN) or a signal interrupted the call (EINTR). `msghdr` is the address of a struct msghdr
 * whose buffers the caller keeps alive.
 */
export function receiveMessage(fd: number, msghdr: Address): number | null {
  const n = socketSymbols().recvmsg(fd, msghdr, MSG_DONTWAIT);
  if (n >= 0) return Number(n);
  const e = errno();
  if (e === EAGAIN_NUMBER || e === EINTR_NUMBER) return null;
  return fail("recvmsg", e, String(fd));
}

/** poll(fds, count, timeoutMs): how many descriptors are ready; 0 on timeout or EINTR. */
export function pollDescriptors(pollfds: NativeBuffer, count: number, timeoutMs: number): number {
  const n = socketSymbols().poll(pollfds.address, BigInt(count), timeoutMs);
  if (n >= 0) return n;
  const e = errno();
  if (e === EINTR_NUMBER) return 0;
  return fail("poll", e, `${count} descriptors`);
}

/** eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC): a descriptor another thread can wake poll() with. */
export function createEventFd(): number {
  const fd = socketSymbols().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) fail("eventfd", errno());
  return fd;
}

const eventFdWord = allocateNative(8);

/** Adds 1 to an eventfd's counter, making it readable. */
export function signalEventFd(fd: number): void {
  eventFdWord.view.setBigUint64(0, 1n, true);
  if (socketSymbols().write(fd, eventFdWord.address, 8n) !== 8n) fail("write", errno(), `eventfd ${fd}`);
}

/**
 * ioctl(fd, SIOCGSTAMPNS, &timespec): the kernel receive time (CLOCK_REALTIME, ns) of the last
 * datagram read from the socket; null when there is none, with errno's name. The first call on
 * a socket turns stamping on and answers ENOENT.
 */
export function lastReceiveStamp(fd: number, timespec: NativeBuffer): { ns: bigint } | { error: string } {
  if (socketSymbols().ioctl(fd, BigInt(SIOCGSTAMPNS), timespec.address) === 0) {
    return { ns: timespec.view.getBigInt64(0, true) * 1_000_000_000n + timespec.view.getBigInt64(8, true) };
  }
  return { error: errnoName(errno()) };
}

/** Every network interface of this namespace (if_nameindex), up or down. */
export function listInterfaces(): { index: number; name: string }[] {
  const list = interfaceNameIndex();
  if (list === null) fail("if_nameindex", errno());
  return list;
}

const ifreq = allocateNative(SOCKET_ABI.ifreq.size);

/** The interface's flags (IFF_*) through ioctl(SIOCGIFFLAGS) on any socket `fd`; null if it is gone. */
export function interfaceFlags(fd: number, name: string): number | null {
  const r = SOCKET_ABI.ifreq;
  const bytes = new TextEncoder().encode(name);
  if (bytes.length >= r.nameBytes) return null;
  for (let i = 0; i < r.size; i++) ifreq.view.setUint8(i, i < bytes.length ? bytes[i]! : 0);
  if (socketSymbols().ioctl(fd, BigInt(SIOCGIFFLAGS), ifreq.address) !== 0) {
    const e = errno();
    if (errnoName(e) === "ENODEV") return null;
    fail("ioctl", e, `${fd}, SIOCGIFFLAGS, "${name}"`);
  }
  return ifreq.view.getUint16(r.flags, true);
}

/** if_nametoindex(name), 0 when there is no such interface. */
export function interfaceIndex(name: string): number {
  return socketSymbols().if_nametoindex(name) >>> 0;
}

// --- unix datagrams (sd_notify) ----------------------------------------------------------------

/** socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) */
export function unixDatagramSocket(): number {
  const fd = socketSymbols().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket", errno(), "AF_UNIX, SOCK_DGRAM");
  return fd;
}

/** struct sockaddr_un: sa_family_t (u16) then sun_path[108]. */
const SOCKADDR_UN_BYTES = 110;
const MSG_NOSIGNAL = 0x4000;
const MAX_UNIX_DATAGRAM = 4096;
// Allocated once and used by sendToUnix below, which keeps them reachable.
const unixAddress = allocateNative(SOCKADDR_UN_BYTES);
const unixPayload = allocateNative(MAX_UNIX_DATAGRAM);

/**
 * sendto(fd, data, AF_UNIX address) with MSG_NOSIGNAL. `path` is sun_path's content: a file path,
 * or for Linux's abstract namespace a leading NUL and the name (no terminator).
 */
export function sendToUnix(fd: number, path: Uint8Array, data: Uint8Array, what: string): void {
  if (path.byteLength >= SOCKADDR_UN_BYTES - 2) fail("sendto", EINVAL, `${what}: path too long`);
  if (data.byteLength > MAX_UNIX_DATAGRAM) fail("sendto", EINVAL, `${what}: ${data.byteLength} bytes is too long`);
  const address = new Uint8Array(unixAddress.buffer);
  address.fill(0);
  unixAddress.view.setUint16(0, AF_UNIX, true);
  address.set(path, 2);
  const abstract = path[0] === 0;
  const length = 2 + path.byteLength + (abstract ? 0 : 1);
  new Uint8Array(unixPayload.buffer).set(data);
  const sent = socketSymbols().sendto(fd, unixPayload.address, BigInt(data.byteLength), MSG_NOSIGNAL, unixAddress.address, length);
  if (sent < 0n) fail("sendto", errno(), what);
}
