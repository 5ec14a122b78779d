// The libc bindings: errors, clocks, the memory barrier, and every constant and struct offset
// in src/sys/linux.ts checked against the C compiler on this machine.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { SysError, errnoName } from "../../src/sys/errors.ts";
import { fullMemoryBarrier, HOST_ARCH, memoryAt, prepareFullMemoryBarrier, type Address } from "../../src/sys/libc.ts";
import * as linux from "../../src/sys/linux.ts";
import { clockGettimeNs, close, fstat, ftruncate, geteuid, initRobustSharedMutex, mmap, munmap, shmOpen, shmUnlink } from "../../src/sys/posix.ts";
import { monotonicRawNs, readClock, realtimeNs } from "../../src/time/clocks.ts";
import { compileAndRun } from "../support/c.ts";

// bunfig.toml's [test] timeout is not applied by Bun 1.4.5 (tests stop at the 5 s default), and
// these tests compile C and run child processes: give them room, also on slow or emulated CPUs.
setDefaultTimeout(30_000);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

describe("SysError", () => {
  test("names the call, its argument, the errno and its code", () => {
    const e = thrown(() => shmOpen("/not/valid", linux.O_RDWR, 0));
    expect(e).toBeInstanceOf(SysError);
    const error = e as SysError;
    expect(error.call).toBe("shm_open");
    expect(error.errno).toBe(22);
    expect(error.code).toBe("EINVAL");
    expect(error.message).toBe('shm_open("/not/valid") failed: Invalid argument (EINVAL)');
  });

  test("ENOENT from shm_open of a name that does not exist", () => {
    const error = thrown(() => shmOpen(`/nqptp-test-${process.pid}-absent`, linux.O_RDWR, 0)) as SysError;
    expect(error.code).toBe("ENOENT");
    expect(error.message).toContain("No such file or directory (ENOENT)");
  });

  test("EBADF from calls on a closed descriptor", () => {
    expect((thrown(() => fstat(-1)) as SysError).code).toBe("EBADF");
    expect((thrown(() => close(-1)) as SysError).message).toBe("close(-1) failed: Bad file descriptor (EBADF)");
  });

  test("unnamed errno numbers still get a code", () => {
    expect(errnoName(13)).toBe("EACCES");
    expect(errnoName(41)).toBe("E41");
    expect(errnoName(9999)).toBe("E9999");
  });
});

describe("fstat", () => {
  test("reads mode, owner, size, links and inode at this arch's offsets", () => {
    const name = `/nqptp-test-${process.pid}-fstat`;
    const fd = shmOpen(name, linux.O_RDWR | linux.O_CREAT | linux.O_EXCL, 0o600);
    try {
      ftruncate(fd, 12345);
      const status = fstat(fd);
      const node = statSync(`/dev/shm${name}`, { bigint: true });
      expect(status).toEqual({ ino: node.ino, mode: Number(node.mode), nlink: 1, uid: geteuid(), size: 12345 });
    } finally {
      close(fd);
      shmUnlink(name);
    }
  });
});

describe("clocks", () => {
  test("realtimeNs is CLOCK_REALTIME in nanoseconds: it lies between two Date.now() (milliseconds of the same clock)", () => {
    // Date.now() counts whole milliseconds (from a float of seconds, so it may round up by a
    // fraction of a microsecond): the bracket is widened by its own resolution, not by a delay.
    const MS = 1_000_000n;
    const before = BigInt(Date.now()) * MS;
    const ours = realtimeNs();
    const after = BigInt(Date.now()) * MS;
    expect(ours >= before - MS && ours < after + MS).toBe(true);
    expect(readClock("realtime") >= ours).toBe(true);
  });

  test("a clock the kernel does not have is a SysError naming clock_gettime and the clock", () => {
    const error = thrown(() => clockGettimeNs(-1_000)) as SysError;
    expect(error).toBeInstanceOf(SysError);
    expect(error.code).toBe("EINVAL");
    expect(error.message).toBe("clock_gettime(-1000) failed: Invalid argument (EINVAL)");
    expect(clockGettimeNs(linux.CLOCK_MONOTONIC_RAW)).toBeGreaterThan(0n);
  });

  test("monotonicRawNs strictly increases", () => {
    let previous = monotonicRawNs();
    let notIncreasing = 0;
    for (let i = 0; i < 10_000; i++) {
      const now = monotonicRawNs();
      if (now <= previous) notIncreasing++;
      previous = now;
    }
    expect(notIncreasing).toBe(0);
  });

  test("monotonicRawNs is the clock a C program reads as CLOCK_MONOTONIC_RAW", async () => {
    const before = monotonicRawNs();
    const out = await compileAndRun(
      String.raw`
#include <stdio.h>
#include <time.h>
int main(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_RAW, &t);
  printf("%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  return 0;
}`,
      "raw-clock",
    );
    const after = readClock("monotonic-raw");
    const theirs = BigInt(out.trim());
    expect(theirs > before && theirs < after).toBe(true);
  });
});

