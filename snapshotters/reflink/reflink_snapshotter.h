// The reflink backend: every snapshot is a per-file FICLONE clone of its parent's tree, on XFS (reflink=1) or btrfs.
#pragma once

#include <optional>
#include <string>

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "reflink" to the registry. Options: fs (xfs|btrfs: the scratch file system made when
// the root's own cannot clone), size, cache, mkfs, loop (direct|buffered: the scratch
// image's loop device mode) (see scratch_fs.h). The probe runs
// reflink_trial on the workdir's file system, or on a tiny scratch XFS.
void register_reflink(Registry& registry);

// Clones a small file with FICLONE inside `dir` (and removes both): nullopt when the file
// system holding `dir` shares data between files, else why not.
std::optional<std::string> reflink_trial(const std::string& dir);

}  // namespace cowbench::snap
