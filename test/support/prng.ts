// A small seeded pseudo-random generator for tests: the same seed gives the same sequence on
// every machine, so a failing fuzz case can be replayed. Not for anything security-related.
//
// The core is mulberry32 (a 32-bit state advanced by a Weyl sequence, then mixed): fast, passes
// the usual smoke tests, and more than enough to shake a decoder.

export interface Prng {
  /** Uniform unsigned 32-bit integer. */
  u32(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [min, max] (inclusive both ends). */
  int(min: number, max: number): number;
  /** `length` uniform octets. */
  bytes(length: number): Uint8Array;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

export function createPrng(seed: number): Prng {
  let state = seed >>> 0;

  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const float = (): number => u32() / 0x1_0000_0000;
  const int = (min: number, max: number): number => min + Math.floor(float() * (max - min + 1));

  return {
    u32,
    float,
    int,
    bytes(length: number): Uint8Array {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i += 4) {
        let word = u32();
        for (let j = i; j < Math.min(i + 4, length); j++) {
          out[j] = word & 0xff;
          word >>>= 8;
        }
      }
      return out;
    },
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError("pick from an empty array");
      return items[int(0, items.length - 1)] as T;
    },
  };
}
