// UDP sockets made with libc rather than Bun, so that SO_TIMESTAMPNS can be set on them and the
// kernel's receive time read from each datagram's control message (see event-reader.ts for why
// the event port needs that). Opened and bound on the main thread, so that bind errors surface
// where the daemon starts and read the same as those of Bun's sockets (udp.ts).

import { NqptpError } from "../errors.ts";
import { allocateNative } from "../sys/libc.ts";
import { AF_INET, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, SO_TIMESTAMPNS, SOL_SOCKET, SOCKET_ABI } from "../sys/linux.ts";
import { SysError, bindSocket, bindToDevice, close, interfaceIndex, setIntSocketOption, udpSocket } from "../sys/posix.ts";
import { addressBytes, encodeSockaddr } from "./timestamps.ts";
import { describeBindError } from "./udp.ts";

export interface TimestampedSocket {
  readonly fd: number;
  /** The address it is bound to, as given ("::" for the dual-stack wildcard). */
  readonly hostname: string;
}

/**
 * Kernel receive timestamps are not available here: SO_TIMESTAMPNS was refused (qemu-user
 * answers ENOPROTOOPT, for one). The caller falls back to stamping in JavaScript.
 */
export class TimestampsUnavailable extends Error {
  override readonly name = "TimestampsUnavailable";
}

export interface TimestampedBindRequest {
  /** "::" (dual stack), "0.0.0.0", or one address. */
  hostname: string;
  port: number;
  /** What the port is for, in words, for errors: "PTP event port". */
  role: string;
  /** Hear (and send) only on this interface: SO_BINDTODEVICE, set before bind(). */
  device?: string;
  /** Ask for SO_TIMESTAMPNS (default true); false where the kernel is known to refuse it. */
  timestamps?: boolean;
}

/**
 * A non-blocking UDP socket with SO_TIMESTAMPNS (unless `timestamps` is false), bound to hostname:port. Throws
 * TimestampsUnavailable if the option is refused, or the NqptpError a Bun socket's bind failure
 * would give (permission, port in use...). Never sets SO_REUSEADDR: a port another daemon holds
 * must fail to bind, as with Bun's sockets. With a `device`, sockets of ours on other interfaces
 * share the port (see SO_BINDTODEVICE in src/sys/linux.ts); one without an interface, or on the
 * same one, still holds it against us.
 */
export function bindTimestampedSocket(given: TimestampedBindRequest): TimestampedSocket {
  // Errors say which interface: "PTP event port on interface wlan0 [::]:319".
  const request = given.device === undefined ? given : { ...given, role: `${given.role} on interface ${given.device}` };
  const target = addressBytes(request.hostname);
  if (target === null) {
    throw new NqptpError("bind-failed", `cannot listen on ${request.role} ${request.hostname}:${request.port}: not an IP address`);
  }
  const fd = openSocket(request, target.family === 4 ? AF_INET : AF_INET6);
  try {
    if (target.family === 6) setIntSocketOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY 0");
    if (request.device !== undefined) bindDevice(fd, request, request.device);
    if (request.timestamps ?? true) {
      try {
        setIntSocketOption(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS 1");
      } catch (error) {
        throw new TimestampsUnavailable((error as Error).message, { cause: error });
      }
    }
    const sockaddr = allocateNative(SOCKET_ABI.sockaddrIn6.size);
    let scopeId = 0;
    if (target.zone !== null) {
      scopeId = /^[0-9]+$/.test(target.zone) ? Number(target.zone) : interfaceIndex(target.zone);
      if (scopeId === 0) {
        throw new NqptpError("bind-failed", `cannot listen on ${request.role} ${request.hostname}:${request.port}: no interface "${target.zone}"`);
      }
    }
    const length = encodeSockaddr(sockaddr.view, target.family, target.bytes, request.port, scopeId);
    try {
      bindSocket(fd, sockaddr, length, `${request.hostname}:${request.port}`);
    } catch (error) {
      throw describeBindError(request, error as SysError);
    }
    return { fd, hostname: request.hostname };
  } catch (error) {
    close(fd);
    throw error;
  }
}

/** SO_BINDTODEVICE, or the error a person can act on. */
function bindDevice(fd: number, request: Pick<TimestampedBindRequest, "role">, device: string): void {
  try {
    bindToDevice(fd, device);
  } catch (error) {
    if (!(error instanceof SysError)) throw error;
    const where = request.role;
    if (error.code === "ENODEV") throw new NqptpError("bind-failed", `cannot listen on ${where}: there is no such interface`, { cause: error });
    if (error.code === "EPERM") {
      throw new NqptpError(
        "bind-permission",
        `cannot listen on ${where}: binding a socket to an interface was refused (EPERM); before Linux 5.7 it needs CAP_NET_RAW`,
        { cause: error },
      );
    }
    throw new NqptpError("bind-failed", `cannot listen on ${where}: ${error.message}`, { cause: error });
  }
}

/**
 * Why this kernel gives no per-datagram receive stamps (SO_TIMESTAMPNS refused on a fresh UDP
 * socket: qemu-user answers ENOPROTOOPT), or null when it gives them.
 */
export function timestampOptionRefusal(): string | null {
  const fd = udpSocket(AF_INET);
  try {
    setIntSocketOption(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS 1");
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    close(fd);
  }
}

function openSocket(request: TimestampedBindRequest, family: number): number {
  try {
    return udpSocket(family);
  } catch (error) {
    throw describeBindError(request, error as SysError);
  }
}

/**
 * The wildcard for both families ("::", dual stack); IPv4 only where IPv6 is switched off, as
 * bindWildcard (udp.ts) does for Bun's sockets.
 */
export function bindTimestampedWildcard(request: Omit<TimestampedBindRequest, "hostname">): TimestampedSocket {
  try {
    return bindTimestampedSocket({ ...request, hostname: "::" });
  } catch (error) {
    const code = error instanceof NqptpError ? (error.cause as SysError | undefined)?.code : undefined;
    if (code === "EAFNOSUPPORT" || code === "EADDRNOTAVAIL") return bindTimestampedSocket({ ...request, hostname: "0.0.0.0" });
    throw error;
  }
}

export function closeTimestampedSocket(socket: TimestampedSocket): void {
  try {
    close(socket.fd);
  } catch {
    // already closed
  }
}
