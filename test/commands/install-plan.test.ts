// The pure parts of `nqptp install` / `nqptp uninstall`: reading `shairport-sync -V`, rendering the
// unit, the command lines, and the plans for every situation at the targets.

import { describe, expect, test } from "bun:test";
import unitTemplate from "../../nqptp.service" with { type: "text" };
import { EXIT } from "../../src/cli/exit-status.ts";
import { parseInstallArgs, parseUninstallArgs } from "../../src/commands/install-args.ts";
import {
  chooseInterfaceVersion,
  interfaceVersionFromShairportVersion,
  planInstall,
  planUninstall,
  type InstallAction,
  type InstallFacts,
  type UninstallAction,
  type UninstallFacts,
} from "../../src/commands/install-plan.ts";
import { enablementLinks, execArgument, execStartOf, isOurUnit, renderUnit, serviceAccount, unitDirectives } from "../../src/commands/unit-file.ts";

describe("interfaceVersionFromShairportVersion", () => {
  test.each([
    ["4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc", { kind: "smi", tag: "smi10", version: 10 }],
    ["4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc\n", { kind: "smi", tag: "smi10", version: 10 }],
    ["4.2.0-AirPlay2-smi9-OpenSSL-Avahi-ALSA-sysconfdir:/etc", { kind: "smi", tag: "smi9", version: 9 }],
    ["4.1.1-AirPlay2-smi8-OpenSSL-Avahi-ALSA-soxr-sysconfdir:/usr/local/etc", { kind: "smi", tag: "smi8", version: 8 }],
    // git builds put a describe (with its own dashes) first
    ["4.3.2-dev-146-g2f5e7a1-AirPlay2-smi10-OpenSSL-Avahi-ALSA-sysconfdir:/etc", { kind: "smi", tag: "smi10", version: 10 }],
    ["  4.3.2-airplay2-SMI10-OpenSSL  ", { kind: "smi", tag: "smi10", version: 10 }],
    ["4.3.2-AirPlay2-smi010-OpenSSL", { kind: "smi", tag: "smi10", version: 10 }],
    ["shairport-sync: warning: no config file\n4.3.2-AirPlay2-smi10-OpenSSL", { kind: "smi", tag: "smi10", version: 10 }],
    ["4.0.0-AirPlay2-OpenSSL-Avahi-ALSA-soxr-sysconfdir:/etc", { kind: "airplay2-without-smi", version: 5 }],
    // a directory called smi9 in the path tells nothing
    ["4.0.0-AirPlay2-OpenSSL-sysconfdir:/opt/smi9-etc", { kind: "airplay2-without-smi", version: 5 }],
    ["4.3.2-AirPlay2-smi-OpenSSL", { kind: "airplay2-without-smi", version: 5 }],
    ["3.3.9-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc", { kind: "not-airplay2" }],
    ["", { kind: "not-airplay2" }],
    ["AirPlay2smi10", { kind: "not-airplay2" }],
    ["5.0.0-AirPlay2-smi11-OpenSSL", { kind: "unsupported-smi", tag: "smi11" }],
    ["4.1.0-AirPlay2-smi7", { kind: "unsupported-smi", tag: "smi7" }],
    ["4.3.2-AirPlay2-smi9-smi10", { kind: "conflicting-smi", tags: ["smi9", "smi10"] }],
    ["4.3.2-AirPlay2-smi10-smi10", { kind: "smi", tag: "smi10", version: 10 }],
    // 4.1 reads interface 8 but has no smi tag (the tags came with 4.2): what 4.1.1 prints
    ["4.1.1-AirPlay2-OpenSSL-Avahi-ALSA-soxr-sysconfdir:/etc", { kind: "airplay2-without-smi", version: 8 }],
    ["4.1-AirPlay2-OpenSSL-Avahi-ALSA-sysconfdir:/usr/local/etc", { kind: "airplay2-without-smi", version: 8 }],
    ["4.1-rc5-AirPlay2-OpenSSL-Avahi-ALSA", { kind: "airplay2-without-smi", version: 8 }],
    ["shairport-sync: warning: no config file\n4.1.1-AirPlay2-OpenSSL", { kind: "airplay2-without-smi", version: 8 }],
    // a development build from before 4.1, and versions that only begin like it
    ["4.1-dev-55-g1a2b3c4-AirPlay2-OpenSSL-Avahi", { kind: "airplay2-without-smi", version: 5 }],
    ["4.10-AirPlay2-OpenSSL", { kind: "airplay2-without-smi", version: 5 }],
    ["14.1-AirPlay2-OpenSSL", { kind: "airplay2-without-smi", version: 5 }],
  ])("%j → %j", (text, reading) => {
    expect(interfaceVersionFromShairportVersion(text)).toEqual(reading as never);
  });
});

