// The unionfs-fuse backend: the classic UnionFS model — read-only branches under one writable branch, copy-on-write — served by Debian's unionfs-fuse daemon.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "unionfs-fuse" to the registry. The layout is the overlay layout (overlay_layout.h,
// without work dirs): snapshots/<id>/fs is a snapshot's branch. An active snapshot on parents
// mounts Mount{"fuse.unionfs-fuse", "unionfs-fuse", {lowerdir=<parents' branches, nearest
// first>, upperdir=<its own branch>, cow, hide_meta_files, options}}, which
// mount_all (common/fuse_mount.h) turns into `unionfs-fuse -o cow,... U=RW:P1=RO:P2=RO... M`;
// a view has no upperdir and is mounted read-only; a snapshot without parents, and a view of
// one, are bind mounts, as in the overlay layout.
//
// Copy-on-write: with -o cow the daemon copies a file of a read-only branch whole into the
// writable branch (at its own path, creating the parent directories) before its first write,
// truncate, chmod, chown, utimes, setxattr, link or rename; a directory it renames or changes
// is copied with everything below it in the branch it came from. Deletions: a name of a
// read-only branch that the container deletes or renames away gets a whiteout in the writable
// branch, <branch>/.unionfs-fuse/<path>_HIDDEN~ (a file for a file, a directory for a directory),
// which hides that path and everything below it in the branches *below* the branch that holds
// it; a name created again removes its file whiteout, and a directory made again keeps the
// whiteout of the old one, so the old directory's contents stay hidden under the new one.
//
// Commit: nothing to convert. unionfs-fuse reads the .unionfs-fuse whiteouts of every branch, the
// read-only ones included, and a branch's own entries are found before its whiteouts are
// consulted, so an active snapshot's writable branch, .unionfs-fuse and all, is already a
// correct read-only layer for the snapshots above it: commit just marks it committed (the
// store's default commit_storage). (Translating to overlay whiteouts, char 0:0 devices, would
// need a translation back for every later mount, since unionfs-fuse does not read those.)
// hide_meta_files keeps .unionfs-fuse (and libfuse's .fuse_hidden* files) out of directory
// listings; a lookup of /.unionfs-fuse still finds it. (unionfs-fuse 1.0 names
// the directory .unionfs-fuse, its manual .unionfs: kUnionfsMetaDir in common/fuse_mount.h.)
//
// Known limits of unionfs-fuse 1.0 (it passes every conformance case): a renamed directory
// takes only the contents of the branch it was found in (entries of deeper branches stay
// behind, hidden); copy-up keeps mode, owner and mtime in whole seconds; Debian's build has no
// xattr support (setxattr: ENOTSUP); with hide_meta_files it prints two debug lines to stderr
// for every directory entry it lists (filtered from error messages).
//
// Options (see the BackendSpec): max_files, statfs_omit_ro, and libfuse's direct_io,
// kernel_cache, attr_timeout, entry_timeout, negative_timeout — passed to the daemon.
void register_unionfs_fuse(Registry& registry);

// Checks root, the unionfs-fuse program ($COWBENCH_UNIONFS_FUSE or $PATH) and /dev/fuse, then
// mounts a scratch unionfs-fuse under `workdir` with a copy-up: what the probe runs.
Availability probe_unionfs_fuse(const std::string& workdir);

}  // namespace cowbench::snap