describe("native buffers outlive garbage collection", () => {
  // ptr() returns a number that does not keep its ArrayBuffer alive. When the buffers behind
  // the timespec, struct stat and pthread_mutexattr_t were collectable, C wrote into freed heap:
  // Bun crashed as soon as a spawn or a GC reused the memory. Here: collect, fill the heap with
  // zeroed 16..256-byte buffers (which land in any freed slot), make every call that writes into
  // one of our buffers, and check no zeroed buffer changed.
  test("clock, fstat and mutex-attribute calls never write into memory the GC reclaimed", () => {
    const name = `/nqptp-test-${process.pid}-gc`;
    const fd = shmOpen(name, linux.O_RDWR | linux.O_CREAT | linux.O_EXCL, 0o600);
    const page = mmap(4096, linux.PROT_READ | linux.PROT_WRITE, linux.MAP_PRIVATE | linux.MAP_ANONYMOUS, -1);
    let dirtied = 0;
    try {
      for (let round = 0; round < 20; round++) {
        Bun.gc(true);
        const decoys: Uint8Array[] = [];
        for (let i = 0; i < 2000; i++) decoys.push(new Uint8Array(new ArrayBuffer(16 << (i % 5))));
        realtimeNs();
        monotonicRawNs();
        fstat(fd);
        initRobustSharedMutex(page);
        for (const decoy of decoys) if (decoy.some((b) => b !== 0)) dirtied++;
      }
    } finally {
      munmap(page, 4096);
      close(fd);
      shmUnlink(name);
    }
    expect(dirtied).toBe(0);
  });
});

describe("fullMemoryBarrier", () => {
  // The instructions a C compiler emits for atomic_thread_fence(memory_order_seq_cst), then ret.
  const EXPECTED_CODE: Record<string, number[]> = {
    x64: [0x0f, 0xae, 0xf0, 0xc3], // mfence; ret
    arm64: [0xbf, 0x3b, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6], // dmb ish; ret (little-endian words)
  };
  const executableSharedPages = () =>
    readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .filter((line) => / r-xs /.test(line) && line.endsWith("/dev/zero (deleted)"));

  test("is this architecture's full fence in a page that is executable and never writable, and returns", () => {
    prepareFullMemoryBarrier();
    const pages = executableSharedPages();
    prepareFullMemoryBarrier();
    expect(executableSharedPages()).toEqual(pages); // prepared once: no second page
    const code = EXPECTED_CODE[process.arch]!;
    const holding = pages.filter((line) => {
      const [start, end] = line
        .split(" ")[0]!
        .split("-")
        .map((hex) => parseInt(hex, 16)) as [number, number];
      return end - start === 4096 && [...new Uint8Array(memoryAt(start as Address, code.length))].every((b, i) => b === code[i]);
    });
    expect(holding).toHaveLength(1);
    // And it runs: the barrier executes and returns, any number of times (its cost: bench/libc.ts).
    let result: unknown;
    for (let i = 0; i < 100_000; i++) result = fullMemoryBarrier();
    expect(result).toBeUndefined();
  });
});

