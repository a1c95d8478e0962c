#!/usr/bin/env bash
# install_test: cowbench as a user installs it. From the build directory BUILD (argument 1) it
#   - installs into a scratch prefix (`cmake --install`): bin/cowbench and the docs, nothing of the
#     tests, benchmarks or fuzzer;
#   - builds the Debian package (`cpack -G DEB`, its output in the scratch directory): named
#     cowbench_VERSION_ARCH.deb, Depends naming the programs cowbench runs and, for every shared
#     library `ldd` finds for the packaged binary, the Debian package that ships it;
#   - unpacks it into a scratch root (`dpkg -x`: nothing is installed on the machine), runs
#     `cowbench doctor` and a tiny run from the unpacked binary and checks the run's results.json;
#   - removes everything (`cowbench gc` on the run's work directory, then the scratch directory).
# Needs root (the run mounts) and dpkg-deb/dpkg-shlibdeps/cpack; exits 77 (CTest: skipped) without.
set -euo pipefail

build=${1:?usage: install_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)

skip() { echo "install_test: skipped: $*"; exit 77; }
die() { echo "install_test: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (the tiny run mounts its container)"
for tool in cmake cpack dpkg dpkg-deb dpkg-query dpkg-shlibdeps ldd readelf python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -x "$build/cowbench" ] || die "$build/cowbench is not built"
[ -f "$build/CPackConfig.cmake" ] || die "$build/CPackConfig.cmake is missing (cmake/cowbench_package.cmake not included?)"

scratch=$(mktemp -d "${TMPDIR:-/var/tmp}/cowbench-install-test.XXXXXX")
root=$scratch/root
installed=$root/usr/bin/cowbench
cleanup() {
  local rc=$?
  if [ -x "$installed" ] && [ -d "$scratch/w" ]; then
    "$installed" gc --workdir "$scratch/w" >"$scratch/gc.log" 2>&1 || { cat "$scratch/gc.log" >&2; rc=1; }
  fi
  if grep -q " $scratch" /proc/mounts; then
    echo "install_test: FAILED: mounts left under $scratch:" >&2
    grep " $scratch" /proc/mounts >&2
    rc=1
  else
    rm -rf "$scratch"
  fi
  exit $rc
}
trap cleanup EXIT

was_installed=$(dpkg-query -W -f='${Status}' cowbench 2>/dev/null || true)
version=$("$build/cowbench" --version)
arch=$(dpkg --print-architecture)

# 1. cmake --install into a scratch prefix: the binary and the docs, nothing else executable.
cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log" 2>&1 ||
  { cat "$scratch/install.log" >&2; die "cmake --install failed"; }
[ -x "$scratch/prefix/bin/cowbench" ] || die "cmake --install put no bin/cowbench"
for doc in README.md results.schema.json results-schema.md; do
  [ -f "$scratch/prefix/share/doc/cowbench/$doc" ] || die "cmake --install put no share/doc/cowbench/$doc"
done
others=$(find "$scratch/prefix" -type f -perm -u+x ! -path "$scratch/prefix/bin/cowbench")
[ -z "$others" ] || die "cmake --install installed other programs (tests, benchmarks or the fuzzer?): $others"
cmp -s "$build/cowbench" "$scratch/prefix/bin/cowbench" || die "the installed bin/cowbench differs from $build/cowbench"

# 2. cpack -G DEB, its staging and output in the scratch directory.
mkdir "$scratch/pkg"
(cd "$scratch/pkg" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/pkg") >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log" >&2; die "cpack -G DEB failed"; }
deb=$scratch/pkg/cowbench_${version}_${arch}.deb
[ -f "$deb" ] || die "cpack made no $(basename "$deb"): $(ls "$scratch/pkg")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = cowbench ] || die "Package is '$(field Package)', not cowbench"
[ "$(field Version)" = "$version" ] || die "Version is '$(field Version)', not $version"
[ "$(field Architecture)" = "$arch" ] || die "Architecture is '$(field Architecture)', not $arch"
for f in Maintainer Section Description Depends; do
  [ -n "$(field "$f")" ] || die "the package has no $f field"