describe("chooseInterfaceVersion", () => {
  const ran = (output: string) => ({ kind: "ran" as const, path: "/usr/bin/shairport-sync", output });

  test("--interface-version wins over what shairport-sync says", () => {
    const choice = chooseInterfaceVersion(9, ran("4.3.2-AirPlay2-smi10"));
    expect(choice).toMatchObject({ ok: true, version: 9 });
    if (choice.ok) expect(choice.explanation).toContain("given with --interface-version");
  });

  test("smi10 → 10, saying what was found", () => {
    const choice = chooseInterfaceVersion(null, ran("4.3.2-AirPlay2-smi10-OpenSSL-Avahi-ALSA-soxr-metadata-sysconfdir:/etc"));
    expect(choice).toMatchObject({ ok: true, version: 10 });
    if (choice.ok) {
      expect(choice.explanation).toContain("/usr/bin/shairport-sync -V says");
      expect(choice.explanation).toContain("4.3.2-AirPlay2-smi10");
      expect(choice.explanation).toContain("smi10");
    }
  });

  test.each([
    [{ kind: "not-found" as const, looked: "shairport-sync on PATH" }, "no shairport-sync found"],
    [{ kind: "failed" as const, path: "/x", reason: "exit status 1" }, "could not run /x -V"],
    [ran("3.3.9-OpenSSL"), "not an AirPlay 2 build"],
    [ran("4.0.0-AirPlay2-OpenSSL"), "without an smi tag (a development build from before 4.1)"],
  ])("%j → default 5 (%s)", (probe, words) => {
    const choice = chooseInterfaceVersion(null, probe);
    expect(choice).toMatchObject({ ok: true, version: 5 });
    if (choice.ok) expect(choice.explanation).toContain(words);
  });

  test("Shairport Sync 4.1.x (no smi tag) → 8, saying why", () => {
    const choice = chooseInterfaceVersion(null, ran("4.1.1-AirPlay2-OpenSSL-Avahi-ALSA-soxr-sysconfdir:/etc"));
    expect(choice).toMatchObject({ ok: true, version: 8 });
    if (choice.ok) expect(choice.explanation).toContain("Shairport Sync 4.1 (no smi tag: those came with 4.2), so interface version 8");
  });

  test("an smi this nqptp does not serve is refused, naming the way out", () => {
    const choice = chooseInterfaceVersion(null, ran("5.1-AirPlay2-smi11"));
    expect(choice.ok).toBe(false);
    if (!choice.ok) {
      expect(choice.message).toContain("smi11");
      expect(choice.message).toContain("--interface-version");
    }
  });
});

