// Ground truth for copy-up: what the writable layer of a finished container actually holds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/mount.h"

namespace cowbench {

// The regular files of the image below a container: absolute path inside it → size.
using LowerFiles = std::map<std::string, int64_t>;

struct CopyupTruth {
  int64_t files = 0;  // regular files copied up (file-granular) or CoW'd (extent-granular)
  int64_t bytes = 0;  // bytes copied: their lower size (file-granular; the upper size for
                      // a renamed file) or their exclusive bytes (extent-granular)
  int64_t metadata_only = 0;  // file-granular: of `files`, those copied up metadata-only (overlay
                              // metacopy=on: trusted.overlay.metacopy, no data bytes)
};

// The directory that receives a container's writes, read off its mounts: the overlay
// upperdir (kernel or FUSE), else the bind mount's source. Empty if there is none.
std::string writable_dir(const std::vector<Mount>& mounts);

// File-granular backends: the regular files of `upper` that came from a lower layer — they
// carry an origin xattr set at copy-up and kept by renames (trusted.overlay.origin; for
// fuse-overlayfs user.fuseoverlayfs.origin) or sit at a path that exists below
// (`lower`).
CopyupTruth file_copyups(const std::string& upper, const LowerFiles& lower);

// Extent-granular backends (reflink, btrfs): the regular files of the container's tree
// `root` that exist below (`lower`) and now hold data extents of their own (FIEMAP
// without the shared flag), and those exclusive bytes. Data btrfs keeps inline in metadata
// is never flagged shared, so inline extents are left out: writes to files of a few KiB
// that btrfs stores inline are not seen.
CopyupTruth extent_copyups(const std::string& root, const LowerFiles& lower);

}  // namespace cowbench
