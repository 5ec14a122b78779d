// The PTP master simulator (ptp-master.ts) as a program of its own, for a network namespace the
// test process is not in:
//
//   bun test/support/ptp-master-process.ts '{"address":"192.0.2.2","target":"192.0.2.1",...}'
//
// The options are MasterOptions as JSON, bigints as decimal strings, and "clock" is
// "monotonic-raw" or "realtime". It prints "ready" once its sockets are bound and stops on
// SIGTERM or SIGINT.

import { monotonicRawNs, realtimeNs } from "../../src/time/clocks.ts";
import { startPtpMaster, type MasterOptions } from "./ptp-master.ts";

export const PTP_MASTER_PROCESS = import.meta.path;

export interface MasterProcessOptions {
  address: string;
  target: string;
  eventPort: number;
  generalPort: number;
  clockIdentity: string;
  grandmasterIdentity: string;
  offsetNs: string;
  clock: "monotonic-raw" | "realtime";
}

/** The argument for this program: the options as JSON. */
export function masterProcessArgument(options: MasterProcessOptions): string {
  return JSON.stringify(options);
}

if (import.meta.main) {
  const given = JSON.parse(process.argv[2] ?? "{}") as MasterProcessOptions;
  const options: MasterOptions = {
    address: given.address,
    target: given.target,
    eventPort: given.eventPort,
    generalPort: given.generalPort,
    clockIdentity: BigInt(given.clockIdentity),
    grandmasterIdentity: BigInt(given.grandmasterIdentity),
    offsetNs: BigInt(given.offsetNs),
    clock: given.clock === "realtime" ? realtimeNs : monotonicRawNs,
  };
  const master = await startPtpMaster(options);
  const stop = () => {
    master.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  console.log("ready");
}