describe("renderUnit", () => {
  const version = "1.2.3-g1234567";

  test("the repository's unit renders: marker first, every other line kept, ExecStart with the version", () => {
    const rendered = renderUnit(unitTemplate, { interfaceVersion: 10, version });
    if (!rendered.ok) throw new Error(rendered.error);
    const lines = rendered.text.split("\n");
    expect(lines[0]).toStartWith("# Installed by nqptp 1.2.3-g1234567");
    expect(isOurUnit(rendered.text)).toBe(true);
    const templateLines = unitTemplate.split("\n");
    expect(lines.length).toBe(templateLines.length + 1);
    const changed = templateLines.flatMap((line, i) => (lines[i + 1] === line ? [] : [[line, lines[i + 1]]]));
    expect(changed).toEqual([["ExecStart=/usr/local/bin/nqptp", "ExecStart=/usr/local/bin/nqptp --interface-version 10"]]);
  });

  test("without a version, ExecStart is the template's", () => {
    const rendered = renderUnit(unitTemplate, { version });
    if (!rendered.ok) throw new Error(rendered.error);
    expect(execStartOf(rendered.text)).toBe("/usr/local/bin/nqptp");
    expect(rendered.text.split("\n").slice(1).join("\n")).toBe(unitTemplate);
  });

  test("a version already on ExecStart is replaced, in both spellings; other options stay", () => {
    for (const exec of ["/usr/local/bin/nqptp --interface-version 8 -v", "/usr/local/bin/nqptp --interface-version=8 -v"]) {
      const rendered = renderUnit(`[Service]\nExecStart=${exec}\n`, { interfaceVersion: 9, version });
      if (!rendered.ok) throw new Error(rendered.error);
      expect(execStartOf(rendered.text)).toBe("/usr/local/bin/nqptp -v --interface-version 9");
    }
  });

  test("network interfaces go on ExecStart as --interface NAME each, after the version; ones already there are replaced", () => {
    const rendered = renderUnit(unitTemplate, { interfaceVersion: 10, interfaces: ["eth0", "wlan0"], version });
    if (!rendered.ok) throw new Error(rendered.error);
    expect(execStartOf(rendered.text)).toBe("/usr/local/bin/nqptp --interface-version 10 --interface eth0 --interface wlan0");
    for (const exec of ["/usr/local/bin/nqptp -i old0 -v", "/usr/local/bin/nqptp --interface old0 -v", "/usr/local/bin/nqptp --interface=old0 -v"]) {
      const again = renderUnit(`[Service]\nExecStart=${exec}\n`, { interfaces: ["eth1"], version });
      if (!again.ok) throw new Error(again.error);
      expect(execStartOf(again.text)).toBe("/usr/local/bin/nqptp -v --interface eth1");
    }
  });

  test.each([
    ["eth0", "eth0"],
    ["br-1a2b.100", "br-1a2b.100"],
    ["a$b", '"a$$b"'],
    ['a"b', '"a\\"b"'],
    ["a\\b", '"a\\\\b"'],
    ["a;b", '"a;b"'],
    ["a'b", `"a'b"`],
    ["é0", '"é0"'],
    ["a\u0001b", '"a\\x01b"'],
  ])("an interface name on ExecStart: %j is written %j (systemd's quoting)", (name, written) => {
    expect(execArgument(name)).toBe(written);
  });

  test("rendering a rendered unit again keeps one marker", () => {
    const once = renderUnit(unitTemplate, { interfaceVersion: 5, version: "1.0" });
    if (!once.ok) throw new Error(once.error);
    const twice = renderUnit(once.text, { interfaceVersion: 10, version: "2.0" });
    if (!twice.ok) throw new Error(twice.error);
    expect(twice.text.split("\n").filter((l) => l.startsWith("# Installed by nqptp"))).toEqual([expect.stringContaining("nqptp 2.0.") as never]);
  });

  test.each([
    ["[Service]\nType=simple\n", "exactly one ExecStart="],
    ["[Service]\nExecStart=/usr/bin/a\nExecStart=/usr/bin/b\n", "exactly one ExecStart="],
    ["[Service]\nExecStart=/usr/bin/nqptp\n", "not /usr/local/bin/nqptp"],
  ])("a template it cannot use is an error: %j", (template, message) => {
    const rendered = renderUnit(template, { version });
    expect(rendered.ok).toBe(false);
    if (!rendered.ok) expect(rendered.error).toContain(message);
  });

  test("a unit without the marker is not ours, wherever a lookalike appears", () => {
    expect(isOurUnit(unitTemplate)).toBe(false);
    expect(isOurUnit("[Unit]\nDescription=# Installed by nqptp 1.0\n")).toBe(false);
  });
});

