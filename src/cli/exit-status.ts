// Every exit status of every command (the daemon, `status`, `install`, `uninstall`), written once.
// The failures are sysexits(3) values, so a systemd unit or a script can tell a configuration
// mistake from a transient failure; `nqptp status` adds the two LSB init-script answers (Linux
// Standard Base, "status" action) for a daemon that is stale or not running. src/errors.ts maps
// each NqptpError code onto this table; the commands return its entries. test/cli/exit-status.test.ts
// checks the sysexits values against <sysexits.h> from the C compiler.

export const EXIT = {
  /** EX_OK: done. */
  ok: 0,
  /** `nqptp status`: the record is older than --stale-after. */
  stale: 1,
  /** `nqptp status`: the daemon is not running or does not answer (LSB: "program is not running"). */
  notRunning: 3,
  /** EX_USAGE: unknown option, bad value, stray argument. */
  usage: 64,
  /** EX_UNAVAILABLE: a port in use, an unsupported platform, run from source, no interface for this shairport-sync. */
  unavailable: 69,
  /** EX_SOFTWARE: a bug (an unexpected error during start-up, an uncaught one after it). */
  software: 70,
  /** EX_OSERR: a socket or shared memory failure, useradd or systemctl failed. */
  osError: 71,
  /** EX_CANTCREAT: a file install did not put there is in the way (--force replaces it). */
  cantCreate: 73,
  /** EX_IOERR: reading or writing a file failed. */
  ioError: 74,
  /** EX_NOPERM: a privileged port without root or CAP_NET_BIND_SERVICE; install or uninstall not as root. */
  noPermission: 77,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];
