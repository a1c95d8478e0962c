#!/usr/bin/env bash
# run_build_test: the build `make run` makes on a fresh clone (cmake/run_build.cmake: unity
# batches, precompiled headers, no tests) still compiles, so that a name two files of one batch
# both define, or a header a file forgot and the batch happened to bring, cannot break the
# README's first command while the test build (one translation unit per file) passes.
# Arguments: the source directory and a scratch parent directory. The build goes into a
# temporary directory there and is removed; the binary it makes must answer --version and --help.
set -euo pipefail

src=${1:?usage: run_build_test.sh SOURCE_DIR SCRATCH_PARENT}
parent=${2:?usage: run_build_test.sh SOURCE_DIR SCRATCH_PARENT}
die() { echo "run_build_test: FAILED: $*" >&2; exit 1; }

command -v ninja >/dev/null || { echo "run_build_test: skipped: ninja is not installed"; exit 77; }
mkdir -p "$parent"
dir=$(mktemp -d "$parent/run-build-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT

cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -C "$src/cmake/run_build.cmake" >"$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log" >&2; rm -f "$dir.configure.log"; die "configure with cmake/run_build.cmake failed"; }
rm -f "$dir.configure.log"
grep -q '^COWBENCH_UNITY:BOOL=ON$' "$dir/CMakeCache.txt" || die "cmake/run_build.cmake did not turn COWBENCH_UNITY on"
grep -q '^COWBENCH_BUILD_TESTS:BOOL=OFF$' "$dir/CMakeCache.txt" || die "cmake/run_build.cmake did not turn the tests off"
cmake --build "$dir" --target cowbench >"$dir/build.log" 2>&1 || { tail -40 "$dir/build.log" >&2; die "the cowbench target does not build as make run builds it"; }
# The unity translation units and the precompiled header are what this build is for: both made.
ls "$dir"/common/CMakeFiles/cowbench_common.dir/cmake_pch.hxx.gch >/dev/null 2>&1 || die "no precompiled header was made"
ls "$dir"/reports/CMakeFiles/cowbench_reports.dir/Unity/unity_0_cxx.cxx >/dev/null 2>&1 || die "no unity translation unit was made"
"$dir/cowbench" --version >/dev/null || die "the binary does not answer --version"
"$dir/cowbench" --help | grep -q "run" || die "the binary's --help names no run command"
echo "run_build_test: make run's build of cowbench compiles and runs"
