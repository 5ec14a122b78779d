/*
 * notify-listen: a stand-in for systemd's notification socket, for tests.
 *
 *   notify-listen <socket path> <timeout ms>
 *
 * Binds an AF_UNIX datagram socket at the path (a leading '@' means the abstract namespace),
 * prints "listening" once bound, then one line per datagram received — its text with newlines
 * shown as '|' — until a datagram containing STOPPING=1 arrives or the timeout passes.
 * Build: cc -O2 -Wall -o notify-listen notify-listen.c
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: notify-listen <socket path> <timeout ms>\n");
    return 2;
  }
  const char *path = argv[1];
  double timeout = atof(argv[2]);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("socket"); return 1; }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof addr.sun_path) { fprintf(stderr, "path too long\n"); return 2; }
  memcpy(addr.sun_path, path, len);
  socklen_t addrlen = offsetof(struct sockaddr_un, sun_path) + len + 1;
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';
    addrlen = offsetof(struct sockaddr_un, sun_path) + len;
  } else {
    unlink(path);
  }
  if (bind(fd, (struct sockaddr *)&addr, addrlen) != 0) { perror("bind"); return 1; }
  puts("listening");
  fflush(stdout);
  double deadline = now_ms() + timeout;
  char buf[4096];
  for (;;) {
    double left = deadline - now_ms();
    if (left <= 0) break;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, (int)left);
    if (r < 0) { perror("poll"); return 1; }
    if (r == 0) break;
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) { perror("recv"); return 1; }
    buf[n] = '\0';
    int stopping = strstr(buf, "STOPPING=1") != NULL;
    for (ssize_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = '|';
    puts(buf);
    fflush(stdout);
    if (stopping) break;
  }
  if (path[0] != '@') unlink(path);
  return 0;
}
