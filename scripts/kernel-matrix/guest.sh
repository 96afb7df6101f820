#!/bin/bash
# PID 1 inside a kernel-matrix guest, after switch_root into the overlay of the host's root file system.
# Mounts what a Debian system would have, then runs each test file of the job with `node --test`,
# one at a time with a time limit, and writes per-file results to the results share. Then powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
R=/mnt/matrix-results
# shellcheck source=/dev/null
. "$R/job.env" # ROOT, TIMEOUT, BUDGET, PATIENCE, KCONFIG, FILES (array)

poweroff_now() {
  sync
  echo o > /proc/sysrq-trigger
  sleep 60
}
trap poweroff_now EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# Fresh /tmp and /run: the host's are visible read-only through the overlay and mean nothing here.
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# cgroup v2 where Debian puts it; the BPF file systems where the kernel documents them.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security
# kconfig externs read /boot/config-$(uname -r); Debian kernels have no /proc/config.gz.
cp "$KCONFIG" "/boot/config-$(uname -r)"
ip link set lo up
hostname "matrix-$(uname -r | tr -c "a-zA-Z0-9\n" -)"

echo "matrix-guest: kernel $(uname -r), lsm=$(cat /sys/kernel/security/lsm 2>/dev/null), ${#FILES[@]} files, ${TIMEOUT}s each"
mkdir -p "$R/logs"
: > "$R/results.tsv"
cd "$ROOT" || exit 1
# BUDGET (seconds, 0 = none) bounds the whole run: files that would start after it are not run, and
# a file never gets more than what is left of it.
deadline=$(($(date +%s) + BUDGET))
for f in "${FILES[@]}"; do
  name=$(basename "$f" .js)
  limit=$TIMEOUT
  if [ "$BUDGET" -gt 0 ]; then
    left=$((deadline - $(date +%s)))
    if [ "$left" -le 0 ]; then
      echo "matrix-guest: <<< $name not-run (the ${BUDGET}s budget is spent)"
      printf '%s\t%s\t%s\t%s\n' "$f" not-run 0 - >> "$R/results.tsv"
      continue
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  echo "matrix-guest: >>> $name"
  start=$(date +%s%N)
  # timeout puts the file's node processes in their own group and kills the whole group.
  # Deadlines in the tests scale by this (test/helpers PATIENCE): TCG runs everything 6-30x slower.
  CI=true BPFKIT_TEST_PATIENCE=$PATIENCE timeout -k 10 "$limit" node --test --test-reporter=spec "$f" < /dev/null 2>&1 \
    | tee "$R/logs/$name.log" > /dev/console
  rc=${PIPESTATUS[0]}
  ms=$((($(date +%s%N) - start) / 1000000))
  case $rc in
    0) status=pass ;;
    124 | 137) status=timeout ;;
    *) status=fail ;;
  esac
  echo "matrix-guest: <<< $name $status rc=$rc ${ms}ms"
  printf '%s\t%s\t%s\t%s\n' "$f" "$status" "$ms" "$rc" >> "$R/results.tsv"
done
echo ok > "$R/done"
