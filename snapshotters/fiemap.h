// Shared and exclusive data extents of files and trees (FIEMAP), for reflink/btrfs usage and per-run disk metrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cowbench::snap {

struct ExtentUsage {
  uint64_t exclusive_bytes = 0;  // data only these files reference, plus what non-regular inodes allocate
  uint64_t shared_bytes = 0;     // data extents the file system flags FIEMAP_EXTENT_SHARED
  uint64_t extents = 0;          // data extents seen
  uint64_t shared_extents = 0;
  uint64_t inline_bytes = 0;  // of exclusive_bytes, data kept inline in metadata (btrfs small files)
  uint64_t inodes = 0;  // inodes, hard links counted once, the root included

  ExtentUsage& operator+=(const ExtentUsage& o);
};

// The data extents of one open regular file (FS_IOC_FIEMAP with FIEMAP_FLAG_SYNC, so that
// delayed allocations are resolved first); `what` names it in errors. Lengths are those of
// the file's mappings: a clone sharing half of an extent counts only that half. A file
// system without FIEMAP counts the file's allocated blocks as exclusive. btrfs reports data
// kept inline in metadata (small files) without the shared flag, so it counts as
// exclusive even in a snapshot. inodes is 1.
ExtentUsage file_extent_usage(int fd, const std::string& what);

// One data extent of a file as FIEMAP reports it.
struct Extent {
  uint64_t logical = 0;   // file offset, bytes
  uint64_t length = 0;    // bytes
  uint32_t flags = 0;     // FIEMAP_EXTENT_*
  uint64_t physical = 0;  // byte address on the device (0 where FIEMAP_EXTENT_UNKNOWN or inline)
  bool shared() const;    // FIEMAP_EXTENT_SHARED
  bool inline_data() const;  // FIEMAP_EXTENT_DATA_INLINE (btrfs small files)
  bool unwritten() const;    // FIEMAP_EXTENT_UNWRITTEN (preallocated, reads as zeroes)
};

// The data extents of one open regular file, in file order, into `out` (FS_IOC_FIEMAP; with
// `sync`, FIEMAP_FLAG_SYNC first flushes delayed allocations). False when the file system has
// no FIEMAP; throws on other errors (`what` names the file).
bool file_extents(int fd, const std::string& what, std::vector<Extent>& out, bool sync = true);

// Walks `path` without following symlinks or crossing into other mounts (nor btrfs
// subvolumes below it) and sums file_extent_usage of every regular file, each inode once;
// other inodes (directories, symlinks) add their allocated blocks as exclusive bytes.
ExtentUsage extent_usage(const std::string& path);

// The bytes the trees `paths` take together on their file system, data two of them share
// (clones, btrfs snapshots) counted once: the union of their data extents' physical ranges,
// plus inline data and what other inodes allocate. Walks as extent_usage does.
uint64_t distinct_extent_bytes(const std::vector<std::string>& paths);

}  // namespace cowbench::snap
