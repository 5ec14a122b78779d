// Shared-memory names: the one rule for `--shm-name` (the daemon's and `nqptp status`'s) and for
// the client names that arrive on the control port (spec section 11). Pure: text in, verdict out.
//
// A name is "/" and then 1 to 62 more bytes of UTF-8, 2 to 63 in all: Shairport Sync copies the
// name into a 64-byte field, its NUL included. No other "/" (shm_open(3)), nothing that is not
// printable (control characters, DEL, invisible format characters), no spaces, and not "/." or
// "/.." (which name directories, not files in /dev/shm).

/** The longest name, in bytes of UTF-8 (the client's 64-byte field less its NUL). */
export const SHM_NAME_MAX_BYTES = 63;

/** What a valid name looks like, for messages. */
export const SHM_NAME_RULE = `"/" and 1 to ${SHM_NAME_MAX_BYTES - 1} more bytes: no other "/", no spaces, nothing unprintable (e.g. "/nqptp")`;

const utf8 = new TextEncoder();

/** C0 and C1 controls and DEL (Cc), separators such as spaces (Z), invisible format characters (Cf). */
const UNPRINTABLE = /[\p{Cc}\p{Z}\p{Cf}]/u;

function codePointText(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Why `name` is not a usable shared-memory name, or null when it is. */
export function checkShmName(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (!name.startsWith("/")) return 'does not begin with "/"';
  if (name.length === 1) return 'is "/" alone: a name follows the "/"';
  if (name.includes("/", 1)) return 'has a "/" after the first character';
  if (name === "/." || name === "/..") return 'is "/." or "/..", which name directories';
  if (!name.isWellFormed()) return "is not valid Unicode (it holds a lone surrogate)";
  const bytes = utf8.encode(name).byteLength;
  if (bytes > SHM_NAME_MAX_BYTES) return `is ${bytes} bytes of UTF-8, more than ${SHM_NAME_MAX_BYTES}`;
  const unprintable = UNPRINTABLE.exec(name);
  if (unprintable) {
    const char = unprintable[0];
    if (/\p{Z}/u.test(char)) return `holds a space (${codePointText(char)})`;
    return `holds an unprintable character (${codePointText(char)})`;
  }
  return null;
}

export type ShmNameResult = { ok: true; value: string } | { ok: false; reason: string };

/** The name itself when it is valid, else why not (the shape of src/cli/args.ts's validators). */
export function parseShmName(text: string): ShmNameResult {
  const reason = checkShmName(text);
  return reason === null ? { ok: true, value: text } : { ok: false, reason };
}
