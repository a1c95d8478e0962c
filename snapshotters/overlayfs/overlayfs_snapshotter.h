// The overlayfs backend: kernel overlay, committed parents as lower layers, upper+work per active snapshot.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "overlayfs" to the registry. Options: metacopy, index, redirect_dir, volatile
// (passed to the kernel as overlay mount options).
void register_overlayfs(Registry& registry);

// Trial mount of a scratch overlay under `workdir`, with a copy-up: what the probe runs.
Availability probe_overlayfs(const std::string& workdir);

}  // namespace cowbench::snap
