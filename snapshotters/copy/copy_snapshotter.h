// The copy backend: every snapshot is a full copy of its parent's tree (Docker vfs, containerd native).
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "copy" to the registry. Option: threads (copy workers, default one per CPU).
void register_copy(Registry& registry);

// Trial bind mount under `workdir`: what the probe runs.
Availability probe_copy(const std::string& workdir);

}  // namespace cowbench::snap