describe("unit directives", () => {
  test("sections, comments and values", () => {
    expect(unitDirectives("# c\n[Unit]\nA = b c\n; d\n[Service]\nX=\n").map(({ section, key, value }) => [section, key, value])).toEqual([
      ["Unit", "A", "b c"],
      ["Service", "X", ""],
    ]);
  });

  test.each([
    [unitTemplate, { kind: "dynamic" }],
    ["[Service]\nUser=nqptp\n", { kind: "user", name: "nqptp" }],
    ["[Service]\nDynamicUser=no\nUser=nqptp\n", { kind: "user", name: "nqptp" }],
    ["[Service]\nUser=nqptp\nDynamicUser=true\n", { kind: "dynamic" }],
    ["[Service]\nUser=999\n", { kind: "uid", uid: 999 }],
    ["[Service]\nUser=root\n", { kind: "root" }],
    ["[Service]\nExecStart=/x\n", { kind: "root" }],
    ["[Unit]\nUser=nqptp\n", { kind: "root" }],
  ])("serviceAccount(%j) → %j", (text, account) => {
    expect(serviceAccount(text)).toEqual(account as never);
  });

  test("enablement links from [Install]", () => {
    expect(enablementLinks(unitTemplate)).toEqual(["multi-user.target.wants/nqptp.service"]);
    expect(enablementLinks("[Install]\nWantedBy=a.target b.target\nRequiredBy=c.target\nWantedBy=a.target\n")).toEqual([
      "a.target.wants/nqptp.service",
      "b.target.wants/nqptp.service",
      "c.target.requires/nqptp.service",
    ]);
  });
});

describe("command lines", () => {
  test.each([
    [[], { root: "/", rootGiven: false, interfaceVersion: null, interfaces: [], shairportSync: null, force: false }],
    [["-i", "wlan0", "--interface=eth0", "-i", "wlan0"], { interfaces: ["wlan0", "eth0"] }],
    [["--root", "/tmp/t", "--force"], { root: "/tmp/t", rootGiven: true, force: true }],
    [["--root=/tmp/t/../u"], { root: "/tmp/u" }],
    [["--interface-version", "10", "--shairport-sync=/x/ss"], { interfaceVersion: 10, shairportSync: "/x/ss" }],
  ])("install %j", (args, options) => {
    const plan = parseInstallArgs(args);
    expect(plan.kind).toBe("run");
    if (plan.kind === "run") expect(plan.options).toMatchObject(options);
  });

  test.each([
    [["--bogus"], 'unknown option "--bogus"'],
    [["-f"], 'unknown option "-f"'],
    [["stray"], 'unexpected argument "stray"'],
    [["--root"], "needs a value"],
    [["--root="], "needs a value"],
    [["--force=yes"], "takes no value"],
    [["--interface-version", "7"], '--interface-version: "7" is not one of 5, 6, 8, 9, 10'],
    [["--interface-version", "1e1"], "is not one of"],
    [["--root", "/a", "--root=/b"], "option --root is given twice"],
    [["--interface", "eth0:1"], '--interface: "eth0:1" holds ":", which an interface name cannot hold'],
    [["--help", "--bogus"], "unknown option"],
  ])("install %j is refused (%s)", (args, message) => {
    const plan = parseInstallArgs(args);
    expect(plan.kind).toBe("error");
    if (plan.kind === "error") expect(plan.message).toContain(message);
  });

  test("help, and uninstall's smaller set", () => {
    expect(parseInstallArgs(["-h"]).kind).toBe("help");
    expect(parseUninstallArgs(["--help"]).kind).toBe("help");
    expect(parseUninstallArgs(["--root", "/tmp/x"])).toEqual({ kind: "run", options: { root: "/tmp/x", rootGiven: true } });
    expect(parseUninstallArgs(["--force"])).toEqual({ kind: "error", message: 'unknown option "--force"' });
  });
});

const SELF = "a".repeat(64);
const OTHER = "b".repeat(64);
const rendered = (() => {
  const r = renderUnit(unitTemplate, { interfaceVersion: 10, version: "1.0" });
  if (!r.ok) throw new Error(r.error);
  return r.text;
})();

