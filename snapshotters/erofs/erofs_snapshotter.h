// The erofs backend (the model of containerd's EROFS snapshotter): each committed layer an EROFS image, mounted read-only, stacked as overlayfs lower layers.
#pragma once

#include "snapshotters/registry.h"

namespace cowbench::snap {

// Adds "erofs" to the registry. The layout is the overlay layout (overlay_layout.h): an
// active snapshot's snapshots/<id>/fs is its overlayfs upper dir (with work/ beside it), or
// the whole tree of a parentless one. Committing it builds snapshots/<id>/layer.erofs from
// that directory with mkfs.erofs (erofs_image.h: xattrs and overlay whiteouts kept as they
// are), then empties fs/ — as containerd, only the image is kept — and fs/ becomes the
// mount point of the image. layer.json beside it keeps what the directory held (bytes and
// inodes), which usage() of the committed snapshot reports with the image's size.
//
// Mounts: an active snapshot or view on committed parents is an overlay whose lower layers
// are the parents' fs/ dirs, each parent's image mounted there read-only first (ErofsMount:
// file-backed where the kernel takes a file, 6.12+, else a loop device in direct-I/O mode).
// A layer is mounted once, on first need, and shared by every snapshot above it; the backend
// counts its users, and unmounts it when the layer is removed or at close(). A truncated or
// corrupt image fails the prepare/view/mounts call with kInvalidInput naming the image, with
// nothing mounted.
//
// Availability: root, erofs in the kernel, mkfs.erofs (erofs-utils), then a trial image
// mounted and an overlay over it that copies a file up (probe_erofs_backend).
void register_erofs(Registry& registry);

// The probe: probe_erofs (erofs_image.h), then a trial overlay with an EROFS lower layer and
// a copy-up into an upper on the work directory's file system.
Availability probe_erofs_backend(const std::string& workdir);

}  // namespace cowbench::snap
