#!/bin/sh
# Runs the layer-reader fuzzer: run_fuzz.sh FUZZER CORPUS_TOOL WORKDIR SECONDS. The corpus in WORKDIR/corpus grows across runs.
set -eu
fuzzer=$1 corpus_tool=$2 work=$3 seconds=${4:-20}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/corpus" "$work/artifacts"
rm -rf "$work/seeds"
"$corpus_tool" "$work/seeds"
exec "$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -dict="$here/layer.dict" -artifact_prefix="$work/artifacts/" "$work/corpus" "$work/seeds"
