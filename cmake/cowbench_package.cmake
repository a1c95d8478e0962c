# Packaging: `cpack -G DEB` in a build directory makes cowbench_VERSION_ARCH.deb from the install
# rules of the top-level CMakeLists.txt (the binary and its docs; nothing of the tests,
# benchmarks or fuzzer).
#
# Depends: the shared libraries of the binary, computed by dpkg-shlibdeps (libbpf1, liburing2,
# libfmt9, libarchive13, libssl3, libstdc++6, ...), plus the programs cowbench runs: mkfs.xfs and
# mkfs.btrfs for the reflink/btrfs scratch images, fuse-overlayfs and fusermount3 (checked by
# `cowbench doctor`) for the fuse-overlayfs backend, unionfs-fuse for the unionfs-fuse backend,
# modprobe to load overlay.
# Recommends: the static busybox that the synthetic images copy in as their shell when the host
# has one, and erofs-utils (mkfs.erofs) for the erofs backend, which runs only when named. Suggests: tools that make images cowbench reads (an OCI layout, a Debian rootfs).

set(CPACK_PACKAGE_NAME cowbench)
set(CPACK_PACKAGE_VENDOR "cowbench")
set(COWBENCH_PACKAGE_MAINTAINER "cowbench maintainers <maintainers@users.noreply.r-seed-d5f4c135.example>"
    CACHE STRING "The Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${COWBENCH_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "copy-on-write snapshot storage benchmarks for containers")
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "cowbench runs the same container workloads on several snapshotter backends"
  "(kernel overlayfs, fuse-overlayfs, unionfs-fuse, XFS/btrfs reflink clones, btrfs subvolumes,"
  "a full copy) in real container sandboxes and measures what each costs: wall"
  "time, copy-up events and bytes, writable-layer and shared bytes on disk, page"
  "cache. An eBPF tracer attributes every copy-up and block CoW to the system call"
  "that caused it. Results go to results.json and Markdown, CSV and HTML reports;"
  "`cowbench compare` is a regression gate for CI.")
set(CPACK_STRIP_FILES ON)  # the RelWithDebInfo binary, without its debug sections

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # cowbench_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "xfsprogs, btrfs-progs, fuse-overlayfs, fuse3, unionfs-fuse, kmod")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "busybox-static, erofs-utils")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "umoci, skopeo, mmdebstrap")

set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
