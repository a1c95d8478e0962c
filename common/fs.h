// File-system helpers: directories, atomic files, mount-safe tree removal, usage, temp dirs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace cowbench {

// Opens a directory (O_DIRECTORY|O_CLOEXEC|O_NOFOLLOW of the last component); throws on error.
Fd open_dir(const std::string& path);

// mkdir -p; existing directories are fine. Throws naming the component that failed.
void make_dirs(const std::string& path, mode_t mode = 0755);

// Reads a whole file; throws Error(kNotFound) when it does not exist.
std::string read_file(const std::string& path);

// Writes a file so that a crash leaves either the old or the new content: a temp file in the
// same directory, fsync, rename over the target, fsync of the directory. durable=false skips
// the fsyncs (atomic against a killed process, not against a power cut).
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode = 0644, bool durable = true);

// rm -rf that never crosses into another mount: a mount point below `path` (detected with
// statx's STATX_ATTR_MOUNT_ROOT or a different st_dev) makes it throw kFailedPrecondition
// naming the mount, after removing what it could. A missing path is not an error.
void remove_tree(const std::string& path);

// Removes everything inside the directory `dir` (remove_tree of each entry), keeping `dir`
// itself with its owner and mode: a tree packed into an image leaves its mount point.
void empty_dir(const std::string& dir);

struct DiskUsage {
  uint64_t bytes = 0;   // allocated bytes (st_blocks * 512), each inode counted once
  uint64_t inodes = 0;  // inodes, hard links counted once, the root included
};
// Walks `path` without crossing mounts and sums what it allocates.
DiskUsage disk_usage(const std::string& path);

// The name of the file system holding `path` ("ext4", "xfs", "btrfs", "overlay", "tmpfs"...),
// or "0x<magic>" for one it does not know.
std::string fs_type_name(const std::string& path);

// True if `path` exists (stat(2) follows symlinks: a dangling one does not).
bool path_exists(const std::string& path);

// True if `path` is the root of a mount.
bool is_mount_point(const std::string& path);

// Joins two path pieces with one slash.
std::string path_join(std::string_view a, std::string_view b);

// A directory made with mkdtemp under `parent`; removed (mount-safely) by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& parent, std::string_view prefix = "tmp");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~TempDir();

  const std::string& path() const noexcept { return path_; }
  // Removes the directory now; throws on failure (the destructor only logs).
  void close();

 private:
  std::string path_;
};

}  // namespace cowbench
