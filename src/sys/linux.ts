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
/** flock(2) operations (the same on every Linux architecture). */
export const LOCK_EX = 2;
export const LOCK_NB = 4;
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

// ---------------------------------------------------------------------------------------------
// Sockets: what the PTP event port needs for kernel receive timestamps and multicast. Generic
// values (asm-generic/socket.h, linux/in.h, linux/in6.h, asm-generic/poll.h), the same on
// x86_64 and aarch64; test/net/socket-abi.test.ts checks each against the C compiler.

// <sys/socket.h>
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
/** Flags or'ed into socket()'s type: O_NONBLOCK and O_CLOEXEC (both arches use these values). */
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
/**
 * SO_BINDTODEVICE: the socket receives only what arrives on the named interface and sends out of
 * it. Set before bind(), it also lets sockets bound to different interfaces share a port without
 * SO_REUSEADDR, while a bind that overlaps (no interface, or the same one) still fails. Allowed
 * without CAP_NET_RAW since Linux 5.7 on a socket not yet bound to an interface.
 */
export const SO_BINDTODEVICE = 25;
/**
 * SO_TIMESTAMPNS: a struct timespec of CLOCK_REALTIME (when the packet reached the stack) in a
 * control message of type SCM_TIMESTAMPNS with each datagram. On 64-bit arches the "old" option
 * (35) already carries 64-bit fields; SO_TIMESTAMPNS_NEW (64) is for 32-bit time_t ABIs.
 */
export const SO_TIMESTAMPNS = 35;
export const SCM_TIMESTAMPNS = SO_TIMESTAMPNS;
/** recvmsg() flags. MSG_TRUNC out: the datagram was longer than the buffer; MSG_CTRUNC: the control data. */
export const MSG_CTRUNC = 0x08;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

// <netinet/in.h>
export const IPPROTO_IP = 0;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IP_ADD_MEMBERSHIP = 35;
export const IPV6_V6ONLY = 26;
/** IPV6_ADD_MEMBERSHIP in the kernel's headers. */
export const IPV6_JOIN_GROUP = 20;

// <poll.h>
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

// <sys/eventfd.h>
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

// <linux/sockios.h>: the receive time of the last datagram read from the socket, as a timespec;
// an interface's flags (struct ifreq).
export const SIOCGSTAMPNS = 0x8907;
export const SIOCGIFFLAGS = 0x8913;

// <net/if.h>
/** An interface name's bytes and its NUL. */
export const IFNAMSIZ = 16;
export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_MULTICAST = 0x1000;

/** Byte offsets of the socket structures we fill in or read (LP64: identical on both arches). */
export const SOCKET_ABI = {
  /** struct sockaddr_in { sa_family_t; in_port_t (BE); struct in_addr; zero[8] } */
  sockaddrIn: { size: 16, family: 0, port: 2, addr: 4 },
  /** struct sockaddr_in6 { sa_family_t; in_port_t (BE); u32 flowinfo; in6_addr; u32 scope_id } */
  sockaddrIn6: { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scopeId: 24 },
  /** struct iovec { void *iov_base; size_t iov_len } */
  iovec: { size: 16, base: 0, length: 8 },
  /** struct msghdr */
  msghdr: { size: 56, name: 0, nameLength: 8, iov: 16, iovLength: 24, control: 32, controlLength: 40, flags: 48 },
  /** struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type } then data, CMSG_ALIGN'ed to size_t. */
  cmsghdr: { size: 16, length: 0, level: 8, type: 12, align: 8 },
  /** struct pollfd { int fd; short events; short revents } */
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
  /** struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex } */
  ipMreqn: { size: 12, multiaddr: 0, address: 4, ifindex: 8 },
  /** struct ipv6_mreq { in6_addr multiaddr; int ifindex } */
  ipv6Mreq: { size: 20, multiaddr: 0, ifindex: 16 },
  /** struct if_nameindex { unsigned if_index; char *if_name } */
  ifNameindex: { size: 16, index: 0, name: 8 },
  /** struct ifreq: char ifr_name[IFNAMSIZ = 16], then a union (ifr_flags: short) */
  ifreq: { size: 40, name: 0, nameBytes: 16, flags: 16 },
} as const;
