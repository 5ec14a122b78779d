// What `nqptp install` and `nqptp uninstall` should do, decided from facts the shell gathered
// (hashes, what is at the targets, whether systemd runs). Pure: the shell in install.ts carries
// the actions out, in order, and prints what they say.

import { DEFAULT_INTERFACE_VERSION, INTERFACE_VERSIONS, type InterfaceVersion } from "../rules/interface-version.ts";
import { EXIT } from "../cli/exit-status.ts";
import { UNIT_MARKER_PREFIX, type ServiceAccount } from "./unit-file.ts";

// ---------------------------------------------------------------------------------------------
// Which interface version: `shairport-sync -V`

export type ShairportVersionReading =
  /** A build tag `smiN` naming an interface this nqptp serves. */
  | { kind: "smi"; tag: string; version: InterfaceVersion }
  /** A `smiN` this nqptp does not serve (a newer Shairport Sync). */
  | { kind: "unsupported-smi"; tag: string }
  /** More than one `smiN`, disagreeing. */
  | { kind: "conflicting-smi"; tags: string[] }
  /**
   * An AirPlay 2 build from before the tags, which came with 4.2: 4.1 and 4.1.1 (and their release
   * candidates) read interface 8; the development builds before them, 5.
   */
  | { kind: "airplay2-without-smi"; version: InterfaceVersion }
  /** No "AirPlay2": a classic AirPlay build, which does not read nqptp's shared memory at all. */
  | { kind: "not-airplay2" };

/**
 * Reads the build tags of `shairport-sync -V`, e.g. `4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc`.
 * Tags are separated by "-" (or white space); everything from `sysconfdir:` to the end of the line is
 * a path, so a directory named smi9 there means nothing. Case does not matter.
 */
export function interfaceVersionFromShairportVersion(text: string): ShairportVersionReading {
  const tags: string[] = [];
  let versionLine: string[] = [];
  for (const line of text.split("\n")) {
    const lineTags: string[] = [];
    for (const token of line.split(/[-\s]+/)) {
      if (/^sysconfdir:/i.test(token)) break;
      if (token !== "") lineTags.push(token.toLowerCase());
    }
    if (lineTags.includes("airplay2") && versionLine.length === 0) versionLine = lineTags;
    tags.push(...lineTags);
  }
  const smi = [...new Set(tags.filter((t) => /^smi[0-9]+$/.test(t)).map((t) => `smi${Number(t.slice(3))}`))];
  if (smi.length > 1) return { kind: "conflicting-smi", tags: smi };
  if (smi.length === 1) {
    const tag = smi[0]!;
    const n = Number(tag.slice(3));
    const version = INTERFACE_VERSIONS.find((v) => v === n);
    return version === undefined ? { kind: "unsupported-smi", tag } : { kind: "smi", tag, version };
  }
  if (tags.includes("airplay2")) return { kind: "airplay2-without-smi", version: isShairportSync41(versionLine) ? 8 : 5 };
  return { kind: "not-airplay2" };
}

/**
 * 4.1, 4.1.1 or a 4.1 release candidate ("4.1-rc5"): the version comes first on the line, and a
 * git build says "4.1-dev-…" (a development build from before 4.1 read interface 5).
 */
function isShairportSync41(versionLine: readonly string[]): boolean {
  return /^4\.1(\.\d+)?$/.test(versionLine[0] ?? "") && versionLine[1] !== "dev";
}

export type ShairportProbe =
  | { kind: "not-found"; looked: string }
  | { kind: "failed"; path: string; reason: string }
  | { kind: "ran"; path: string; output: string };

export type InterfaceChoice = { ok: true; version: InterfaceVersion; explanation: string } | { ok: false; message: string };

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

