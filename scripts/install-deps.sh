#!/usr/bin/env bash
# Installs the Debian packages cowbench builds and runs with; idempotent (only what is missing).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libbpf-dev bpftool
  liburing-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libarchive-dev libssl-dev
  xfsprogs btrfs-progs fuse3 fuse-overlayfs
  e2fsprogs util-linux attr acl kmod
  umoci busybox-static libclang-rt-dev
  python3-jsonschema python3-yaml chromium
)

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
