#!/usr/bin/env bash
# The whole test suite, from a fresh clone on Debian with only Node.js and npm:
# installs what the tests need (Debian packages when run as root, Bun from npm), checks the
# types (tsc) and the style (Biome), builds dist/nqptp, runs `bun test` with coverage, prints the
# coverage of every file of src/ against its floor, and ends with a plain "N passed, N failed" line.
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
# test/e2e/shairport-sync.test.ts builds real Shairport Sync from the shared clients directory
# beside the repository (or NQPTP_CLIENTS_DIR): what its build script needs, when it is there.
clients=${NQPTP_CLIENTS_DIR:-../shared/clients}
if [ -f "$clients/build-shairport-sync.sh" ]; then
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v autoreconf >/dev/null 2>&1 || need+=(autoconf)
  command -v automake >/dev/null 2>&1 || need+=(automake)
  command -v libtoolize >/dev/null 2>&1 || need+=(libtool)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  command -v xxd >/dev/null 2>&1 || need+=(xxd)
  command -v plistutil >/dev/null 2>&1 || need+=(libplist-utils) # configure --with-airplay-2 runs it
  for module_package in popt:libpopt-dev libconfig:libconfig-dev openssl:libssl-dev soxr:libsoxr-dev \
    libplist-2.0:libplist-dev libsodium:libsodium-dev libavutil:libavutil-dev libavcodec:libavcodec-dev \
    libavformat:libavformat-dev uuid:uuid-dev libgcrypt:libgcrypt20-dev; do
    pkg-config --exists "${module_package%%:*}" 2>/dev/null || need+=("${module_package#*:}")
  done
fi
# test/e2e/arm64-system.test.ts: an arm64 Debian booted under qemu-system-aarch64. Its root is built by
# mmdebstrap through binfmt_misc with qemu-user-static (the test enables the binfmt entry itself).
# qemu-user-static conflicts only with qemu-user-binfmt (apt removes that one if present, and it is
# never installed here: no recommends), not with qemu-user, which arm64.test.ts runs: both stay.
# mke2fs makes the disk images.
command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || [ -x /usr/sbin/update-binfmts ] || need+=(binfmt-support)
command -v mke2fs >/dev/null 2>&1 || [ -x /usr/sbin/mke2fs ] || need+=(e2fsprogs)
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

[ -x node_modules/.bin/bun ] && [ -x node_modules/.bin/tsc ] && [ -x node_modules/.bin/biome ] || npm ci --no-audit --no-fund
BUN=node_modules/.bin/bun

# ---- the slow builds the end-to-end tests share, begun now -------------------------------------
# The booted arm64 system (2-3 minutes the first time) and three Shairport Sync versions (about
# 80 s) build in the background while the checks and the unit tests run; their tests wait for them
# (test/support/warm-caches.ts). Warm, it finds them cached at once.
warm_log=$(mktemp)
warm_pid=""
if [ "$(id -u)" = 0 ] && [ $# -eq 0 ]; then
  $BUN test/support/warm-caches.ts >"$warm_log" 2>&1 &
  warm_pid=$!
fi
trap 'rm -f "$warm_log"; [ -z "$warm_pid" ] || kill "$warm_pid" 2>/dev/null || true' EXIT

# ---- checks before the tests: the types, then the style ---------------------------------------
# Bun strips types without checking them: without this a type error would pass every test.
echo "typecheck: tsc --noEmit -p ."
if ! node_modules/.bin/tsc --noEmit -p .; then
  echo "typecheck failed (above): the tests were not run" >&2
  exit 1
fi

# Biome (biome.json): formatting and lint of src/ test/ bench/ scripts/.
echo "style: biome ci"
if ! node_modules/.bin/biome ci --error-on-warnings --colors=off --max-diagnostics=50; then
  echo "style check failed (above): 'npx biome check --write' fixes formatting and the safe lint fixes" >&2
  exit 1
fi

$BUN scripts/build.ts
log=$(mktemp)
coverage=$(mktemp -d)
junit=$(mktemp)
trap 'rm -rf "$log" "$coverage" "$junit" "$warm_log"; [ -z "$warm_pid" ] || kill "$warm_pid" 2>/dev/null || true' EXIT
set +e
$BUN test --timeout 60000 --coverage --coverage-reporter=lcov --coverage-dir="$coverage" \
  --reporter=junit --reporter-outfile="$junit" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ -n "$warm_pid" ]; then
  kill "$warm_pid" 2>/dev/null || true
  cat "$warm_log"
fi

# ---- coverage of src/: the total over EVERY file of src/ ---------------------------------------
# scripts/coverage.ts counts a file no test loads in-process at 0 % of its lines (Bun's own count,
# from a run that only imports it) and of its functions (counted in its source), prints the total and
# every file below the floor. (The end-to-end tests run the compiled binary, whose lines do not
# count.) The floor applies to a whole run only; a run of chosen test files just prints its figure.
# The floor: the tests but e2e/ measured lines 93.09 %, functions 92.48 % of all of src/ (a whole
# run can only add to that), less a margin of about one point for what varies between runs and
# machines (tests that skip without root, a tool or a non-loopback address; timing-dependent paths).
COVERAGE_FLOOR_LINES=92.25
COVERAGE_FLOOR_FUNCTIONS=91.5
if [ -s "$coverage/lcov.info" ]; then
  counted=0
  $BUN scripts/coverage.ts "$coverage/lcov.info" --floor-lines "$COVERAGE_FLOOR_LINES" --floor-functions "$COVERAGE_FLOOR_FUNCTIONS" || counted=$?
  if [ "$counted" = 1 ] && [ "$#" = 0 ]; then
    echo "coverage of src/ fell below the floor (COVERAGE_FLOOR_* in scripts/test.sh)" >&2
    [ "$status" != 0 ] || status=1
  elif [ "$counted" -gt 1 ]; then
    [ "$#" != 0 ] || [ "$status" != 0 ] || status=1
  fi
else
  echo "coverage of src/: bun test wrote no lcov report" >&2
  [ "$#" != 0 ] || [ "$status" != 0 ] || status=1
fi

# What each failed test said, again at the end (where a CI log is read): bun test printed it where
# the test ran, and its closing list only names the tests.
if [ "$status" != 0 ] && [ -s "$junit" ]; then
  $BUN scripts/failures.ts "$junit" --lines 40 || true
fi

pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
skip=$(grep -Eo '^ *[0-9]+ skip$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
echo "${pass} passed, ${fail} failed, ${skip} skipped"
exit "$status"
