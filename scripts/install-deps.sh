#!/usr/bin/env bash
# Installs the Debian packages cowbench builds and runs with; idempotent (only what is missing).
#
#   install-deps.sh run   what `make run` needs: build the cowbench binary (with its eBPF tracer)
#                         and run the default matrix on every backend
#   install-deps.sh all   (the default) also what the tests, benchmarks and fuzzer need (`make test`)
set -euo pipefail

# The cowbench binary: toolchain, the libraries it links, the BPF tracer's toolchain, the programs
# the backends run (mkfs.xfs, mkfs.btrfs, fuse-overlayfs, fusermount3, unionfs-fuse, modprobe) and the static
# busybox the synthetic images carry as their shell.
run_packages=(
  build-essential cmake ninja-build pkg-config
  clang libbpf-dev bpftool
  liburing-dev libfmt-dev libcli11-dev nlohmann-json3-dev libarchive-dev libssl-dev
  xfsprogs btrfs-progs fuse3 fuse-overlayfs unionfs-fuse kmod busybox-static
)

# Only the tests, benchmarks and fuzzer: GoogleTest and Google Benchmark, libFuzzer and the LLVM
# tools, the programs the tests drive (umoci, mmdebstrap for the real Debian image, python3's JSON
# Schema and YAML checks, Chromium for the HTML screenshot test, the attr/acl/e2fsprogs/util-linux
# tools), erofs-utils (mkfs.erofs, for the erofs backend the conformance suite runs; not in the
# default matrix) and git.
test_packages=(
  git llvm libclang-rt-dev erofs-utils
  libgtest-dev libgmock-dev libbenchmark-dev
  e2fsprogs util-linux attr acl
  umoci mmdebstrap python3-jsonschema python3-yaml chromium
)

group="${1:-all}"
case "$group" in
  run) packages=("${run_packages[@]}") ;;
  all) packages=("${run_packages[@]}" "${test_packages[@]}") ;;
  *)
    echo "install-deps: unknown group '$group' (run: what \`make run\` needs; all: also the tests)" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 2
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
