// The overlayfs backend: kernel overlay, committed parents as lower layers, upper+work per active snapshot.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "overlayfs" to the registry. Options: metacopy, index, redirect_dir, volatile
// (passed to the kernel as overlay mount options; a read-only view of a chain is mounted with
// those that decide how lower layers read, metacopy and redirect_dir: lower_layer_options); fs=xfs|btrfs keeps every layer on one
// cloning file system, so that overlayfs copies up by cloning (vfs_clone_file_range): the
// work directory's own when it is that file system and clones, else a scratch image on a loop
// device (scratch_fs.h; with its size, cache, mkfs and loop options, which need fs). Without
// fs the layers live on the work directory's file system, whatever it is. Errors at create:
// kInvalidInput for a bad value or a scratch option without fs; kUnsupported naming what is
// missing (mkfs program, the file system in the kernel, loop devices), nothing left mounted.
void register_overlayfs(Registry& registry);

// Trial mount of a scratch overlay under `workdir`, with a copy-up: what the probe runs.
Availability probe_overlayfs(const std::string& workdir);

// The same trial with the overlay mount options of `options` (BackendSpec::try_options): when the
// kernel refuses them, the reason names the option it refuses (tried alone, then all together:
// some conflict only together, such as metacopy=on with redirect_dir=off) and the kernel's words.
Availability try_overlayfs_options(const std::string& workdir, const BackendOptions& options);

// The overlay mount options of backend `options`: "volatile" for volatile=on (nothing for off),
// K=V for the others. Throws kInvalidInput for an unknown option (check_options), a volatile
// other than on|off, or a value overlay option syntax cannot carry (empty, ',' or ':').
std::vector<std::string> overlay_mount_options(const BackendOptions& options);

}  // namespace cowbench::snap
