#!/bin/bash
# The regression gate's campaign (issue 15; figures in docs/results-schema.md): default runs
# back to back, some with a real slowdown, each into OUTDIR/NAME. Compare them afterwards with
# scripts/gate-analyze.py. Needs root; nothing else should run on the host meanwhile.
#
#   scripts/gate-campaign.sh COWBENCH OUTDIR RUN...
#
# RUN is NAME (an identical default run) or NAME@KNOB:
#   NAME@cpu=F      fuse-overlayfs's daemon limited to F CPUs by a cgroup (cpu controller,
#                   v1 cpu.cfs_quota_us or v2 cpu.max, 10 ms periods), through a wrapper that
#                   $COWBENCH_FUSE_OVERLAYFS points at
#   NAME@volatile   overlayfs mounted with volatile=on (the base of the 2x example)
#   NAME@ci         the CI profile: --ci --budget 10m
# WORKDIR (default /var/tmp/cowbench-work) is shared by all runs; RUN_ARGS are added to each.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,15p "$0" >&2; exit 2; }
cowbench=$(realpath "$1") out=$2
shift 2
workdir=${WORKDIR:-/var/tmp/cowbench-work}
mkdir -p "$out"
cg=""
cleanup() {
  [ -n "$cg" ] && [ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true
  rm -f "$out/.fuse-overlayfs-limited"
}
trap cleanup EXIT

# A cgroup limited to F CPUs; prints its directory.
limited_cgroup() {
  local f=$1 quota
  quota=$(awk -v f="$f" 'BEGIN { printf "%d", f * 10000 }')
  if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cgroup.procs ]; then
    mkdir -p /sys/fs/cgroup/cpu/cowbench-gate
    echo 10000 > /sys/fs/cgroup/cpu/cowbench-gate/cpu.cfs_period_us
    echo "$quota" > /sys/fs/cgroup/cpu/cowbench-gate/cpu.cfs_quota_us
    echo /sys/fs/cgroup/cpu/cowbench-gate
  elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
    mkdir -p /sys/fs/cgroup/cowbench-gate
    echo "$quota 10000" > /sys/fs/cgroup/cowbench-gate/cpu.max
    echo /sys/fs/cgroup/cowbench-gate
  else
    echo "gate-campaign: no cgroup cpu controller (v1 cpu or v2 cpu) to limit the daemon" >&2
    exit 1
  fi
}

for spec in "$@"; do
  name=${spec%%@*} knob=""
  [ "$spec" != "$name" ] && knob=${spec#*@}
  args=(run --workdir "$workdir" --out "$out/$name")
  envs=()
  case $knob in
    "") ;;
    cpu=*)
      cg=$(limited_cgroup "${knob#cpu=}")
      wrapper=$out/.fuse-overlayfs-limited
      printf '#!/bin/sh\necho $$ > %s/cgroup.procs\nexec %s "$@"\n' "$cg" "$(command -v fuse-overlayfs)" > "$wrapper"
      chmod +x "$wrapper"
      envs=(COWBENCH_FUSE_OVERLAYFS="$wrapper")
      ;;
    volatile) args+=(--backend-opt overlayfs:volatile=on) ;;
    ci) args+=(--ci --budget 10m) ;;
    *) echo "gate-campaign: unknown knob '$knob' in $spec" >&2; exit 2 ;;
  esac
  echo "gate-campaign: $(date -u +%H:%M:%S) $spec" >&2
  start=$(date +%s)
  env "${envs[@]}" "$cowbench" "${args[@]}" ${RUN_ARGS:-} > "$out/$name.log" 2>&1 || echo "gate-campaign: $spec exited $?" >&2
  echo "gate-campaign: $spec took $(( $(date +%s) - start )) s" >&2
  if [ -n "$cg" ]; then rmdir "$cg" 2>/dev/null || true; cg=""; fi
done