/** The version given on the command line wins; otherwise what shairport-sync says; otherwise the default. */
export function chooseInterfaceVersion(given: InterfaceVersion | null, probe: ShairportProbe | null): InterfaceChoice {
  if (given !== null) return { ok: true, version: given, explanation: `interface version ${given} (given with --interface-version)` };
  const fallback = DEFAULT_INTERFACE_VERSION;
  if (probe === null || probe.kind === "not-found") {
    const where = probe ? ` (looked for ${probe.looked})` : "";
    return {
      ok: true,
      version: fallback,
      explanation: `no shairport-sync found${where}: using the default interface version ${fallback}; pass --interface-version or --shairport-sync PATH to choose`,
    };
  }
  if (probe.kind === "failed") {
    return {
      ok: true,
      version: fallback,
      explanation: `could not run ${probe.path} -V (${probe.reason}): using the default interface version ${fallback}; pass --interface-version to choose`,
    };
  }
  const said = `${probe.path} -V says ${JSON.stringify(firstLine(probe.output))}`;
  const reading = interfaceVersionFromShairportVersion(probe.output);
  switch (reading.kind) {
    case "smi":
      return { ok: true, version: reading.version, explanation: `${said}: ${reading.tag}, so interface version ${reading.version}` };
    case "airplay2-without-smi":
      return {
        ok: true,
        version: reading.version,
        explanation:
          reading.version === 8
            ? `${said}: Shairport Sync 4.1 (no smi tag: those came with 4.2), so interface version 8`
            : `${said}: AirPlay 2 without an smi tag (a development build from before 4.1), so interface version ${reading.version}`,
      };
    case "not-airplay2":
      return {
        ok: true,
        version: fallback,
        explanation: `${said}: not an AirPlay 2 build, so it does not use nqptp; using the default interface version ${fallback}`,
      };
    case "unsupported-smi":
      return {
        ok: false,
        message: `${said}: it needs shared memory interface ${reading.tag.slice(3)} (${reading.tag}), which this nqptp does not serve (it serves ${INTERFACE_VERSIONS.join(", ")}). Install a newer nqptp, or pass --interface-version to install anyway.`,
      };
    case "conflicting-smi":
      return { ok: false, message: `${said}: it carries ${reading.tags.join(" and ")}; pass --interface-version to choose` };
  }
}

// ---------------------------------------------------------------------------------------------
// Install

/** What is at a target path (lstat: a symbolic link is not followed). A regular file carries F. */
export type Target<F> =
  | { kind: "missing" }
  | ({ kind: "file"; mode: number } & F)
  /** A symbolic link: install --force replaces the link itself, never what it points to; uninstall leaves it. */
  | { kind: "link"; to: string }
  /** A directory, device, socket…: never replaced. */
  | { kind: "other"; what: string };

export interface InstallFacts {
  /** "/" or the staging directory given with --root. */
  root: string;
  force: boolean;
  binaryPath: string;
  /** SHA-256 of this executable. */
  selfSha256: string;
  /** The target binary; a regular file carries its SHA-256. */
  binary: Target<{ sha256: string }>;
  unitPath: string;
  /** The unit we would write. */
  unitText: string;
  /** The unit at the target; a regular file carries its text and whether it has our marker. */
  unit: Target<{ text: string; ours: boolean }>;
  account: ServiceAccount;
  /** `getent passwd NAME` found the account; null when not looked up. */
  userExists: boolean | null;
  /** Installing into "/" on a machine where systemd is PID 1 (/run/systemd/system exists). */
  systemdRunning: boolean;
}

export type InstallAction =
  | { kind: "copy-binary"; path: string; replacing: boolean }
  | { kind: "set-mode"; path: string; mode: number }
  | { kind: "write-unit"; path: string; text: string; replacing: "none" | "ours" | "foreign" }
  | { kind: "create-user"; name: string }
  | { kind: "daemon-reload" }
  | { kind: "say"; text: string };

export type Plan<A> = { ok: true; actions: A[] } | { ok: false; status: number; message: string };

export const BINARY_MODE = 0o755;
export const UNIT_MODE = 0o644;

export const modeText = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

function reloadOrTell(facts: { root: string; systemdRunning: boolean }, changed: boolean): InstallAction[] {
  if (!changed) return [];
  if (facts.systemdRunning) return [{ kind: "daemon-reload" }];
  if (facts.root !== "/")
    return [
      { kind: "say", text: `systemd: not reloaded (under --root ${facts.root}); on the system that runs from it: sudo systemctl daemon-reload` },
    ];
  return [{ kind: "say", text: "systemd: not running here (no /run/systemd/system), so not reloaded; once it runs: sudo systemctl daemon-reload" }];
}

