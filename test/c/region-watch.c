// region-watch: when does a client's shared-memory region appear, and what does a client find in
// it at that moment? Watches, in the network and mount namespaces it runs in:
//   - the loopback interface, for UDP datagrams to PORT whose payload begins with one of the
//     NAMEs and a space (a control message such as "/nqptp-kitchen T"): the kernel's receive
//     time of the first one for each name;
//   - /dev/shm, for each name's file appearing (inotify: created, or moved or linked there). At
//     once it opens the file as a client would (shm_open O_RDONLY) and reads its size and the
//     u16 at offset 0 (interface 10's version) or at VERSION_OFFSET.
// Prints one line per event, times in CLOCK_REALTIME nanoseconds:
//   ready
//   message <name> <ns>
//   region <name> <ns> size=<bytes> version=<u16 or -1 when it could not be read>
// and exits 0 once every name has both, 1 at the timeout (after printing what it saw).
//
// usage: region-watch PORT VERSION_OFFSET TIMEOUT_MS NAME...   (NAME as in shm_open: "/nqptp-x")
// PORT 0 watches the regions only. Otherwise it needs CAP_NET_RAW (a packet socket). Linux only.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 64

static const char *names[MAX_NAMES];
static int name_count;
static int seen_message[MAX_NAMES];
static int seen_region[MAX_NAMES];

static long long now_realtime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int all_seen(int watching_messages) {
  for (int i = 0; i < name_count; i++)
    if ((watching_messages && !seen_message[i]) || !seen_region[i]) return 0;
  return 1;
}

/* The UDP payload of a frame seen on loopback (Ethernet framing), or NULL. */
static const uint8_t *udp_payload(const uint8_t *frame, size_t len, int port, size_t *payload_len) {
  if (len < 14) return NULL;
  uint16_t ethertype = (uint16_t)(frame[12] << 8 | frame[13]);
  const uint8_t *ip = frame + 14;
  size_t left = len - 14;
  const uint8_t *udp;
  if (ethertype == ETH_P_IP) {
    if (left < 20 || ip[9] != IPPROTO_UDP) return NULL;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ihl < 20 || left < ihl + 8) return NULL;
    udp = ip + ihl;
    left -= ihl;
  } else if (ethertype == ETH_P_IPV6) {
    if (left < 48 || ip[6] != IPPROTO_UDP) return NULL; /* no extension headers on loopback */
    udp = ip + 40;
    left -= 40;
  } else {
    return NULL;
  }
  if ((udp[2] << 8 | udp[3]) != port) return NULL;
  *payload_len = left - 8;
  return udp + 8;
}

static void on_frame(int fd, int port) {
  uint8_t frame[4096 + 128];
  char control[256];
  struct sockaddr_ll from;
  struct iovec iov = {frame, sizeof frame};
  struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n <= 0) return;
  /* Loopback shows each datagram twice: leaving (PACKET_OUTGOING) and arriving (PACKET_HOST). */
  if (from.sll_pkttype == PACKET_OUTGOING) return;
  long long at = now_realtime();
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      at = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
  }
  size_t payload_len = 0;
  const uint8_t *payload = udp_payload(frame, (size_t)n, port, &payload_len);
  if (payload == NULL) return;
  for (int i = 0; i < name_count; i++) {
    size_t name_len = strlen(names[i]);
    if (seen_message[i] || payload_len <= name_len || memcmp(payload, names[i], name_len) != 0 || payload[name_len] != ' ') continue;
    seen_message[i] = 1;
    printf("message %s %lld\n", names[i], at);
    fflush(stdout);
  }
}

static void on_region(int index, long version_offset) {
  long long at = now_realtime();
  long size = -1;
  int version = -1;
  /* As a client: shm_open read-only, map, read the version. A zero-length file is reported as
     such without touching the mapping (reading it would be a SIGBUS). */
  int fd = shm_open(names[index], O_RDONLY, 0);
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0) size = (long)st.st_size;
    if (size >= version_offset + 2) {
      void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
      if (map != MAP_FAILED) {
        uint16_t v;
        memcpy(&v, (const char *)map + version_offset, sizeof v);
        version = v;
        munmap(map, (size_t)size);
      }
    }
    close(fd);
  }
  seen_region[index] = 1;
  printf("region %s %lld size=%ld version=%d\n", names[index], at, size, version);
  fflush(stdout);
}

static void on_inotify(int fd, long version_offset) {
  char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t n = read(fd, buffer, sizeof buffer);
  for (char *p = buffer; n > 0 && p < buffer + n;) {
    struct inotify_event *event = (struct inotify_event *)p;
    for (int i = 0; i < name_count; i++)
      if (!seen_region[i] && event->len > 0 && strcmp(event->name, names[i] + 1) == 0) on_region(i, version_offset);
    p += sizeof(struct inotify_event) + event->len;
  }
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s PORT VERSION_OFFSET TIMEOUT_MS NAME...\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  long version_offset = atol(argv[2]);
  long timeout_ms = atol(argv[3]);
  for (int i = 4; i < argc && name_count < MAX_NAMES; i++) {
    if (argv[i][0] != '/') {
      fprintf(stderr, "region-watch: a name begins with /: %s\n", argv[i]);
      return 2;
    }
    names[name_count++] = argv[i];
  }

  int packets = -1;
  if (port != 0) {
    packets = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (packets < 0) {
      perror("region-watch: socket(AF_PACKET)");
      return 2;
    }
    struct sockaddr_ll lo = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex("lo")};
    int on = 1;
    if (lo.sll_ifindex == 0 || bind(packets, (struct sockaddr *)&lo, sizeof lo) != 0 ||
        setsockopt(packets, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
      perror("region-watch: binding the packet socket to lo");
      return 2;
    }
  }
  int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch < 0 || inotify_add_watch(watch, "/dev/shm", IN_CREATE | IN_MOVED_TO) < 0) {
    perror("region-watch: inotify on /dev/shm");
    return 2;
  }
  printf("ready\n");
  fflush(stdout);

  long long deadline = now_realtime() + timeout_ms * 1000000LL;
  while (!all_seen(packets >= 0)) {
    long long left_ms = (deadline - now_realtime()) / 1000000LL;
    if (left_ms <= 0) return 1;
    struct pollfd fds[2] = {{packets, POLLIN, 0}, {watch, POLLIN, 0}}; /* poll skips a negative fd */
    int ready = poll(fds, 2, (int)left_ms);
    if (ready < 0 && errno != EINTR) {
      perror("region-watch: poll");
      return 2;
    }
    /* The region first: a message and its region in one wake-up are both stamped as they came. */
    if (fds[1].revents & POLLIN) on_inotify(watch, version_offset);
    if (fds[0].revents & POLLIN) on_frame(packets, port);
  }
  return 0;
}