describe(`constants and struct stat on ${process.arch} agree with the C compiler`, () => {
  test("open flags, mmap, stat, clocks, pthread, errno names", async () => {
    if (HOST_ARCH === null) throw new Error(`no constants for ${process.arch}`);
    const out = await compileAndRun(
      String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
int main(void) {
  printf("{\"O_RDWR\":%d,\"O_CREAT\":%d,\"O_EXCL\":%d,\"O_CLOEXEC\":%d,\"O_NOFOLLOW\":%d,", O_RDWR, O_CREAT, O_EXCL, O_CLOEXEC, O_NOFOLLOW);
  printf("\"PROT_READ\":%d,\"PROT_WRITE\":%d,\"PROT_EXEC\":%d,\"MAP_SHARED\":%d,\"MAP_PRIVATE\":%d,\"MAP_ANONYMOUS\":%d,",
         PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS);
  printf("\"S_IFMT\":%d,\"S_IFREG\":%d,\"S_IFLNK\":%d,\"CLOCK_REALTIME\":%d,\"CLOCK_MONOTONIC_RAW\":%d,",
         S_IFMT, S_IFREG, S_IFLNK, CLOCK_REALTIME, CLOCK_MONOTONIC_RAW);
  printf("\"PTHREAD_PROCESS_SHARED\":%d,\"PTHREAD_MUTEX_ROBUST\":%d,\"mutexattr\":%zu,\"timespec\":%zu,",
         PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST, sizeof(pthread_mutexattr_t), sizeof(struct timespec));
  printf("\"stat\":{\"size\":%zu,\"ino\":[%zu,%zu],\"mode\":[%zu,%zu],\"nlink\":[%zu,%zu],\"uid\":[%zu,%zu],\"fileSize\":[%zu,%zu]},",
         sizeof(struct stat), offsetof(struct stat, st_ino), sizeof(((struct stat *)0)->st_ino),
         offsetof(struct stat, st_mode), sizeof(((struct stat *)0)->st_mode),
         offsetof(struct stat, st_nlink), sizeof(((struct stat *)0)->st_nlink),
         offsetof(struct stat, st_uid), sizeof(((struct stat *)0)->st_uid),
         offsetof(struct stat, st_size), sizeof(((struct stat *)0)->st_size));
  printf("\"errno\":[\"\"");
  for (int i = 1; i < 134; i++) { const char *n = strerrorname_np(i); printf(",\"%s\"", n ? n : ""); }
  printf("]}\n");
  return 0;
}`,
      "linux-constants",
    );
    const c = JSON.parse(out);
    const arch = HOST_ARCH;
    expect({
      O_RDWR: linux.O_RDWR,
      O_CREAT: linux.O_CREAT,
      O_EXCL: linux.O_EXCL,
      O_CLOEXEC: linux.O_CLOEXEC,
      O_NOFOLLOW: linux.oNoFollow(arch),
      PROT_READ: linux.PROT_READ,
      PROT_WRITE: linux.PROT_WRITE,
      PROT_EXEC: linux.PROT_EXEC,
      MAP_SHARED: linux.MAP_SHARED,
      MAP_PRIVATE: linux.MAP_PRIVATE,
      MAP_ANONYMOUS: linux.MAP_ANONYMOUS,
      S_IFMT: linux.S_IFMT,
      S_IFREG: linux.S_IFREG,
      S_IFLNK: linux.S_IFLNK,
      CLOCK_REALTIME: linux.CLOCK_REALTIME,
      CLOCK_MONOTONIC_RAW: linux.CLOCK_MONOTONIC_RAW,
      PTHREAD_PROCESS_SHARED: linux.PTHREAD_PROCESS_SHARED,
      PTHREAD_MUTEX_ROBUST: linux.PTHREAD_MUTEX_ROBUST,
    }).toEqual(Object.fromEntries(Object.entries(c).filter(([k]) => /^[A-Z]/.test(k))) as never);
    expect(c.mutexattr).toBeLessThanOrEqual(linux.MUTEXATTR_BYTES);
    expect(c.timespec).toBe(linux.TIMESPEC_BYTES);
    const s = linux.statLayout(arch);
    expect(c.stat).toEqual({
      size: s.size,
      ino: [s.ino.offset, s.ino.bytes],
      mode: [s.mode.offset, s.mode.bytes],
      nlink: [s.nlink.offset, s.nlink.bytes],
      uid: [s.uid.offset, s.uid.bytes],
      fileSize: [s.fileSize.offset, s.fileSize.bytes],
    });
    expect(linux.STAT_BUFFER_BYTES).toBeGreaterThanOrEqual(s.size);
    const names = (c.errno as string[]).map((name, n) => (n === 0 ? "" : name === "" ? `E${n}` : name));
    expect(names.slice(1)).toEqual(names.slice(1).map((_, i) => errnoName(i + 1)));
  });
});
