// One error class for everything the daemon reports to the person who started it, with a
// stable code and the process exit status that goes with it (sysexits(3) values, so a systemd
// unit can tell a configuration mistake from a transient failure).

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

const EXIT_STATUS: Record<ErrorCode, number> = {
  usage: 64, // EX_USAGE
  "bind-permission": 77, // EX_NOPERM
  "bind-in-use": 69, // EX_UNAVAILABLE
  "bind-failed": 71, // EX_OSERR
  shm: 71, // EX_OSERR
  "unsupported-platform": 69, // EX_UNAVAILABLE
};

export class NqptpError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NqptpError";
    this.code = code;
  }
  get exitStatus(): number {
    return EXIT_STATUS[this.code];
  }
}
