// The btrfs backend: every snapshot is a btrfs subvolume, a snapshot of its parent's (containerd's btrfs snapshotter model).
#pragma once

#include <optional>
#include <string>

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "btrfs" to the registry. Options: size, cache, mkfs, loop (direct|buffered: the scratch
// image's loop device mode) (see scratch_fs.h). The probe runs btrfs_trial on the workdir's
// file system, or on a tiny scratch btrfs.
void register_btrfs(Registry& registry);

// Creates a subvolume inside `dir`, snapshots it read-only and deletes both: nullopt when
// the file system holding `dir` is a btrfs that does this, else why not.
std::optional<std::string> btrfs_trial(const std::string& dir);

}  // namespace cowbench::snap
