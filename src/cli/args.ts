// How every command reads its command line (the daemon, `status`, `install`, `uninstall`): a
// citty ArgsDef declares the options and renders --help; parseCommandLine reads the arguments
// strictly against it; the validators below turn option values into typed values, all with one
// message style. Pure: no process.argv, no output, no network.
//
// Strict means: an unknown option or a stray argument is an error, a value option needs a value
// (`--name value` or `--name=value`; the next argument is not taken as the value when it is
// itself an option: write `--name=-x` for a value that starts with "-"), a flag takes none, and
// a value option given twice is an error rather than a silent choice between the two.

import type { ArgDef, ArgsDef } from "citty";
import { INTERFACE_VERSIONS, isInterfaceVersion, type InterfaceVersion } from "../rules/interface-version.ts";
import { parseAddress } from "../rules/ip-address.ts";
import { SHM_NAME_RULE, checkShmName } from "../rules/shm-name.ts";
import { IFNAMSIZ } from "../sys/linux.ts";

/** What every command prints on stderr for a bad command line, before exiting EXIT.usage (src/cli/exit-status.ts). */
export function usageError(command: string, message: string): string {
  return `${command}: ${message}\nTry "${command} --help".`;
}

// ---------------------------------------------------------------------------------------------
// Validators: text → value, or the reason it is refused (a phrase about the value: the caller
// writes `--option: "value" <reason>`).

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };
export type Validator<T> = (text: string) => Parsed<T>;

function accept<T>(value: T): Parsed<T> {
  return { ok: true, value };
}
function refuse(reason: string): Parsed<never> {
  return { ok: false, reason };
}

/** A whole number written in decimal digits only (no sign, exponent, point or space). */
export function integerIn(min: number, max: number, what = `a whole number ${min}-${max}`): Validator<number> {
  return (text) => {
    if (!/^[0-9]+$/.test(text)) return refuse(`is not ${what}`);
    const n = Number(text);
    return n >= min && n <= max ? accept(n) : refuse(`is not ${what}`);
  };
}

/** A UDP port, 1-65535, in digits ("1e3" and "0x50" are refused). */
export const parsePort: Validator<number> = integerIn(1, 65535, "a port number 1-65535");

/** A non-negative number of seconds: digits, optionally a decimal point and more digits. */
export const parseSeconds: Validator<number> = (text) => {
  const n = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || !Number.isFinite(n)) return refuse("is not a number of seconds (such as 5 or 0.5)");
  return accept(n);
};

/** One of the interface versions this build serves (src/rules/interface-version.ts says which). */
export const parseInterfaceVersion: Validator<InterfaceVersion> = (text) => {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !isInterfaceVersion(n)) return refuse(`is not one of ${INTERFACE_VERSIONS.join(", ")}`);
  return accept(n);
};

/** One IP address (v4 or v6), in its canonical text. */
export const parseIpAddress: Validator<string> = (text) => {
  const address = parseAddress(text);
  return address ? accept(address.text) : refuse("is not an IP address");
};

/** One or more IP addresses separated by commas: canonical text, each once, in the order given. */
export const parseIpAddressList: Validator<string[]> = (text) => {
  const out: string[] = [];
  for (const word of text.split(",")) {
    if (word === "") continue;
    const address = parseAddress(word);
    if (!address) return refuse(`holds ${JSON.stringify(word)}, which is not an IP address`);
    if (!out.includes(address.text)) out.push(address.text);
  }
  return out.length > 0 ? accept(out) : refuse("names no address");
};

/** A POSIX shared-memory name, by the one rule of src/rules/shm-name.ts. */
export const parseShmNameOption: Validator<string> = (text) => {
  const reason = checkShmName(text);
  return reason === null ? accept(text) : refuse(`${reason}; a name is ${SHM_NAME_RULE}`);
};

/**
 * A network interface name, refused where the kernel refuses it: dev_valid_name() in
 * net/core/dev.c (1 to IFNAMSIZ - 1 = 15 bytes, not "." or "..", no "/", ":" or white space,
 * where the kernel's isspace() also counts byte 0xA0), "%" (the kernel reads a name with one as
 * a pattern such as "eth%d", so no interface is named so), and "all" and "default" (the
 * names of the per-interface sysctl directories: the kernel refuses them as interface names).
 */
export const parseInterfaceName: Validator<string> = (text) => {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length >= IFNAMSIZ) return refuse(`is ${bytes.length} bytes long; an interface name is at most ${IFNAMSIZ - 1}`);
  if (text === "." || text === ".." || text === "all" || text === "default") return refuse("cannot be an interface name");
  const bad = [...text].find((c) => c === "/" || c === ":" || c === "%" || /^[\t\n\v\f\r \0]$/.test(c));
  if (bad !== undefined) return refuse(`holds ${JSON.stringify(bad)}, which an interface name cannot hold`);
  // U+00A0 is C2 A0 in UTF-8, and any character whose UTF-8 has an A0 byte (à, Ā...) holds it too.
  if (bytes.includes(0xa0)) return refuse("holds byte 0xA0 (which the kernel counts as white space), so it cannot be an interface name");
  return accept(text);
};