export function planInstall(facts: InstallFacts): Plan<InstallAction> {
  const { binary, unit, force } = facts;
  const refusals: string[] = [];
  if (binary.kind === "other") refusals.push(`${facts.binaryPath} is ${binary.what}`);
  if (binary.kind === "link" && !force)
    refusals.push(`${facts.binaryPath} is a symbolic link to ${binary.to}: pass --force to replace the link with this nqptp`);
  if (binary.kind === "file" && binary.sha256 !== facts.selfSha256 && !force) {
    refusals.push(
      `${facts.binaryPath} is a different file (SHA-256 ${binary.sha256.slice(0, 12)}…, this nqptp's is ${facts.selfSha256.slice(0, 12)}…): pass --force to replace it`,
    );
  }
  if (unit.kind === "other") refusals.push(`${facts.unitPath} is ${unit.what}`);
  if (unit.kind === "link" && !force) refusals.push(`${facts.unitPath} is a symbolic link to ${unit.to}: pass --force to replace it`);
  if (unit.kind === "file" && !unit.ours && !force) {
    refusals.push(`${facts.unitPath} was not installed by nqptp (no "${UNIT_MARKER_PREFIX.trim()}" line): pass --force to replace it`);
  }
  if (refusals.length > 0) return { ok: false, status: EXIT.cantCreate, message: `nothing changed:\n  ${refusals.join("\n  ")}` };

  const actions: InstallAction[] = [];
  let binaryChanged = false;
  if (binary.kind === "file" && binary.sha256 === facts.selfSha256) {
    actions.push({ kind: "say", text: `binary: already installed at ${facts.binaryPath} (same SHA-256)` });
    if ((binary.mode & 0o7777) !== BINARY_MODE) actions.push({ kind: "set-mode", path: facts.binaryPath, mode: BINARY_MODE });
  } else {
    actions.push({ kind: "copy-binary", path: facts.binaryPath, replacing: binary.kind !== "missing" });
    binaryChanged = true;
  }

  let unitChanged = false;
  if (unit.kind === "file" && unit.ours && unit.text === facts.unitText) {
    actions.push({ kind: "say", text: `unit: already installed at ${facts.unitPath} (unchanged)` });
    if ((unit.mode & 0o7777) !== UNIT_MODE) actions.push({ kind: "set-mode", path: facts.unitPath, mode: UNIT_MODE });
  } else {
    const replacing = unit.kind === "missing" ? "none" : unit.kind === "file" && unit.ours ? "ours" : "foreign";
    actions.push({ kind: "write-unit", path: facts.unitPath, text: facts.unitText, replacing });
    unitChanged = true;
  }

  actions.push(...accountActions(facts));
  actions.push(...reloadOrTell(facts, unitChanged));

  const next: string[] = [];
  if (facts.root !== "/") next.push(`next, on the system that runs from ${facts.root}:`);
  else next.push("next:");
  next.push("  sudo systemctl enable --now nqptp");
  if (binaryChanged || unitChanged) next.push("  sudo systemctl restart nqptp          (if it was already running, so the new version runs)");
  next.push("  sudo systemctl restart shairport-sync");
  actions.push({ kind: "say", text: next.join("\n") });
  return { ok: true, actions };
}

