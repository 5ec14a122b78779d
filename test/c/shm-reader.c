/*
 * shm-reader: reads the nqptp shared-memory region the way its clients do, for tests.
 *
 *   shm-reader <shm-name> <version> [--hold-ms N] [--loop-ms N] [--count N]
 *              [--interval-ms N] [--summary] [--check-derived] [--no-consistent] [--clocks]
 *
 * Versions 5, 6, 8, 9: opens the region O_RDWR (locking the mutex writes to it), locks the
 * process-shared mutex (recovering it with pthread_mutex_consistent on EOWNERDEAD), copies the
 * struct and unlocks. With --hold-ms N it prints "locked" (flushed) once it holds the lock, then
 * sleeps N ms before copying and unlocking, so a test knows when the writer will find it busy.
 * Version 10: opens the region O_RDONLY, copies it twice and accepts when the first copy's
 * `main` equals the second copy's `secondary` (as Shairport Sync 4.3 does), up to 10 attempts
 * 1 ms apart; otherwise the read is "torn".
 *
 * Output, one JSON line per read (u64 values as decimal strings, clock id as 0x + 16 hex digits):
 *   {"version":5,"clock_id":"0x00000000000000ff","ip":"192.168.1.7","local_time":"...",
 *    "offset":"...","start_time":"..."}          ("ip" absent for version 10)
 *   {"error":"torn"}                                (version 10, no consistent copy in 10 tries)
 * --count N        stop after N reads (default 1, unless --loop-ms is given)
 * --loop-ms N      read repeatedly for N ms (with --count too: whichever limit comes first)
 * --interval-ms N  pause between reads (default 0 with --summary, else 10)
 * --summary        instead of one line per read, print one line at the end:
 *   {"reads":R,"accepted":A,"torn":T,"retries":X,"violations":V,"changes":C,"last_clock_id":"0x.."}
 *   where changes counts accepted reads whose clock id differs from the previous accepted one.
 * --check-derived  check each accepted record against the stress writer's pattern: with
 *   n = clock_id, local_time = 3n, offset = 7n, start_time = 11n (mod 2^64). A mismatch is a
 *   violation: counted in the summary, or "violation":true added to the line.
 * --no-consistent  on EOWNERDEAD, do NOT call pthread_mutex_consistent (a client that ignores
 *   robust mutexes): unlocking then leaves the mutex permanently unrecoverable.
 * --clocks         add the reader's clocks, read just after the copy, to each line:
 *   "realtime_before", "monotonic_raw", "realtime_after" (ns, decimal strings; CLOCK_REALTIME on
 *   both sides of CLOCK_MONOTONIC_RAW), for computing the true offset where the region is read.
 * Exit status: 0; 1 on a usage or system error (message on stderr); 3 if the region holds
 * another interface version ({"error":"version",...} on stdout); 4 if --check-derived found
 * violations.
 *
 * Build: cc -O2 -Wall -pthread -o shm-reader shm-reader.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Interface versions 5 and 6: the seed README's structure. */
struct shm_v5 {
  pthread_mutex_t shm_mutex;
  uint16_t version;
  uint32_t flags;
  uint64_t master_clock_id;
  char master_clock_ip[64];
  uint64_t local_time;
  uint64_t local_to_master_time_offset;
  uint64_t master_clock_start_time;
};

/* Interface versions 8 and 9: without flags. */
struct shm_v8 {
  pthread_mutex_t shm_mutex;
  uint16_t version;
  uint64_t master_clock_id;
  char master_clock_ip[64];
  uint64_t local_time;
  uint64_t local_to_master_time_offset;
  uint64_t master_clock_start_time;
};

/* Interface version 10: no mutex, the record twice. */
struct shm_record {
  uint64_t master_clock_id;
  uint64_t local_time;
  uint64_t local_to_master_time_offset;
  uint64_t master_clock_start_time;
};

struct shm_v10 {
  uint16_t version;
  struct shm_record main;
  struct shm_record secondary;
};

struct reading {
  uint16_t version;
  uint64_t clock_id;
  int has_ip;
  char ip[65];
  uint64_t local_time;
  uint64_t offset;
  uint64_t start_time;
};

static void die(const char *what) {
  fprintf(stderr, "shm-reader: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr,
          "shm-reader: %s\nusage: shm-reader <shm-name> <version> [--hold-ms N] [--loop-ms N] [--count N]\n"
          "                  [--interval-ms N] [--summary] [--check-derived] [--no-consistent] [--clocks]\n",
          why);
  exit(1);
}

