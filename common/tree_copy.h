// Copies a directory tree with everything a container layer carries, as fast as the hardware allows.
#pragma once

#include <cstdint>
#include <string>

namespace cowbench {

struct TreeCopyOptions {
  enum class Data {
    kCopy,     // copy file data (copy_file_range / io_uring), keeping sparse holes
    kReflink,  // share file data with FICLONE (XFS reflink=1, btrfs); fails where unsupported
    kHoles,    // no data: every regular file is a hole of its size (trees of stubs whose data lives
               // elsewhere; a file system that reports no holes, as EROFS, must not make them zeros)
  };
  Data data = Data::kCopy;
  unsigned threads = 0;  // threads that copy, the calling thread included; 0 = one per online CPU
};

struct TreeCopyStats {
  uint64_t files = 0;      // regular files created (not counting extra hard links)
  uint64_t dirs = 0;       // directories created, the root included
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;  // extra names of an already-copied inode
  uint64_t specials = 0;   // device nodes, fifos, sockets
  uint64_t bytes = 0;      // file bytes copied or cloned (apparent size)
};

// Copies the tree at `src` into `dst`, which must be an existing empty directory (it takes
// src's mode, owner, times and xattrs). Preserves modes, owners, timestamps (ns), xattrs
// (trusted.*, security.*, user.*; overlay whiteouts are 0/0 char devices and survive),
// symlinks, hard links, device nodes, fifos and sparse holes. Never follows symlinks and
// never crosses into another mount below `src`. Throws cowbench::Error naming the path that
// failed; a partial copy is left for the caller to remove. Errors: a non-empty dst or a mount
// point below src (named) is kFailedPrecondition, dst inside src kInvalidInput, kReflink where
// the file system cannot clone kUnsupported, anything else kFailure with the errno
// ("copy /src/a to /dst/a: No space left on device"). The first error stops all threads.
TreeCopyStats copy_tree(const std::string& src, const std::string& dst, const TreeCopyOptions& options = {});

}  // namespace cowbench