done
# The package names in Depends (each alternative of "a (>= 1) | b", without the version).
depends=$(field Depends | tr ',|' '\n\n' | sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' | sort -u)
has_dep() { grep -qx "$1" <<<"$depends"; }
# The programs cowbench runs: mkfs.xfs, mkfs.btrfs, fuse-overlayfs, fusermount3, unionfs-fuse, modprobe.
for p in xfsprogs btrfs-progs fuse-overlayfs fuse3 unionfs-fuse kmod; do
  has_dep "$p" || die "Depends lacks $p; it is: $(field Depends)"
done
if dpkg-deb -c "$deb" | grep -E '(_test|bench_|fuzz_)' >/dev/null; then
  die "the package carries tests, benchmarks or the fuzzer: $(dpkg-deb -c "$deb" | grep -E '(_test|bench_|fuzz_)')"
fi

# 3. Unpack into a scratch root. Every library the binary links (NEEDED) comes from a package
#    Depends names; every other library ldd loads (theirs) from a package those depend on.
dpkg -x "$deb" "$root"
[ -x "$installed" ] || die "the package has no usr/bin/cowbench"
[ -f "$root/usr/share/doc/cowbench/results.schema.json" ] || die "the package has no usr/share/doc/cowbench/results.schema.json"
# The Debian package that ships a library; under merged /usr a file may be known as /lib/... or /usr/lib/...
owner() {
  local path=$1 real c out
  real=$(readlink -f "$path")
  local candidates=("$path" "$real")
  for c in "$path" "$real"; do
    case "$c" in
      /usr/*) candidates+=("${c#/usr}") ;;
      *) candidates+=("/usr$c") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    if out=$(dpkg -S "$c" 2>/dev/null); then
      out=${out%%: /*}                        # "libc6:amd64: /lib/..." -> "libc6:amd64"
      out=${out%%,*}                          # the first of "a, b"
      echo "${out%%:*}"                       # without the architecture
      return 0
    fi
  done
  return 1
}
# The installed packages that Depends pulls in, Depends included (Depends, Pre-Depends, Provides).
closure=$(field Depends | python3 -c '
import re, subprocess, sys
def names(field):
    return {re.sub(r":.*", "", re.sub(r"\(.*?\)", "", alt)).strip() for dep in field.split(",") for alt in dep.split("|")} - {""}
rows = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n"],
                      capture_output=True, text=True, check=True).stdout.splitlines()
deps, providers = {}, {}
for row in rows:
    pkg, d, prov = row.split("\t")
    deps[pkg] = names(d)
    for v in names(prov):
        providers.setdefault(v, set()).add(pkg)
todo, seen = list(names(sys.stdin.read())), set()
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen.add(p)
    todo.extend(deps.get(p, set()) | providers.get(p, set()))
print("\n".join(sorted(seen)))
')
needed=$(readelf -d "$installed" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')
[ -n "$needed" ] || die "readelf finds no NEEDED libraries in $installed"
nlibs=0
while read -r soname path; do
  pkg=$(owner "$path") || die "no Debian package ships $path (ldd of $installed)"
  if grep -qx "$soname" <<<"$needed"; then
    has_dep "$pkg" || die "the binary links $soname, shipped by $pkg, which Depends does not name: $(field Depends)"
  else
    grep -qx "$pkg" <<<"$closure" || die "ldd loads $path ($pkg), which no package in Depends pulls in"
  fi
  nlibs=$((nlibs + 1))
done < <(ldd "$installed" | sed -nE 's/^[[:space:]]*([^ ]+) => (\/[^ ]+) .*/\1 \2/p; s/^[[:space:]]*(\/[^ ]+) .*/\1 \1/p')
[ "$nlibs" -ge "$(wc -l <<<"$needed")" ] || die "ldd resolved $nlibs libraries, fewer than the binary's NEEDED ($needed)"

# 4. The unpacked binary: doctor, then a tiny run on the copy backend.
[ "$("$installed" --version)" = "$version" ] || die "the unpacked cowbench --version is not $version"
"$installed" doctor --workdir "$scratch/w" >"$scratch/doctor.log" 2>&1 ||
  { cat "$scratch/doctor.log" >&2; die "cowbench doctor failed"; }
grep -q 'fuse-overlayfs' "$scratch/doctor.log" || { cat "$scratch/doctor.log" >&2; die "cowbench doctor names no host checks"; }
"$installed" run --backends copy --workloads startup --repeat 1 --no-warmup \
  --workdir "$scratch/w" --out "$scratch/o" >"$scratch/run.log" 2>&1 ||
  { cat "$scratch/run.log" >&2; die "the tiny run of the unpacked cowbench failed"; }
[ -f "$scratch/o/results.json" ] || die "the tiny run wrote no results.json"
python3 - "$scratch/o/results.json" <<'EOF' || die "results.json of the tiny run is not a run of copy/startup"
import json, sys
with open(sys.argv[1]) as f:
    results = json.load(f)
runs = results.get("runs") or []
measured = [r for r in runs if r.get("backend") == "copy" and r.get("workload") == "startup" and r.get("status") == "ok"]
others = [r for r in runs if r.get("backend") != "copy"]
if not measured or others:
    print(f"runs: {[(r.get('backend'), r.get('workload'), r.get('status')) for r in runs]}", file=sys.stderr)
    sys.exit(1)
EOF

was_installed_after=$(dpkg-query -W -f='${Status}' cowbench 2>/dev/null || true)
[ "$was_installed" = "$was_installed_after" ] || die "the package state on the machine changed: '$was_installed' -> '$was_installed_after'"
waited=$(grep -o 'got the host lock after [0-9.]* s' "$scratch/run.log" || true)
echo "install_test: ${SECONDS} s${waited:+ (the tiny run $waited)}"
echo "install_test: ok: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB), Depends: $(field Depends)"
echo "install_test: $nlibs shared libraries, each from Depends or what it pulls in; doctor and a copy/startup run from the unpacked binary"
