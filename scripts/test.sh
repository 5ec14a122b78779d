#!/usr/bin/env bash
# The whole test suite, from a fresh clone on Debian with only Node.js and npm:
# installs what the tests need (Debian packages when run as root, Bun from npm), builds
# dist/nqptp, runs `bun test`, and ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v git >/dev/null 2>&1 || need+=(git)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)                # test/e2e/arm64.test.ts runs the arm64 build
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v ptp4l >/dev/null 2>&1 || [ -x /usr/sbin/ptp4l ] || need+=(linuxptp)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # test/service.test.ts: the unit's exposure score and syscall filter
# test/e2e/systemd.test.ts and bullseye.test.ts: Debian roots built with mmdebstrap, booted with systemd-nspawn
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap debian-archive-keyring)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages the tests need: ${need[*]}"
    apt-get update -qq
    # systemd-container's libnss-mymachines (a recommendation, so not installed here) would add
    # itself to /etc/nsswitch.conf: whatever comes in, this machine's name lookup stays as it was.
    nsswitch=$(cat /etc/nsswitch.conf 2>/dev/null || true)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$nsswitch" ] && [ "$(cat /etc/nsswitch.conf)" != "$nsswitch" ]; then
      printf '%s\n' "$nsswitch" >/etc/nsswitch.conf
      echo "restored /etc/nsswitch.conf (a package had changed it)"
    fi
  else
    echo "missing: ${need[*]} (run as root to install them, or install them yourself)" >&2
  fi
fi

[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund
BUN=node_modules/.bin/bun

$BUN scripts/build.ts
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
$BUN test --timeout 60000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
skip=$(grep -Eo '^ *[0-9]+ skip$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
echo "${pass} passed, ${fail} failed, ${skip} skipped"
exit "$status"
