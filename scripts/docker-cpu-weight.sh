#!/usr/bin/env bash
# Give Docker's containers, together, the CPU weight of one busy thread per core (run as root).
#
#   scripts/docker-cpu-weight.sh [CORES]        # default: nproc
#
# Why: with dockerd's cgroupfs driver every container sits in one parent cgroup, "docker", whose
# CPU weight is that of a single nice-0 thread (cgroup v1 cpu.shares 1024, v2 cpu.weight 100)
# against each process outside it. On a host where other jobs keep the cores busy, the
# containerised receiver (two torch threads here) then gets a fraction of what the same receiver
# gets natively: measured 0.69x the native link's images/s with a training job on both cores
# (docs/link.md, "Throughput: containers vs the native link"). Idle hosts are unaffected.
# The setting lasts until dockerd or the host restarts. With the systemd cgroup driver the
# containers sit in system.slice instead: `systemctl set-property system.slice CPUWeight=...`.
set -euo pipefail
cores="${1:-$(nproc)}"
[[ "$cores" =~ ^[1-9][0-9]*$ ]] || { echo "error: CORES must be a positive integer, got '$cores'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: needs root (it writes under /sys/fs/cgroup)" >&2; exit 1; }
if [ -d /sys/fs/cgroup/cpu ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then     # cgroup v1
  mkdir -p /sys/fs/cgroup/cpu/docker
  echo $((1024 * cores)) > /sys/fs/cgroup/cpu/docker/cpu.shares
  echo "cgroup v1: /sys/fs/cgroup/cpu/docker/cpu.shares = $(cat /sys/fs/cgroup/cpu/docker/cpu.shares)"
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then                                  # cgroup v2
  mkdir -p /sys/fs/cgroup/docker
  weight=$((100 * cores)); [ "$weight" -le 10000 ] || weight=10000
  echo "$weight" > /sys/fs/cgroup/docker/cpu.weight
  echo "cgroup v2: /sys/fs/cgroup/docker/cpu.weight = $(cat /sys/fs/cgroup/docker/cpu.weight)"
else
  echo "error: no cgroup cpu controller under /sys/fs/cgroup" >&2; exit 1
fi