function installFacts(overrides: Partial<InstallFacts> = {}): InstallFacts {
  return {
    root: "/",
    force: false,
    binaryPath: "/usr/local/bin/nqptp",
    selfSha256: SELF,
    binary: { kind: "missing" },
    unitPath: "/etc/systemd/system/nqptp.service",
    unitText: rendered,
    unit: { kind: "missing" },
    account: { kind: "dynamic" },
    userExists: null,
    systemdRunning: true,
    ...overrides,
  };
}

const kinds = (actions: { kind: string }[]) => actions.filter((a) => a.kind !== "say").map((a) => a.kind);
const said = (actions: (InstallAction | UninstallAction)[]) => actions.flatMap((a) => (a.kind === "say" ? [a.text] : [])).join("\n");

describe("planInstall", () => {
  test("a fresh machine with systemd: copy, write, reload, then the enable line", () => {
    const plan = planInstall(installFacts());
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual(["copy-binary", "write-unit", "daemon-reload"]);
    expect(said(plan.actions)).toContain("sudo systemctl enable --now nqptp");
    expect(said(plan.actions)).toContain("sudo systemctl restart shairport-sync");
    expect(said(plan.actions)).toContain("DynamicUser=yes");
  });

  test("the same binary and unit again: nothing written, nothing reloaded", () => {
    const plan = planInstall(
      installFacts({ binary: { kind: "file", mode: 0o755, sha256: SELF }, unit: { kind: "file", mode: 0o644, text: rendered, ours: true } }),
    );
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual([]);
    expect(said(plan.actions)).toContain("already installed");
  });

  test("same contents, wrong modes: only the modes are set", () => {
    const plan = planInstall(
      installFacts({ binary: { kind: "file", mode: 0o700, sha256: SELF }, unit: { kind: "file", mode: 0o600, text: rendered, ours: true } }),
    );
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.actions.filter((a) => a.kind === "set-mode")).toEqual([
      { kind: "set-mode", path: "/usr/local/bin/nqptp", mode: 0o755 },
      { kind: "set-mode", path: "/etc/systemd/system/nqptp.service", mode: 0o644 },
    ]);
  });

  test("our unit with another interface version is rewritten and reloaded; the binary is kept", () => {
    const plan = planInstall(
      installFacts({
        binary: { kind: "file", mode: 0o755, sha256: SELF },
        unit: { kind: "file", mode: 0o644, text: "# Installed by nqptp 0.9\nold", ours: true },
      }),
    );
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.actions.find((a) => a.kind === "write-unit")).toMatchObject({ replacing: "ours" });
    expect(kinds(plan.actions)).toEqual(["write-unit", "daemon-reload"]);
  });

  test("a different binary, a foreign unit, a symbolic link: refused without --force, all reasons at once", () => {
    const plan = planInstall(
      installFacts({ binary: { kind: "file", mode: 0o755, sha256: OTHER }, unit: { kind: "file", mode: 0o644, text: "[Unit]\n", ours: false } }),
    );
    expect(plan.ok).toBe(false);
    if (!plan.ok) {
      expect(plan.status).toBe(EXIT.cantCreate);
      expect(plan.message).toContain("/usr/local/bin/nqptp is a different file");
      expect(plan.message).toContain("was not installed by nqptp");
      expect(plan.message).toContain("--force");
    }
    const link = planInstall(installFacts({ binary: { kind: "link", to: "/opt/nqptp" } }));
    expect(link.ok).toBe(false);
  });

  test("--force replaces a different binary, a foreign unit and a link", () => {
    const plan = planInstall(
      installFacts({ force: true, binary: { kind: "link", to: "/opt/nqptp" }, unit: { kind: "file", mode: 0o644, text: "[Unit]\n", ours: false } }),
    );
    if (!plan.ok) throw new Error(plan.message);
    expect(
      plan.actions.filter((a) => a.kind === "copy-binary" || a.kind === "write-unit").map((a) => [a.kind, "replacing" in a ? a.replacing : null]),
    ).toEqual([
      ["copy-binary", true],
      ["write-unit", "foreign"],
    ]);
  });

  test("a directory in the way is refused even with --force", () => {
    const plan = planInstall(installFacts({ force: true, binary: { kind: "other", what: "a directory" } }));
    expect(plan).toMatchObject({ ok: false, status: EXIT.cantCreate });
  });

  test("no systemd, or under --root: nothing reloaded, the command to run is printed", () => {
    const noSystemd = planInstall(installFacts({ systemdRunning: false }));
    if (!noSystemd.ok) throw new Error(noSystemd.message);
    expect(kinds(noSystemd.actions)).toEqual(["copy-binary", "write-unit"]);
    expect(said(noSystemd.actions)).toContain("sudo systemctl daemon-reload");
    const staged = planInstall(installFacts({ root: "/tmp/stage", systemdRunning: false }));
    if (!staged.ok) throw new Error(staged.message);
    expect(said(staged.actions)).toContain("on the system that runs from /tmp/stage");
  });

  test("a unit with User=: the account is created unless getent finds it; under --root only a note", () => {
    const account = { kind: "user" as const, name: "nqptp" };
    const missing = planInstall(installFacts({ account, userExists: false }));
    if (!missing.ok) throw new Error(missing.message);
    expect(missing.actions).toContainEqual({ kind: "create-user", name: "nqptp" });
    const exists = planInstall(installFacts({ account, userExists: true }));
    if (!exists.ok) throw new Error(exists.message);
    expect(kinds(exists.actions)).not.toContain("create-user");
    expect(said(exists.actions)).toContain("user: nqptp exists");
    const staged = planInstall(installFacts({ account, userExists: null, root: "/tmp/stage", systemdRunning: false }));
    if (!staged.ok) throw new Error(staged.message);
    expect(kinds(staged.actions)).not.toContain("create-user");
    expect(said(staged.actions)).toContain("useradd --system --no-create-home --shell /usr/sbin/nologin nqptp");
  });
});

