// Copy-ups by how a file's data reached the writable layer: copied, cloned, or not at all (metadata only).
#pragma once

#include <cstdint>

namespace cowbench {

// One kind: how many copied-up files ended up that way and their data bytes.
struct CopyupKind {
  int64_t events = 0;
  int64_t bytes = 0;
};

// The copy-ups of one run (traced, or read from the writable layer afterwards) split by how
// each file's data got there, as it stands at the end:
//   data      the data was copied (read from the lower file, written to a new upper one);
//   cloned    the data was cloned (upper and lower on one XFS reflink=1 or btrfs: the upper
//             file shares the lower's extents; overlayfs's vfs_clone_file_range, a FICLONE);
//   metadata  only the metadata (overlay metacopy=on, trusted.overlay.metacopy): no data bytes.
// A file copied up metadata-only whose data followed later in the run counts once, under the
// kind of that later copy. events sum to the run's copy-ups, bytes to its copy-up bytes.
// measured = false: not known (tracing off or not observable, a backend that copies no file up
// counts 0 of each but is measured).
struct CopyupKinds {
  bool measured = false;
  CopyupKind data, cloned, metadata;
};

}  // namespace cowbench
