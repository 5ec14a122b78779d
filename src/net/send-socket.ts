// Which of the general port's sockets a datagram to an address goes out on. Pure.

/**
 * The general-port socket to send to `address` from, and the address to give it: a dual-stack
 * wildcard socket ("::") reaches IPv4 hosts through mapped addresses; among sockets bound to
 * specific addresses, one of the address's family (or the first, which then reports the error).
 */
export function pickSendSocket<S extends { hostname: string }>(sockets: readonly S[], address: string): { socket: S; target: string } {
  const ipv4 = !address.includes(":");
  const socket = sockets.find((s) => (s.hostname === "::" ? true : s.hostname.includes(":") !== ipv4)) ?? sockets[0]!;
  return { socket, target: ipv4 && socket.hostname === "::" ? `::ffff:${address}` : address };
}
