// Every socket constant and structure offset in src/sys/linux.ts that the kernel-timestamp and
// multicast code uses, checked against the C compiler on the machine the tests run on.

import { expect, setDefaultTimeout, test } from "bun:test";
import { CONTROL_BYTES } from "../../src/net/event-reader-loop.ts";
import * as linux from "../../src/sys/linux.ts";
import { compileAndRun } from "../support/c.ts";

setDefaultTimeout(30_000);

test(`socket constants and structures on ${process.arch} agree with the C compiler`, async () => {
  const out = await compileAndRun(
    String.raw`
#define _GNU_SOURCE
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#define F(s, m) offsetof(struct s, m)
int main(void) {
  printf("{\"AF_INET\":%d,\"AF_INET6\":%d,\"SOCK_DGRAM\":%d,\"SOCK_NONBLOCK\":%d,\"SOCK_CLOEXEC\":%d,",
         AF_INET, AF_INET6, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_CLOEXEC);
  printf("\"SOL_SOCKET\":%d,\"SO_REUSEADDR\":%d,\"SO_BINDTODEVICE\":%d,\"SO_TIMESTAMPNS\":%d,\"SCM_TIMESTAMPNS\":%d,",
         SOL_SOCKET, SO_REUSEADDR, SO_BINDTODEVICE, SO_TIMESTAMPNS, SCM_TIMESTAMPNS);
  printf("\"MSG_CTRUNC\":%d,\"MSG_TRUNC\":%d,\"MSG_DONTWAIT\":%d,", MSG_CTRUNC, MSG_TRUNC, MSG_DONTWAIT);
  printf("\"IPPROTO_IP\":%d,\"IPPROTO_UDP\":%d,\"IPPROTO_IPV6\":%d,\"IP_ADD_MEMBERSHIP\":%d,\"IPV6_V6ONLY\":%d,\"IPV6_JOIN_GROUP\":%d,",
         IPPROTO_IP, IPPROTO_UDP, IPPROTO_IPV6, IP_ADD_MEMBERSHIP, IPV6_V6ONLY, IPV6_JOIN_GROUP);
  printf("\"POLLIN\":%d,\"POLLERR\":%d,\"POLLHUP\":%d,\"POLLNVAL\":%d,\"EFD_NONBLOCK\":%d,\"EFD_CLOEXEC\":%d,",
         POLLIN, POLLERR, POLLHUP, POLLNVAL, EFD_NONBLOCK, EFD_CLOEXEC);
  printf("\"SIOCGSTAMPNS\":%d,\"SIOCGIFFLAGS\":%d,\"IFNAMSIZ\":%d,\"IFF_UP\":%d,\"IFF_LOOPBACK\":%d,\"IFF_MULTICAST\":%d,",
         SIOCGSTAMPNS, SIOCGIFFLAGS, IFNAMSIZ, IFF_UP, IFF_LOOPBACK, IFF_MULTICAST);
  printf("\"abi\":{");
  printf("\"sockaddrIn\":{\"size\":%zu,\"family\":%zu,\"port\":%zu,\"addr\":%zu},",
         sizeof(struct sockaddr_in), F(sockaddr_in, sin_family), F(sockaddr_in, sin_port), F(sockaddr_in, sin_addr));
  printf("\"sockaddrIn6\":{\"size\":%zu,\"family\":%zu,\"port\":%zu,\"flowinfo\":%zu,\"addr\":%zu,\"scopeId\":%zu},",
         sizeof(struct sockaddr_in6), F(sockaddr_in6, sin6_family), F(sockaddr_in6, sin6_port),
         F(sockaddr_in6, sin6_flowinfo), F(sockaddr_in6, sin6_addr), F(sockaddr_in6, sin6_scope_id));
  printf("\"iovec\":{\"size\":%zu,\"base\":%zu,\"length\":%zu},", sizeof(struct iovec), F(iovec, iov_base), F(iovec, iov_len));
  printf("\"msghdr\":{\"size\":%zu,\"name\":%zu,\"nameLength\":%zu,\"iov\":%zu,\"iovLength\":%zu,\"control\":%zu,\"controlLength\":%zu,\"flags\":%zu},",
         sizeof(struct msghdr), F(msghdr, msg_name), F(msghdr, msg_namelen), F(msghdr, msg_iov), F(msghdr, msg_iovlen),
         F(msghdr, msg_control), F(msghdr, msg_controllen), F(msghdr, msg_flags));
  printf("\"cmsghdr\":{\"size\":%zu,\"length\":%zu,\"level\":%zu,\"type\":%zu,\"align\":%zu},",
         sizeof(struct cmsghdr), F(cmsghdr, cmsg_len), F(cmsghdr, cmsg_level), F(cmsghdr, cmsg_type), CMSG_ALIGN(1));
  printf("\"pollfd\":{\"size\":%zu,\"fd\":%zu,\"events\":%zu,\"revents\":%zu},",
         sizeof(struct pollfd), F(pollfd, fd), F(pollfd, events), F(pollfd, revents));
  printf("\"ipMreqn\":{\"size\":%zu,\"multiaddr\":%zu,\"address\":%zu,\"ifindex\":%zu},",
         sizeof(struct ip_mreqn), F(ip_mreqn, imr_multiaddr), F(ip_mreqn, imr_address), F(ip_mreqn, imr_ifindex));
  printf("\"ipv6Mreq\":{\"size\":%zu,\"multiaddr\":%zu,\"ifindex\":%zu},",
         sizeof(struct ipv6_mreq), F(ipv6_mreq, ipv6mr_multiaddr), F(ipv6_mreq, ipv6mr_interface));
  printf("\"ifNameindex\":{\"size\":%zu,\"index\":%zu,\"name\":%zu},",
         sizeof(struct if_nameindex), F(if_nameindex, if_index), F(if_nameindex, if_name));
  printf("\"ifreq\":{\"size\":%zu,\"name\":%zu,\"nameBytes\":%d,\"flags\":%zu},\"timestampSpace\":%zu}}\n",
         sizeof(struct ifreq), F(ifreq, ifr_name), IFNAMSIZ, F(ifreq, ifr_flags), CMSG_SPACE(sizeof(struct timespec)));
  return 0;
}`,
    "socket-abi",
  );
  const c = JSON.parse(out);
  const { abi, ...constants } = c;
  const ours = Object.fromEntries(Object.keys(constants).map((name) => [name, (linux as Record<string, unknown>)[name]]));
  expect(ours).toEqual(constants);
  const { timestampSpace, ...structs } = abi;
  expect(linux.SOCKET_ABI).toEqual(structs);
  // The Worker's control buffer must hold at least one SCM_TIMESTAMPNS message.
  expect(timestampSpace).toBeLessThanOrEqual(CONTROL_BYTES);
});
