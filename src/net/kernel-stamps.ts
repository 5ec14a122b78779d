// Kernel receive times in the interface's local clock, for the two kinds of socket we read:
// - readClockPair(), used with a stamp from SCM_TIMESTAMPNS (event-reader-loop.ts);
// - LastDatagramStamper: a Bun socket's stamp through ioctl(SIOCGSTAMPNS), for the general port
//   and for the event port when SO_TIMESTAMPNS cannot be used.

import { allocateNative } from "../sys/libc.ts";
import { TIMESPEC_BYTES } from "../sys/linux.ts";
import { lastReceiveStamp } from "../sys/posix.ts";
import { monotonicRawNs, readClock, realtimeNs, type LocalClock } from "../time/clocks.ts";
import { stampToLocalClock, type ClockPair } from "./timestamps.ts";

/** Spread of the two realtime reads below which a pair is taken at once (ns). */
const TIGHT_PAIR_NS = 2_000n;
const PAIR_ATTEMPTS = 4;

/**
 * CLOCK_REALTIME, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME, read back to back (~100 ns in all). If the
 * thread was preempted between the reads the midpoint can be off by half the gap, so a loose
 * triple is read again (up to 4 times) and the tightest one kept.
 */
export function readClockPair(): ClockPair {
  let best: ClockPair | null = null;
  for (let attempt = 0; attempt < PAIR_ATTEMPTS; attempt++) {
    const realtimeBeforeNs = realtimeNs();
    const raw = monotonicRawNs();
    const realtimeAfterNs = realtimeNs();
    const pair = { realtimeBeforeNs, monotonicRawNs: raw, realtimeAfterNs };
    if (best === null || pairSpread(pair) < pairSpread(best)) best = pair;
    if (pairSpread(best) <= TIGHT_PAIR_NS) break;
  }
  return best!;
}

/** How far apart the two realtime reads were; a backward step of the clock between them counts as loose. */
function pairSpread(pair: ClockPair): bigint {
  const spread = pair.realtimeAfterNs - pair.realtimeBeforeNs;
  return spread < 0n ? 1n << 62n : spread;
}

/** A CLOCK_REALTIME kernel stamp in `clock`, converted now. */
export function kernelStampToLocal(stampRealtimeNs: bigint, clock: LocalClock): bigint {
  return stampToLocalClock(stampRealtimeNs, clock, clock === "realtime" ? null : readClockPair());
}

/**
 * Reception times for datagrams a Bun socket hands us, from ioctl(SIOCGSTAMPNS): the kernel's
 * time of the LAST datagram read from the socket. Bun reads with recvmmsg(), so when several
 * datagrams were waiting they all get the last one's stamp; that stamp is still no later than
 * the time the callback runs and no earlier than the true arrival, so it is never worse than a
 * clock read in the callback and usually far better (microseconds instead of milliseconds).
 * Do not set SO_TIMESTAMPNS on the same socket: the stamp then goes to control messages Bun
 * never reads and the ioctl fails.
 *
 * The first ioctl turns stamping on and answers ENOENT, so `prime()` is called once right
 * after binding. Any other failure (ENOTTY, ENOPROTOOPT, EINVAL: some kernels and emulators)
 * switches to reading the clock in the callback for good, and is reported once.
 */
export class LastDatagramStamper {
  private readonly timespec = allocateNative(TIMESPEC_BYTES);
  private kernel = true;
  /** How many datagrams got the clock instead of a kernel stamp. */
  softwareStamps = 0;

  constructor(
    private readonly fd: number,
    private readonly clock: LocalClock,
    private readonly readLocalClock: (clock: LocalClock) => bigint = readClock,
    private readonly onUnavailable: (reason: string) => void = () => {},
  ) {}

  /**
   * Turns stamping on for the socket (the first ioctl answers ENOENT by design). Returns the
   * errno name if the kernel refused, and from then on the clock is read instead (not reported:
   * the caller decides what to say).
   */
  prime(): string | null {
    const result = lastReceiveStamp(this.fd, this.timespec);
    if ("ns" in result || result.error === "ENOENT") return null;
    this.kernel = false;
    return `ioctl(SIOCGSTAMPNS) failed with ${result.error}`;
  }

  get usingKernelStamps(): boolean {
    return this.kernel;
  }

  /** The reception time of the datagram just delivered, in the local clock. */
  stamp(): bigint {
    if (this.kernel) {
      const result = lastReceiveStamp(this.fd, this.timespec);
      if ("ns" in result) return kernelStampToLocal(result.ns, this.clock);
      // ENOENT: nothing read since stamping was switched on (only if prime() was skipped).
      if (result.error !== "ENOENT") this.disable(result.error);
    }
    this.softwareStamps++;
    return this.readLocalClock(this.clock);
  }

  private disable(errorName: string): void {
    this.kernel = false;
    this.onUnavailable(`ioctl(SIOCGSTAMPNS) failed with ${errorName}`);
  }
}
