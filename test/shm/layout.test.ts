// The shm layout table against the C compiler, on the architecture the test runs on.
// The structs below are declared the way a C client declares them (the seed README's struct for
// version 5; the same without `flags` for 8 and 9; nested records for 10), independently of the
// TypeScript field lists, and the compiler reports every offsetof and sizeof.

import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { INTERFACE_VERSIONS, type InterfaceVersion } from "../../src/rules/interface-version.ts";
import { layoutFor } from "../../src/shm/layouts.ts";
import { isSupportedArch } from "../../src/sys/linux.ts";
import { compileAndRun } from "../support/c.ts";

// bunfig.toml's [test] timeout is not applied by Bun 1.4.5 (tests stop at the 5 s default), and
// these tests compile C and run child processes: give them room, also on slow or emulated CPUs.
setDefaultTimeout(30_000);

const C_SOURCE = String.raw`
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Versions 5 and 6, as in the seed README. */
struct shm_structure {
  pthread_mutex_t shm_mutex; // for safely accessing the structure
  uint16_t version;          // check this is equal to NQPTP_SHM_STRUCTURES_VERSION
  uint32_t flags;            // unused
  uint64_t master_clock_id;  // the current master clock
  char master_clock_ip[64];  // the IP of the current master clock
  uint64_t local_time;       // the time when the offset was calculated
  uint64_t local_to_master_time_offset; // add this to the local time to get master clock time
  uint64_t master_clock_start_time;     // this is when the master clock became master
};

/* Versions 8 and 9 (Shairport Sync 4.1, 4.2). */
struct shm_structure_8 {
  pthread_mutex_t shm_mutex;
  uint16_t version;
  uint64_t master_clock_id;
  char master_clock_ip[64];
  uint64_t local_time;
  uint64_t local_to_master_time_offset;
  uint64_t master_clock_start_time;
};

/* Version 10 (Shairport Sync 4.3 and later). */
struct shm_basic_structure {
  uint64_t master_clock_id;
  uint64_t local_time;
  uint64_t local_to_master_time_offset;
  uint64_t master_clock_start_time;
};

struct shm_structure_10 {
  uint16_t version;
  struct shm_basic_structure main;
  struct shm_basic_structure secondary;
};

static int first;
#define BEGIN(S) printf("%s\"" #S "\":{\"size\":%zu,\"fields\":{", first ? "" : ",", sizeof(struct S)); first = 1;
#define FIELD(S, M) printf("%s\"" #M "\":[%zu,%zu]", first ? "" : ",", offsetof(struct S, M), sizeof(((struct S *)0)->M)); first = 0;
#define END() printf("}}"); first = 0;

int main(void) {
  printf("{");
  first = 1;
  BEGIN(shm_structure)
  FIELD(shm_structure, shm_mutex) FIELD(shm_structure, version) FIELD(shm_structure, flags)
  FIELD(shm_structure, master_clock_id) FIELD(shm_structure, master_clock_ip)
  FIELD(shm_structure, local_time) FIELD(shm_structure, local_to_master_time_offset)
  FIELD(shm_structure, master_clock_start_time)
  END()
  BEGIN(shm_structure_8)
  FIELD(shm_structure_8, shm_mutex) FIELD(shm_structure_8, version)
  FIELD(shm_structure_8, master_clock_id) FIELD(shm_structure_8, master_clock_ip)
  FIELD(shm_structure_8, local_time) FIELD(shm_structure_8, local_to_master_time_offset)
  FIELD(shm_structure_8, master_clock_start_time)
  END()
  BEGIN(shm_structure_10)
  FIELD(shm_structure_10, version)
  FIELD(shm_structure_10, main.master_clock_id) FIELD(shm_structure_10, main.local_time)
  FIELD(shm_structure_10, main.local_to_master_time_offset) FIELD(shm_structure_10, main.master_clock_start_time)
  FIELD(shm_structure_10, secondary.master_clock_id) FIELD(shm_structure_10, secondary.local_time)
  FIELD(shm_structure_10, secondary.local_to_master_time_offset) FIELD(shm_structure_10, secondary.master_clock_start_time)
  END()
  printf("}\n");
  return 0;
}
`;

type CLayouts = Record<string, { size: number; fields: Record<string, [number, number]> }>;

const C_STRUCT_FOR: Record<InterfaceVersion, string> = {
  5: "shm_structure",
  6: "shm_structure",
  8: "shm_structure_8",
  9: "shm_structure_8",
  10: "shm_structure_10",
};

let compiled: Promise<CLayouts> | null = null;
const cLayouts = () => (compiled ??= compileAndRun(C_SOURCE, "shm-layout").then((out) => JSON.parse(out) as CLayouts));

describe(`shm layouts on ${process.arch} agree with the C compiler`, () => {
  test("this architecture is one we have layouts for", () => {
    expect(isSupportedArch(process.arch)).toBe(true);
  });

  for (const version of INTERFACE_VERSIONS) {
    test(`interface version ${version}: size, and offset and size of every field`, async () => {
      const c = (await cLayouts())[C_STRUCT_FOR[version]];
      expect(c).toBeDefined();
      if (!c || !isSupportedArch(process.arch)) return;
      const ours = layoutFor(version, process.arch);
      expect(ours.size).toBe(c.size);
      const oursByPath = Object.fromEntries(ours.fields.map((f) => [f.path, [f.offset, f.size]]));
      expect(oursByPath).toEqual(c.fields);
      if (version === 10) {
        expect(ours.mutex).toBeNull();
      } else {
        expect(ours.mutex).toEqual({ offset: c.fields.shm_mutex![0], size: c.fields.shm_mutex![1] });
      }
    });
  }
});

describe("layout table", () => {
  test("modes and clocks per version", () => {
    const arch = isSupportedArch(process.arch) ? process.arch : "x64";
    const summary = INTERFACE_VERSIONS.map((v) => [v, layoutFor(v, arch).mode.toString(8), layoutFor(v, arch).localClock]);
    expect(summary).toEqual([
      [5, "666", "realtime"],
      [6, "666", "monotonic-raw"],
      [8, "666", "monotonic-raw"],
      [9, "666", "monotonic-raw"],
      [10, "644", "monotonic-raw"],
    ]);
  });

  // The other architecture cannot be compiled here; these are the values its compiler gives
  // (pthread_mutex_t is 48 bytes on aarch64 glibc, 40 on x86_64).
  test("the mutex size moves every later field on arm64", () => {
    const fieldsOf = (v: InterfaceVersion, arch: "x64" | "arm64") => Object.fromEntries(layoutFor(v, arch).fields.map((f) => [f.path, f.offset]));
    expect(layoutFor(5, "x64").size).toBe(144);
    expect(layoutFor(5, "arm64").size).toBe(152);
    expect(fieldsOf(5, "arm64")).toMatchObject({ version: 48, flags: 52, master_clock_id: 56, master_clock_ip: 64, local_time: 128 });
    expect(fieldsOf(9, "arm64")).toMatchObject({ version: 48, master_clock_id: 56, master_clock_start_time: 144 });
    expect(layoutFor(10, "arm64")).toMatchObject({ size: 72, mutex: null });
  });

  test("unknown versions and architectures are refused", () => {
    expect(() => layoutFor(7 as InterfaceVersion, "x64")).toThrow(/unknown shared-memory interface version 7/);
    expect(() => layoutFor(5, "ia32" as "x64")).toThrow(/unknown architecture "ia32"/);
  });
});
