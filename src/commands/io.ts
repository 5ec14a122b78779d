// Where a subcommand's words go: stdout and stderr, one line per call. Commands take an Io, so
// their tests run them in-process and read what they said.

export interface Io {
  /** Writes `text` and a newline to standard output. */
  out(text: string): void;
  /** Writes `text` and a newline to standard error. */
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};