function uninstallFacts(overrides: Partial<UninstallFacts> = {}): UninstallFacts {
  return {
    root: "/",
    binaryPath: "/usr/local/bin/nqptp",
    binary: { kind: "file", mode: 0o755, identity: "nqptp-build" },
    unitPath: "/etc/systemd/system/nqptp.service",
    unit: { kind: "file", mode: 0o644, ours: true },
    links: [],
    systemdRunning: true,
    ...overrides,
  };
}

describe("planUninstall", () => {
  test("with systemd: disable --now, remove unit and binary, reload", () => {
    const plan = planUninstall(uninstallFacts());
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual(["disable-now", "remove", "remove", "daemon-reload"]);
  });

  test("without systemd: prints the disable line, removes the enablement links itself", () => {
    const link = "/etc/systemd/system/multi-user.target.wants/nqptp.service";
    const plan = planUninstall(uninstallFacts({ systemdRunning: false, links: [link] }));
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual(["remove", "remove", "remove"]);
    expect(plan.actions).toContainEqual({ kind: "remove", path: link, what: "enablement link" });
    expect(said(plan.actions)).toContain("sudo systemctl disable --now nqptp");
  });

  test("a unit without our marker and a binary that is not ours are left alone", () => {
    const plan = planUninstall(
      uninstallFacts({ unit: { kind: "file", mode: 0o644, ours: false }, binary: { kind: "file", mode: 0o755, identity: "not-nqptp" } }),
    );
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual([]);
    expect(said(plan.actions)).toContain("unit: left alone");
    expect(said(plan.actions)).toContain("binary: left alone");
  });

  test("a symbolic link at the binary's place is left alone", () => {
    const plan = planUninstall(uninstallFacts({ binary: { kind: "link", to: "/opt/x" } }));
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.actions.filter((a) => a.kind === "remove").map((a) => (a.kind === "remove" ? a.path : ""))).toEqual([
      "/etc/systemd/system/nqptp.service",
    ]);
  });

  test("nothing there: says so", () => {
    const plan = planUninstall(uninstallFacts({ unit: { kind: "missing" }, binary: { kind: "missing" } }));
    if (!plan.ok) throw new Error(plan.message);
    expect(kinds(plan.actions)).toEqual([]);
    expect(said(plan.actions)).toContain("nothing to remove");
  });
});
