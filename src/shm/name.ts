// The one rule for shared-memory names: --shm-name, and the client names interfaces 8-10 send
// on the control port (spec section 11). A leading "/", no other "/", 2–63 bytes of UTF-8
// (Shairport Sync copies the name into a 64-byte field), printable characters only: no control
// characters, no spaces, no DEL; not "/." or "/..". Pure.

export const MAX_SHM_NAME_BYTES = 63;

/** Why `name` is not a valid shm name, or null if it is. */
export function checkShmName(name: string): string | null {
  if (name.length === 0) return "the name is empty";
  if (!name.startsWith("/")) return "it must start with /";
  if (name.indexOf("/", 1) !== -1) return "it must not contain a / after the first";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes < 2) return "it needs at least one character after the /";
  if (bytes > MAX_SHM_NAME_BYTES) return `it is ${bytes} bytes long (at most ${MAX_SHM_NAME_BYTES})`;
  if (/[\p{Cc}\p{Cf}\p{Z}\u007f\ufffd]/u.test(name)) return "it holds spaces, control or unprintable characters";
  if (name === "/." || name === "/..") return "it must not be . or ..";
  return null;
}