function accountActions(facts: InstallFacts): InstallAction[] {
  const account = facts.account;
  switch (account.kind) {
    case "dynamic":
      return [{ kind: "say", text: "user: none needed (the unit has DynamicUser=yes: systemd allocates one each time nqptp starts)" }];
    case "root":
      return [{ kind: "say", text: "user: none needed (the unit runs nqptp as root)" }];
    case "uid":
      return [{ kind: "say", text: `user: the unit runs nqptp as uid ${account.uid}; not creating an account for a number` }];
    case "user": {
      const useradd = `useradd --system --no-create-home --shell /usr/sbin/nologin ${account.name}`;
      if (facts.root !== "/")
        return [{ kind: "say", text: `user: not created under --root; on the system that runs from ${facts.root}: sudo ${useradd}` }];
      if (facts.userExists) return [{ kind: "say", text: `user: ${account.name} exists` }];
      return [{ kind: "create-user", name: account.name }];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Uninstall

/** Whether the file at the binary's place is an nqptp built from this project (install.ts: identifyBinary). */
export type BinaryIdentity = "nqptp-build" | "not-nqptp";

export interface UninstallFacts {
  root: string;
  binaryPath: string;
  binary: Target<{ identity: BinaryIdentity }>;
  unitPath: string;
  unit: Target<{ ours: boolean }>;
  /** Enablement links of our unit that exist (absolute paths), from its [Install] section. */
  links: string[];
  systemdRunning: boolean;
}

export type UninstallAction =
  | { kind: "disable-now" }
  | { kind: "remove"; path: string; what: string }
  | { kind: "daemon-reload" }
  | { kind: "say"; text: string };

function describe(target: { kind: "link"; to: string } | { kind: "other"; what: string }): string {
  return target.kind === "link" ? `a symbolic link to ${target.to}` : target.what;
}

export function planUninstall(facts: UninstallFacts): Plan<UninstallAction> {
  const { binary, unit } = facts;
  if (binary.kind === "missing" && unit.kind === "missing" && facts.links.length === 0) {
    return { ok: true, actions: [{ kind: "say", text: `nothing to remove: neither ${facts.binaryPath} nor ${facts.unitPath} exists` }] };
  }
  const actions: UninstallAction[] = [];
  const ourUnit = unit.kind === "file" && unit.ours;
  if (ourUnit) {
    if (facts.systemdRunning) actions.push({ kind: "disable-now" });
    else if (facts.root === "/") {
      actions.push({
        kind: "say",
        text: "systemd: not running here (no /run/systemd/system), so nqptp is not running under it; nothing to stop. Where it runs, stop it first: sudo systemctl disable --now nqptp",
      });
    } else {
      actions.push({
        kind: "say",
        text: `systemd: nothing stopped under --root; if nqptp runs on the system that uses ${facts.root}, stop it there first: sudo systemctl disable --now nqptp`,
      });
    }
  }

  let unitRemoved = false;
  if (ourUnit) {
    actions.push({ kind: "remove", path: facts.unitPath, what: "unit" });
    // What `systemctl disable` removes; done here too so an offline tree (or a failed disable) is left clean.
    for (const link of facts.links) actions.push({ kind: "remove", path: link, what: "enablement link" });
    unitRemoved = true;
  } else if (unit.kind === "file") {
    actions.push({ kind: "say", text: `unit: left alone: ${facts.unitPath} was not installed by nqptp (no "${UNIT_MARKER_PREFIX.trim()}" line)` });
  } else if (unit.kind === "link" || unit.kind === "other") {
    actions.push({ kind: "say", text: `unit: left alone: ${facts.unitPath} is ${describe(unit)}` });
  } else {
    actions.push({ kind: "say", text: `unit: ${facts.unitPath} does not exist` });
  }

  if (binary.kind === "file" && binary.identity !== "not-nqptp") {
    actions.push({ kind: "remove", path: facts.binaryPath, what: "binary: an nqptp built from this project" });
  } else if (binary.kind === "file") {
    actions.push({
      kind: "say",
      text: `binary: left alone: ${facts.binaryPath} is not an nqptp built from this project (remove it yourself if it should go)`,
    });
  } else if (binary.kind === "link" || binary.kind === "other") {
    actions.push({ kind: "say", text: `binary: left alone: ${facts.binaryPath} is ${describe(binary)}` });
  } else {
    actions.push({ kind: "say", text: `binary: ${facts.binaryPath} does not exist` });
  }

  if (unitRemoved) {
    if (facts.systemdRunning) actions.push({ kind: "daemon-reload" });
    else if (facts.root === "/")
      actions.push({ kind: "say", text: "systemd: not reloaded (not running); once it runs: sudo systemctl daemon-reload" });
  }
  return { ok: true, actions };
}
