// One-layer images: a rootfs tarball (rootfs:FILE) and a directory (dir:PATH).
#pragma once

#include <string>

#include "images/image.h"

namespace cowbench::img {

// rootfs:FILE.tar[.gz|.zst] — what mmdebstrap, debootstrap or `docker export` write: the
// whole file system in one tar (a "./" root entry included). Opening reads the tar once
// through LayerReader, so every entry gets the layer checks (paths, sizes, types) before
// anything is applied, and the digests are measured: the layer's diff_id (hence its chain
// id, the cache key) is the sha256 of the uncompressed tar, so a changed file is a new
// layer. The config is made up: this host's platform, no command. kInvalidInput when the
// file does not exist or is not a tar.
Image open_rootfs_image(const ImageRef& ref);

// dir:PATH — a directory tree as the one layer. Opening packs it (write_dir_layer, device
// nodes included: the import's device policy decides on them as for any layer) into
// CACHE_DIR/dir/<digest of the path>.tar, replacing the previous pack of the same path, and
// opens that like a rootfs tar. The tree is walked on every open, so the cache key (the
// tar's diff_id) follows its content: any change of a file's data, name, owner, mode, mtime
// or xattrs gives another chain id. kInvalidInput when PATH does not exist or is not a
// directory.
Image open_dir_image(const ImageRef& ref, const std::string& cache_dir);

}  // namespace cowbench::img
