// How a rate-limited log line says that similar lines were held back before it. One wording for
// both limiters: the shell's (src/util/rate-limit.ts) and the pure tracker's (src/clock/log-limit.ts).
// Pure, no imports.

/** `message (12 similar messages suppressed)`, or `message` itself when none were. */
export function withSuppressedCount(message: string, suppressed: number): string {
  return suppressed > 0 ? `${message} (${suppressed} similar messages suppressed)` : message;
}