/** Exactly one of `choices`. */
export function oneOf<const T extends string>(choices: readonly T[]): Validator<T> {
  return (text) => ((choices as readonly string[]).includes(text) ? accept(text as T) : refuse(`is not one of ${choices.join(", ")}`));
}

// ---------------------------------------------------------------------------------------------
// The strict parser

/** What was given on a command line, checked against its ArgsDef. */
export interface CommandLine {
  /** The raw value of a value option (the first, for a repeatable one), or undefined when it was not given. */
  value(name: string): string | undefined;
  /** Whether a flag (a boolean option) was given. */
  flag(name: string): boolean;
  /** How often a flag was given: `-vv -v` counts 3. */
  count(name: string): number;
  /**
   * The value of option `name` through `validate`; `fallback` when the option was not given,
   * and also when it was refused: then `error` says why (the first refusal is kept).
   */
  take<T, F = T>(name: string, validate: Validator<T>, fallback: F): T | F;
  /**
   * Every value of a repeatable option through `validate`, in the order given, each once
   * (empty when it was not given); a refusal sets `error` as `take` does.
   */
  takeEach<T>(name: string, validate: Validator<T>): T[];
  /** The first refusal of a `take`, as `--name: "value" reason`; null while all were accepted. */
  readonly error: string | null;
}

export type CommandLineResult = { ok: true; line: CommandLine } | { ok: false; reason: string };

function takesValue(def: ArgDef): boolean {
  return def.type === "string" || def.type === "enum";
}

function aliasesOf(def: ArgDef): string[] {
  const alias = (def as { alias?: string | string[] }).alias;
  return alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
}

/**
 * `--name value`, `--name=value`, `--flag`, `-f`, `-ff` (flags only); anything else is refused.
 * The value options named in `repeatable` may be given more than once (`-i eth0 -i wlan0`).
 */
export function parseCommandLine(rawArgs: readonly string[], defs: ArgsDef, repeatable: readonly string[] = []): CommandLineResult {
  const long = new Map<string, string>();
  const short = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue; // none of our commands takes one
    long.set(`--${name}`, name);
    for (const alias of aliasesOf(def)) short.set(alias.length === 1 ? `-${alias}` : `--${alias}`, name);
  }
  const lookup = (spelled: string) => long.get(spelled) ?? short.get(spelled);

  const values = new Map<string, string[]>();
  const counts = new Map<string, number>();
  const countFlag = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1);
  const fail = (reason: string): CommandLineResult => ({ ok: false, reason });

  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (!arg.startsWith("-") || arg === "-" || arg === "--") return fail(`unexpected argument ${JSON.stringify(arg)}`);

    if (!arg.startsWith("--") && !arg.includes("=") && arg.length > 2) {
      // A cluster of one-letter flags: -vv, -vV.
      for (const letter of arg.slice(1)) {
        const name = lookup(`-${letter}`);
        if (name === undefined) return fail(`unknown option ${JSON.stringify(`-${letter}`)} (in ${JSON.stringify(arg)})`);
        if (takesValue(defs[name]!)) return fail(`option -${letter} takes a value, so it cannot be grouped (in ${JSON.stringify(arg)})`);
        countFlag(name);
      }
      continue;
    }

    const eq = arg.indexOf("=");
    const spelled = eq > 0 ? arg.slice(0, eq) : arg;
    const name = lookup(spelled);
    if (name === undefined) return fail(`unknown option ${JSON.stringify(spelled)}`);
    if (!takesValue(defs[name]!)) {
      if (eq > 0) return fail(`option ${spelled} takes no value`);
      countFlag(name);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = rawArgs[i + 1];
      if (next !== undefined && !(next.startsWith("-") && next.length > 1)) {
        value = next;
        i++;
      }
    }
    if (value === undefined || value === "") return fail(`option ${spelled} needs a value`);
    const given = values.get(name);
    if (given !== undefined && !repeatable.includes(name)) return fail(`option --${name} is given twice`);
    values.set(name, [...(given ?? []), value]);
  }

  return { ok: true, line: commandLine(values, counts) };
}

/** The accessors over what parseCommandLine read: raw values (in order) and flag counts. */
function commandLine(values: ReadonlyMap<string, string[]>, counts: ReadonlyMap<string, number>): CommandLine {
  let error: string | null = null;
  return {
    value: (name) => values.get(name)?.[0],
    flag: (name) => (counts.get(name) ?? 0) > 0,
    count: (name) => counts.get(name) ?? 0,
    take<T, F>(name: string, validate: Validator<T>, fallback: F): T | F {
      const text = values.get(name)?.[0];
      if (text === undefined) return fallback;
      const parsed = validate(text);
      if (parsed.ok) return parsed.value;
      error ??= `--${name}: ${JSON.stringify(text)} ${parsed.reason}`;
      return fallback;
    },
    takeEach<T>(name: string, validate: Validator<T>): T[] {
      const out: T[] = [];
      for (const text of values.get(name) ?? []) {
        const parsed = validate(text);
        if (!parsed.ok) {
          error ??= `--${name}: ${JSON.stringify(text)} ${parsed.reason}`;
          return [];
        }
        if (!out.includes(parsed.value)) out.push(parsed.value);
      }
      return out;
    },
    get error() {
      return error;
    },
  };
}
