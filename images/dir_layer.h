// Packs a directory tree into a layer tar (dir: images, `cowbench image pack --layer DIR`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/apply.h"
#include "images/layout_writer.h"

namespace cowbench::img {

struct DirLayerOptions {
  // Device nodes in the tree: kSkip leaves them out (counted), kRefuse fails naming the
  // first, kAllow writes them as device entries.
  DevicePolicy devices = DevicePolicy::kSkip;
};

struct DirLayerStats {
  uint64_t entries = 0, files = 0, dirs = 0, symlinks = 0, hardlinks = 0, specials = 0;
  uint64_t file_bytes = 0;
  uint64_t skipped_devices = 0;                   // left out by the policy
  std::vector<std::string> skipped_device_paths;  // the first few (kMaxNamedDevices), "/dev/null"
  uint64_t skipped_sockets = 0;                   // a tar cannot hold a socket
};

// Writes the tree below `dir` (the root itself as "./" first, then every entry, children
// sorted by name, depth first) into `out`: regular files with their data, directories,
// symlinks, fifos, hard links (a second name of an inode already written), owners, modes,
// nanosecond mtimes and xattrs. Symlinks are written, never followed; mount points below
// `dir` are descended like any directory. The same tree gives the same bytes. Errors:
// kInvalidInput when `dir` does not exist or is not a directory (naming it), or for a
// device node under kRefuse; kFailure for a read error, naming the path.
DirLayerStats write_dir_layer(const std::string& dir, LayerWriter& out, const DirLayerOptions& options = {});

}  // namespace cowbench::img
