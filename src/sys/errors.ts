// The one error class for failed system calls, and the errno numbers the daemon reacts to.
// Pure: no FFI. Linux uses the same errno numbers on x86_64 and aarch64 (both take them from
// asm-generic/errno-base.h and asm-generic/errno.h); test/sys/libc.test.ts checks the names
// below against glibc's strerrorname_np on the machine the tests run on.

export const EPERM = 1;
export const ENOENT = 2;
/** Also EWOULDBLOCK on Linux. */
export const EAGAIN = 11;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ELOOP = 40;
export const ETIMEDOUT = 110;
export const EOWNERDEAD = 130;
export const ENOTRECOVERABLE = 131;

// Index = errno number; "" where Linux defines no name (41 and 58 are unused).
const ERRNO_NAMES = (
  " EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT" +
  " ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG" +
  " ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY" +
  " ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR" +
  " EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE" +
  " ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG" +
  " ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK" +
  " EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP" +
  " EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET" +
  " ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT" +
  " ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL" +
  " EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED" +
  " EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON"
)
  .split(" ")
  .map((name) => (name === "-" ? "" : name));

/** "EACCES" for 13; "E<n>" for a number with no name. */
export function errnoName(errno: number): string {
  const name = ERRNO_NAMES[errno];
  return name ? name : `E${errno}`;
}

export interface SysErrorOptions {
  /** What the call was applied to, shown in the message: `shm_open("/nqptp")`. */
  subject?: string;
  /** The system's text for the errno (strerror); errno name alone if absent. */
  description?: string;
  /** Replaces the generated message when the daemon itself decided to refuse (not the kernel). */
  message?: string;
}

/**
 * A failed system or pthread call. `call` names the libc function, `errno` is the number the
 * call reported (errno for ordinary calls, the return value for pthread_* calls, which return
 * their error instead of setting errno), `code` its name.
 */
export class SysError extends Error {
  override readonly name = "SysError";
  readonly call: string;
  readonly errno: number;
  readonly code: string;

  constructor(call: string, errno: number, options: SysErrorOptions = {}) {
    const code = errnoName(errno);
    const what = options.subject === undefined ? `${call}()` : `${call}(${options.subject})`;
    const why = options.description ? `${options.description} (${code})` : code;
    super(options.message ?? `${what} failed: ${why}`);
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}
