#!/bin/bash
# The steps test/e2e/arm64-system.test.ts runs inside the booted arm64 guest (started by the
# payload's run wrapper, test/support/arm64-vm.ts, with the results directory as $1). It installs
# the arm64 build the way a user does and drives it under systemd, against Debian's arm64 ptp4l
# in a network namespace, and writes what it saw into one directory per step. It judges nothing:
# the test reads the results on the host and asserts there.
#
# On its standard output (the serial console) it prints only "step NAME begin UPTIME" and
# "step NAME end UPTIME STATUS", so the host can time the steps as they happen. A step stops at its
# first failing command (STATUS is then not 0; its log.txt traces what ran); every wait is bounded.
# The parameters (addresses, durations, ptp4l's command line) come from the payload's params file.
set -u
results=$1
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=/dev/null
. "$here/params"
reader=$here/shm-reader
dropins=/etc/systemd/system/nqptp.service.d

uptime_s() { cut -d' ' -f1 /proc/uptime; }
# systemctl show of the unit, the properties named.
show() { local p args=(); for p in "$@"; do args+=("--property=$p"); done; systemctl show nqptp.service "${args[@]}"; }
prop() { systemctl show nqptp.service --property="$1" --value; }
# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds; fails after SECONDS.
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "gave up after waiting for: $*"
      return 1
    fi
    sleep 0.2
  done
}
# One datagram to the control port: a file of the payload's control directory (made by the test
# from the same followCommands() the host tests use; it ends with the NUL a C client sends).
control() { cat "$here/control/$1" > /dev/udp/127.0.0.1/9000; }
in_unit_journal() { journalctl -u nqptp.service -o cat | grep -q -- "$1"; }
holder_locked() { grep -qx locked holder.txt; }

step() {
  local name=$1 status
  shift
  mkdir -p "$results/$name"
  echo "step $name begin $(uptime_s)"
  (
    cd "$results/$name" || exit 1
    set -ex
    "$@"
  ) > "$results/$name/log.txt" 2>&1
  status=$?
  echo "step $name end $(uptime_s) $status"
}

# The machine as the daemon will see it.
step_system() {
  uname -r > kernel-release
  uname -m > machine
  cat /proc/1/comm > pid1
  nproc > cpus
  grep -m1 '^CPU part' /proc/cpuinfo > cpu-part
  cp /proc/meminfo meminfo
  stat -fc %T /sys/fs/cgroup > cgroup-fs
  systemctl --version | head -1 > systemd-version
}

# A LAN: a veth pair from this system to a network namespace holding ptp4l, the master. Made before
# nqptp starts, as a Pi's network interfaces exist at boot (the daemon joins the PTP multicast
# groups on the interfaces it finds at start).
step_network() {
  ip netns add nqptp-master
  ip link add ptp0 type veth peer name ptp0 netns nqptp-master
  ip addr add "$SLAVE_ADDRESS/24" dev ptp0
  ip link set ptp0 up
  ip -n nqptp-master addr add "$MASTER_ADDRESS/24" dev ptp0
  ip -n nqptp-master link set lo up
  ip -n nqptp-master link set ptp0 up
  ip netns exec nqptp-master ptp4l "${PTP4L_ARGS[@]}" > "$results/ptp4l.log" 2>&1 &
  echo $! > "$results/ptp4l.pid"
  wait_for 30 grep -q "$PTP4L_MASTER" "$results/ptp4l.log"
}

# nqptp install, then systemctl enable --now: Type=notify, so a reader started the moment systemctl
# returns must find the region, after the first start and after a restart.
step_install() {
  "$here/nqptp" install --interface-version 10 > install.txt
  systemctl enable --now nqptp > enable.txt 2>&1
  "$reader" /nqptp 10 > ready-1.json
  systemctl restart nqptp
  "$reader" /nqptp 10 > ready-2.json
  show ActiveState SubState Type UnitFileState StatusText MainPID NRestarts MemoryMax > show.txt
  cat "/proc/$(prop MainPID)/status" > proc-status
  cp /etc/passwd passwd
}

# A minute of following ptp4l on interface 10, the unit as installed; the region read every
# SAMPLE_INTERVAL_MS with the reader's clocks (for the true offset); then the daemon's memory.
step_follow10() {
  local pid
  pid=$(prop MainPID)
  echo "$pid" > main-pid
  control 10-0
  control 10-1
  "$reader" /nqptp 10 --loop-ms $((FOLLOW_S * 1000)) --interval-ms "$SAMPLE_INTERVAL_MS" --clocks > samples.jsonl
  show StatusText MainPID NRestarts ActiveState > show.txt
  cat "/proc/$pid/status" > proc-status
  local cgroup
  cgroup=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
  for file in memory.max memory.current memory.peak; do echo "$file $(cat "$cgroup/$file")"; done > cgroup-memory
  cp /proc/meminfo meminfo
}

