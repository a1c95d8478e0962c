#!/bin/bash
# Why `cowbench run` starts from dropped caches: the time to create 50,000 empty files in DIR
# right after deleting 200,000 there, with nothing in between (none), after sync (sync), and
# after sync + drop_caches (drop). On ext4 without a journal, none and sync are slow: ext4
# skips every inode deleted in the last minute whose inode-table block is still cached.
#   bench/recent_deletion.sh DIR [MODE...]      (root for drop; default modes: none sync drop)
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,6p "$0" >&2; exit 2; }
base=$1/recent-deletion.$$
shift
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(none sync drop)
trap 'rm -rf "$base"' EXIT
files() {  # DIR DIRS: DIRS directories of 1000 empty files
  python3 -c "
import os, sys
for i in range(int(sys.argv[2])):
    d = os.path.join(sys.argv[1], str(i)); os.makedirs(d)
    for j in range(1000): open(os.path.join(d, str(j)), 'w').close()" "$1" "$2"
}
for mode in "${modes[@]}"; do
  rm -rf "$base"; mkdir -p "$base/old" "$base/new"
  files "$base/old" 200
  sync; sleep 2
  rm -rf "$base/old"
  case $mode in
    none) ;;
    sync) sync ;;
    drop) sync; echo 3 > /proc/sys/vm/drop_caches ;;
    *) echo "recent_deletion: unknown mode '$mode' (none, sync, drop)" >&2; exit 2 ;;
  esac
  start=$(date +%s.%N)
  files "$base/new" 50
  echo "$mode: created 50000 files in $(echo "$(date +%s.%N) - $start" | bc) s"
done
