// One error class for everything the daemon reports to the person who started it, with a
// stable code and the process exit status that goes with it (from the one table of exit
// statuses, src/cli/exit-status.ts).

import { EXIT, type ExitStatus } from "./cli/exit-status.ts";

export type ErrorCode =
  /** Bad command line or option value. */
  | "usage"
  /** Binding a privileged port without root or CAP_NET_BIND_SERVICE. */
  | "bind-permission"
  /** The port is taken (often by ptp4l or another nqptp). */
  | "bind-in-use"
  /** Any other socket failure. */
  | "bind-failed"
  /** Shared memory could not be created, refused (not ours), or mapped. */
  | "shm"
  /** The platform is not one we can lay the shared memory out for. */
  | "unsupported-platform";

const EXIT_STATUS: Record<ErrorCode, ExitStatus> = {
  usage: EXIT.usage,
  "bind-permission": EXIT.noPermission,
  "bind-in-use": EXIT.unavailable,
  "bind-failed": EXIT.osError,
  shm: EXIT.osError,
  "unsupported-platform": EXIT.unavailable,
};

export class NqptpError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NqptpError";
    this.code = code;
  }
  get exitStatus(): ExitStatus {
    return EXIT_STATUS[this.code];
  }
}