# What a call outside the filter looks like: a transient service with the installed unit's system
# call filter and SystemCallErrorNumber=kill calls chown (fchownat: @chown, inside ~@privileged).
step_filterprobe() {
  local properties=() line
  while IFS= read -r line; do properties+=("--property=$line"); done < <(grep -E '^SystemCall(Filter|Architectures)=' /etc/systemd/system/nqptp.service)
  printf '%s\n' "${properties[@]}" > properties.txt
  touch /tmp/filter-probe
  if systemd-run --wait --unit=nqptp-filter-probe "${properties[@]}" --property=SystemCallErrorNumber=kill chown 0:0 /tmp/filter-probe > run.txt 2>&1; then
    echo "exit 0" >> run.txt
  else
    echo "exit $?" >> run.txt
  fi
  journalctl -u nqptp-filter-probe.service -o cat > journal.txt
  journalctl -k -o short-monotonic > kernel.txt
}

# Interface 5 (the robust mutex), and from here on any system call outside the unit's filter kills
# the daemon (the shipped unit answers EPERM, which a caller might swallow).
step_interface5() {
  mkdir -p "$dropins"
  printf '%s\n' "[Service]" "ExecStart=" "ExecStart=/usr/local/bin/nqptp --interface-version 5" "SystemCallErrorNumber=kill" \
    > "$dropins/50-test-interface-5.conf"
  systemctl daemon-reload
  systemctl restart nqptp
  show MainPID NRestarts ExecStart SystemCallErrorNumber > show.txt
  control 5-0
  "$reader" /nqptp 5 --loop-ms $((V5_S * 1000)) --interval-ms "$SAMPLE_INTERVAL_MS" --clocks > samples.jsonl
}

# A reader takes the lock and is killed holding it: nqptp recovers the lock and publishes on.
step_mutex() {
  show MainPID NRestarts > show-before.txt
  "$reader" /nqptp 5 --hold-ms 60000 > holder.txt &
  local holder=$!
  wait_for 20 holder_locked
  kill -KILL "$holder"
  wait "$holder" || true
  wait_for 30 in_unit_journal "a client died holding the shared memory lock"
  "$reader" /nqptp 5 --loop-ms $((AFTER_S * 1000)) --interval-ms "$SAMPLE_INTERVAL_MS" --clocks > after.jsonl
  show MainPID NRestarts ActiveState > show-after.txt
  journalctl -u nqptp.service -o cat > journal.txt
}

restarted() {
  local pid
  pid=$(prop MainPID)
  [ "$(prop NRestarts)" -gt "$2" ] && [ "$(prop ActiveState)" = active ] && [ "$pid" != "$1" ] && [ "$pid" != 0 ]
}

# The watchdog, shortened by a drop-in: a stopped daemon is restarted and its region is back.
step_watchdog() {
  printf '%s\n' "[Service]" "WatchdogSec=$WATCHDOG_S" > "$dropins/60-test-watchdog.conf"
  systemctl daemon-reload
  systemctl restart nqptp
  show MainPID NRestarts WatchdogUSec > show-before.txt
  local pid restarts
  pid=$(prop MainPID)
  restarts=$(prop NRestarts)
  kill -STOP "$pid"
  wait_for 120 restarted "$pid" "$restarts"
  show MainPID NRestarts ActiveState > show-after.txt
  journalctl -u nqptp.service -o cat > journal.txt
  "$reader" /nqptp 5 > region.json
}

# systemctl stop removes the region.
step_stop() {
  if test -e /dev/shm/nqptp; then echo present; else echo absent; fi > region-before
  systemctl stop nqptp
  show ActiveState Result > show.txt
  if test -e /dev/shm/nqptp; then echo present; else echo absent; fi > region-after
}

step_journal() {
  kill "$(cat "$results/ptp4l.pid")" || true
  journalctl -u nqptp.service --no-pager -o short-monotonic > nqptp.txt
  journalctl -k --no-pager -o short-monotonic > kernel.txt
}

step system step_system
step network step_network
step install step_install
step follow10 step_follow10
step filterprobe step_filterprobe
step interface5 step_interface5
step mutex step_mutex
step watchdog step_watchdog
step stop step_stop
step journal step_journal
