// The fuse-overlayfs backend: the overlay layer layout served by the fuse-overlayfs daemon, one per mount.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "fuse-overlayfs" to the registry. Its mounts are
// Mount{"fuse3.fuse-overlayfs", "fuse-overlayfs", {lowerdir=, upperdir=, workdir=, options}},
// performed by mount_all (common/fuse_mount.h). Options (see the BackendSpec): fsync,
// writeback, threaded, timeout, fast_ino, noacl, static_nlink, squash_to_root — passed to
// the daemon.
void register_fuse_overlayfs(Registry& registry);

// Checks root, the fuse-overlayfs program ($COWBENCH_FUSE_OVERLAYFS or $PATH) and /dev/fuse,
// then mounts a scratch fuse-overlayfs under `workdir` with a copy-up: what the probe runs.
Availability probe_fuse_overlayfs(const std::string& workdir);

}  // namespace cowbench::snap
