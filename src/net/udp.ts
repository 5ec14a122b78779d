// Bun UDP sockets with the errors a person can act on. Bind failures name the port and say why;
// everything else about a datagram is the caller's business.

import { NqptpError } from "../errors.ts";

export type DatagramHandler = (data: Buffer, port: number, address: string) => void;

export interface BoundSocket {
  readonly hostname: string;
  readonly port: number;
  /** The kernel descriptor (for socket options and kernel timestamps). */
  readonly fd: number;
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

export interface BindRequest {
  hostname: string;
  port: number;
  /** What the port is for, in words: "PTP event port", "control port". */
  role: string;
  onData: DatagramHandler;
  onError?: (error: Error) => void;
}

interface BunSocketError extends Error {
  code?: string;
  errno?: number;
}

export function describeBindError(request: Pick<BindRequest, "hostname" | "port" | "role">, error: BunSocketError): NqptpError {
  const where = `${request.role} ${request.hostname.includes(":") ? `[${request.hostname}]` : request.hostname}:${request.port}`;
  switch (error.code) {
    case "EACCES":
    case "EPERM":
      return new NqptpError(
        "bind-permission",
        `cannot listen on ${where}: permission denied. Ports below 1024 need root or CAP_NET_BIND_SERVICE ` +
          `(e.g. AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit).`,
        { cause: error },
      );
    case "EADDRINUSE":
      return new NqptpError(
        "bind-in-use",
        `cannot listen on ${where}: the port is already in use. Another PTP daemon such as ptp4l, ` +
          `or another nqptp, may be running (check with: ss -ulpn 'sport = :${request.port}').`,
        { cause: error },
      );
    case "EADDRNOTAVAIL":
      return new NqptpError("bind-failed", `cannot listen on ${where}: no interface has that address.`, { cause: error });
    default:
      return new NqptpError("bind-failed", `cannot listen on ${where}: ${error.message}`, { cause: error });
  }
}

export async function bindUdp(request: BindRequest): Promise<BoundSocket> {
  let socket: Bun.udp.Socket<"buffer">;
  try {
    socket = await Bun.udpSocket({
      hostname: request.hostname,
      port: request.port,
      socket: {
        data(_socket, data, port, address) {
          request.onData(data, port, address);
        },
        // Bun 1.4.5 passes only the error here; its type definitions say (socket, error).
        error(first: unknown, second?: unknown) {
          const error = [first, second].find((a) => a instanceof Error) as Error | undefined;
          request.onError?.(error ?? new Error(String(first)));
        },
      },
    });
  } catch (error) {
    throw describeBindError(request, error as BunSocketError);
  }
  return {
    hostname: request.hostname,
    port: socket.port,
    fd: (socket as unknown as { fd: number }).fd,
    send: (data, port, address) => socket.send(data, port, address),
    close: () => socket.close(),
  };
}

/**
 * Binds the wildcard address for both families ("::" is dual stack); on a host with IPv6
 * switched off, falls back to IPv4 only.
 */
export async function bindWildcard(request: Omit<BindRequest, "hostname">): Promise<BoundSocket> {
  try {
    return await bindUdp({ ...request, hostname: "::" });
  } catch (error) {
    const cause = error instanceof NqptpError ? (error.cause as BunSocketError | undefined) : undefined;
    if (cause?.code === "EAFNOSUPPORT" || cause?.code === "EADDRNOTAVAIL") {
      return bindUdp({ ...request, hostname: "0.0.0.0" });
    }
    throw error;
  }
}
