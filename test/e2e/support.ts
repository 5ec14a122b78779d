// Shared pieces of the end-to-end tests: the C reader's view of the region, control messages.

import { buildCReader } from "../support/c.ts";

export interface ShmRecord {
  version: number;
  clock_id: string;
  ip?: string;
  local_time: string;
  offset: string;
  start_time: string;
}

export async function readShm(shmName: string, version: number, extra: string[] = []): Promise<ShmRecord> {
  const reader = await buildCReader();
  const proc = Bun.spawn([reader, shmName, String(version), ...extra], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`shm-reader exited ${code}: ${err}${out}`);
  return JSON.parse(out.trim().split("\n").at(-1)!) as ShmRecord;
}

/** Polls the region until `accept` holds or the time runs out; returns the last record read. */
export async function waitForShm(shmName: string, version: number, accept: (r: ShmRecord) => boolean, timeoutMs = 10_000): Promise<ShmRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: ShmRecord | null = null;
  while (Date.now() < deadline) {
    last = await readShm(shmName, version);
    if (accept(last)) return last;
    await Bun.sleep(100);
  }
  throw new Error(`shared memory never matched; last read ${JSON.stringify(last)}`);
}

export async function sendControl(text: string, port: number, address = "127.0.0.1"): Promise<void> {
  const socket = await Bun.udpSocket({ hostname: address.includes(":") ? "::1" : "127.0.0.1" });
  socket.send(new TextEncoder().encode(text), port, address);
  await Bun.sleep(20);
  socket.close();
}

export const U64 = 1n << 64n;

/** |a − b| for u64 offsets read as decimal strings, treating them as signed 64-bit values. */
export function offsetError(published: string, expected: bigint): bigint {
  const diff = BigInt.asIntN(64, BigInt(published) - expected);
  return diff < 0n ? -diff : diff;
}