static void sleep_ms(double ms) {
  if (ms <= 0) return;
  struct timespec t = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static long parse_number(const char *option, const char *text) {
  char *end = NULL;
  errno = 0;
  long n = text ? strtol(text, &end, 10) : -1;
  if (!text || errno != 0 || *end != '\0' || n < 0) {
    fprintf(stderr, "shm-reader: %s needs a number ≥ 0\n", option);
    exit(1);
  }
  return n;
}

static int mark_consistent = 1;

static void lock_mutex(pthread_mutex_t *mutex) {
  int rc = pthread_mutex_lock(mutex);
  if (rc == EOWNERDEAD) rc = mark_consistent ? pthread_mutex_consistent(mutex) : 0;
  if (rc != 0) {
    errno = rc;
    die("pthread_mutex_lock");
  }
}

static void unlock_mutex(pthread_mutex_t *mutex) {
  int rc = pthread_mutex_unlock(mutex);
  if (rc != 0) {
    errno = rc;
    die("pthread_mutex_unlock");
  }
}

static void copy_ip(struct reading *out, const char ip[64]) {
  memcpy(out->ip, ip, 64);
  out->ip[64] = '\0';
  out->has_ip = 1;
}

/* Versions 5, 6, 8, 9: copy under the lock. */
static void read_locked(void *base, int version, long hold_ms, struct reading *out) {
  /* shm_mutex is the first member of both structs. */
  pthread_mutex_t *mutex = &((struct shm_v5 *)base)->shm_mutex;
  lock_mutex(mutex);
  if (hold_ms > 0) {
    fputs("locked\n", stdout);
    fflush(stdout);
    sleep_ms((double)hold_ms);
  }
  if (version == 5 || version == 6) {
    struct shm_v5 copy;
    memcpy(&copy, base, sizeof copy);
    unlock_mutex(mutex);
    out->version = copy.version;
    out->clock_id = copy.master_clock_id;
    copy_ip(out, copy.master_clock_ip);
    out->local_time = copy.local_time;
    out->offset = copy.local_to_master_time_offset;
    out->start_time = copy.master_clock_start_time;
  } else {
    struct shm_v8 copy;
    memcpy(&copy, base, sizeof copy);
    unlock_mutex(mutex);
    out->version = copy.version;
    out->clock_id = copy.master_clock_id;
    copy_ip(out, copy.master_clock_ip);
    out->local_time = copy.local_time;
    out->offset = copy.local_to_master_time_offset;
    out->start_time = copy.master_clock_start_time;
  }
}

/* Version 10: two copies; returns 1 when consistent, 0 when torn. *retries counts extra tries. */
static int read_v10(const void *base, struct reading *out, long *retries) {
  for (int attempt = 0; attempt < 10; attempt++) {
    struct shm_v10 first, second;
    if (attempt > 0) {
      (*retries)++;
      sleep_ms(1);
    }
    memcpy(&first, base, sizeof first);
    /* Keeps the compiler from merging the copies and the CPU from reordering their loads. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(&second, base, sizeof second);
    if (memcmp(&first.main, &second.secondary, sizeof first.main) == 0) {
      out->version = first.version;
      out->clock_id = first.main.master_clock_id;
      out->has_ip = 0;
      out->local_time = first.main.local_time;
      out->offset = first.main.local_to_master_time_offset;
      out->start_time = first.main.master_clock_start_time;
      return 1;
    }
  }
  return 0;
}

static int derived_ok(const struct reading *r) {
  uint64_t n = r->clock_id;
  return r->local_time == n * 3 && r->offset == n * 7 && r->start_time == n * 11;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20 || *p > 0x7e)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static uint64_t clock_ns(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* CLOCK_REALTIME, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME back to back; a triple whose realtime reads
 * are more than 2 µs apart (the reader was preempted between them, or the first call was slow) is
 * read again, up to 4 times, and the tightest kept (as the daemon's readClockPair does). */
static void print_clocks(void) {
  uint64_t before = 0, raw = 0, after = 0;
  for (int attempt = 0; attempt < 4; attempt++) {
    uint64_t b = clock_ns(CLOCK_REALTIME);
    uint64_t r = clock_ns(CLOCK_MONOTONIC_RAW);
    uint64_t a = clock_ns(CLOCK_REALTIME);
    if (attempt == 0 || (a >= b && (after < before || a - b < after - before))) before = b, raw = r, after = a;
    if (after >= before && after - before <= 2000) break;
  }
  printf(",\"realtime_before\":\"%" PRIu64 "\",\"monotonic_raw\":\"%" PRIu64 "\",\"realtime_after\":\"%" PRIu64 "\"", before, raw, after);
}

static void print_reading(const struct reading *r, int check_derived, int clocks) {
  printf("{\"version\":%u,\"clock_id\":\"0x%016" PRIx64 "\"", (unsigned)r->version, r->clock_id);
  if (r->has_ip) {
    fputs(",\"ip\":", stdout);
    print_json_string(r->ip);
  }
  printf(",\"local_time\":\"%" PRIu64 "\",\"offset\":\"%" PRIu64 "\",\"start_time\":\"%" PRIu64 "\"", r->local_time,
         r->offset, r->start_time);
  if (check_derived && !derived_ok(r)) fputs(",\"violation\":true", stdout);
  if (clocks) print_clocks();
  fputs("}\n", stdout);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 3) usage("missing arguments");
  const char *name = argv[1];
  int version = (int)parse_number("<version>", argv[2]);
  if (version != 5 && version != 6 && version != 8 && version != 9 && version != 10) usage("version must be 5, 6, 8, 9 or 10");

  long hold_ms = 0, loop_ms = -1, count = -1, interval_ms = -1;
  int summary = 0, check_derived = 0, clocks = 0;
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--hold-ms") == 0) hold_ms = parse_number(a, next), i++;
    else if (strcmp(a, "--loop-ms") == 0) loop_ms = parse_number(a, next), i++;
    else if (strcmp(a, "--count") == 0) count = parse_number(a, next), i++;
    else if (strcmp(a, "--interval-ms") == 0) interval_ms = parse_number(a, next), i++;
    else if (strcmp(a, "--summary") == 0) summary = 1;
    else if (strcmp(a, "--check-derived") == 0) check_derived = 1;
    else if (strcmp(a, "--no-consistent") == 0) mark_consistent = 0;
    else if (strcmp(a, "--clocks") == 0) clocks = 1;
    else usage("unknown option");
  }
  if (hold_ms > 0 && version == 10) usage("--hold-ms needs a version with a mutex (5, 6, 8, 9)");
  if (loop_ms < 0 && count < 0) count = 1;
  if (interval_ms < 0) interval_ms = summary ? 0 : 10;

  int locked_version = version != 10;
  int fd = shm_open(name, locked_version ? O_RDWR : O_RDONLY, 0);
  if (fd < 0) die("shm_open");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  size_t size = version == 10 ? sizeof(struct shm_v10) : (version <= 6 ? sizeof(struct shm_v5) : sizeof(struct shm_v8));
  if ((size_t)st.st_size < size) {
    fprintf(stderr, "shm-reader: %s is %lld bytes, version %d needs %zu\n", name, (long long)st.st_size, version, size);
    return 1;
  }
  void *base = mmap(NULL, size, locked_version ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) die("mmap");
  close(fd);

  long reads = 0, accepted = 0, torn = 0, retries = 0, violations = 0, changes = 0;
  uint64_t last_clock_id = 0;
  double start = now_ms();
  for (;;) {
    struct reading r;
    memset(&r, 0, sizeof r);
    int ok = 1;
    if (locked_version)
      read_locked(base, version, reads == 0 ? hold_ms : 0, &r);
    else
      ok = read_v10(base, &r, &retries);
    reads++;
    if (!ok) {
      torn++;
      if (!summary) {
        puts("{\"error\":\"torn\"}");
        fflush(stdout);
      }
    } else {
      if (r.version != version) {
        printf("{\"error\":\"version\",\"expected\":%d,\"found\":%u}\n", version, (unsigned)r.version);
        return 3;
      }
      if (accepted > 0 && r.clock_id != last_clock_id) changes++;
      last_clock_id = r.clock_id;
      accepted++;
      if (check_derived && !derived_ok(&r)) violations++;
      if (!summary) print_reading(&r, check_derived, clocks);
    }
    if (count >= 0 && reads >= count) break;
    if (loop_ms >= 0 && now_ms() - start >= (double)loop_ms) break;
    sleep_ms((double)interval_ms);
  }
  if (summary) {
    printf("{\"reads\":%ld,\"accepted\":%ld,\"torn\":%ld,\"retries\":%ld,\"violations\":%ld,\"changes\":%ld,"
           "\"last_clock_id\":\"0x%016" PRIx64 "\"}\n",
           reads, accepted, torn, retries, violations, changes, last_clock_id);
  }
  munmap(base, size);
  return violations > 0 ? 4 : 0;
}
