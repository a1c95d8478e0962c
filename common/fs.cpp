// File-system helpers (see fs.h).
#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_set>
#include <vector>

#include "common/error.h"
#include "common/inode_key.h"
#include "common/log.h"

namespace cowbench {
namespace {

bool is_mount_root(int dirfd, const char* name, dev_t parent_dev, dev_t* dev_out) {
  struct statx stx {};
  if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) return false;
  dev_t dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  if (dev_out) *dev_out = dev;
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) return true;
  return dev != parent_dev;
}

// Calls fn(dirfd, name, stat) for every entry below dirfd (depth first, children before
// their directory when post_order); never follows symlinks or crosses mounts.
template <typename Fn>
void walk_fd(int dirfd, dev_t dev, const std::string& where, Fn&& fn, std::vector<std::string>* mounts) {
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) fail_sys("dup {}", where);
  DIR* d = fdopendir(dup);
  if (!d) {
    ::close(dup);
    fail_sys("opendir {}", where);
  }
  struct Closer {
    DIR* d;
    ~Closer() { closedir(d); }
  } closer{d};
  while (true) {
    errno = 0;
    dirent* e = readdir(d);
    if (!e) {
      if (errno) fail_sys("readdir {}", where);
      break;
    }
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      fail_sys("stat {}/{}", where, e->d_name);
    }
    std::string child = path_join(where, e->d_name);
    if (S_ISDIR(st.st_mode)) {
      if (is_mount_root(dirfd, e->d_name, dev, nullptr)) {
        if (mounts) mounts->push_back(child);
        continue;
      }
      Fd sub(openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) fail_sys("open {}", child);
      walk_fd(sub.get(), dev, child, fn, mounts);
    }
    fn(dirfd, e->d_name, st, child);
  }
}

}  // namespace

std::string path_join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string r(a);
  if (r.back() != '/') r.push_back('/');
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  r.append(b);
  return r;
}

Fd open_dir(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) fail(Errc::kNotFound, "directory {} does not exist", path);
    fail_sys("open directory {}", path);
  }
  return fd;
}

void make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (part.empty()) continue;
    if (mkdir(part.c_str(), mode) != 0 && errno != EEXIST) fail_sys("mkdir {}", part);
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail_sys("stat {}", path);
  if (!S_ISDIR(st.st_mode)) fail(Errc::kInvalidInput, "{} exists and is not a directory", path);
}

std::string read_file(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) fail(Errc::kNotFound, "{} does not exist", path);
    fail_sys("open {}", path);
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_sys("read {}", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode, bool durable) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) fail_sys("create {}", tmp);
    const char* p = content.data();
    size_t left = content.size();
    while (left > 0) {
      ssize_t n = ::write(fd.get(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        unlink(tmp.c_str());
        fail_errno(err, "write {}", tmp);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    if ((durable && fsync(fd.get()) != 0) || fd.close() != 0) {
      int err = errno;
      unlink(tmp.c_str());
      fail_errno(err, "fsync {}", tmp);
    }
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    fail_errno(err, "rename {} to {}", tmp, path);
  }
  if (!durable) return;
  Fd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) fsync(dfd.get());
}

void remove_tree(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail_sys("stat {}", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) fail_sys("remove {}", path);
    return;
  }
  if (is_mount_point(path)) fail(Errc::kFailedPrecondition, "cannot remove {}: it is a mount point", path);
  std::vector<std::string> mounts;
  {
    Fd root = open_dir(path);
    walk_fd(root.get(), st.st_dev, path,
            [&](int dirfd, const char* name, const struct stat& s, const std::string& child) {
              if (unlinkat(dirfd, name, S_ISDIR(s.st_mode) ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
                // A directory that still holds a mount point cannot be empty; reported below.
                if (S_ISDIR(s.st_mode) && errno == ENOTEMPTY && !mounts.empty()) return;
                fail_sys("remove {}", child);
              }
            },
            &mounts);
  }
  if (!mounts.empty()) fail(Errc::kFailedPrecondition, "cannot remove {}: {} is still mounted", path, mounts.front());
  if (rmdir(path.c_str()) != 0 && errno != ENOENT) fail_sys("remove {}", path);
}

void empty_dir(const std::string& dir) {
  std::vector<std::string> names;
  {
    DIR* d = opendir(dir.c_str());
    if (!d) fail_sys("open {}", dir);
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    closedir(d);
  }
  for (const auto& n : names) remove_tree(path_join(dir, n));
}

DiskUsage disk_usage(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) fail_sys("stat {}", path);
  DiskUsage u;
  u.bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  u.inodes = 1;
  if (!S_ISDIR(st.st_mode)) return u;
  std::unordered_set<InodeKey, InodeKeyHash> seen;
  Fd root = open_dir(path);
  walk_fd(root.get(), st.st_dev, path,
          [&](int, const char*, const struct stat& s, const std::string&) {
            if (s.st_nlink > 1 && !S_ISDIR(s.st_mode) && !seen.insert({s.st_dev, s.st_ino}).second) return;
            u.bytes += static_cast<uint64_t>(s.st_blocks) * 512;
            u.inodes += 1;
          },
          nullptr);
  return u;
}

std::string fs_type_name(const std::string& path) {
  struct statfs sf {};
  if (statfs(path.c_str(), &sf) != 0) fail_sys("statfs {}", path);
  switch (static_cast<unsigned long>(sf.f_type)) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlay";
    case TMPFS_MAGIC: return "tmpfs";
    case RAMFS_MAGIC: return "ramfs";
    case FUSE_SUPER_MAGIC: return "fuse";
    case SQUASHFS_MAGIC: return "squashfs";
    case EROFS_SUPER_MAGIC_V1: return "erofs";
    case NFS_SUPER_MAGIC: return "nfs";
    case PROC_SUPER_MAGIC: return "proc";
    case SYSFS_MAGIC: return "sysfs";
    default: return fmt::format("0x{:x}", static_cast<unsigned long>(sf.f_type));
  }
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_mount_point(const std::string& path) {
  struct statx stx {};
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) return false;
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  struct stat a {}, b {};
  std::string parent = path + "/..";
  if (stat(path.c_str(), &a) != 0 || stat(parent.c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

TempDir::TempDir(const std::string& parent, std::string_view prefix) {
  make_dirs(parent);
  std::string tmpl = path_join(parent, fmt::format("{}.XXXXXX", prefix));
  if (!mkdtemp(tmpl.data())) fail_sys("mkdtemp in {}", parent);
  path_ = tmpl;
}

void TempDir::close() {
  if (path_.empty()) return;
  std::string p = std::move(path_);
  path_.clear();
  remove_tree(p);
}

TempDir::~TempDir() {
  try {
    close();
  } catch (const std::exception& e) {
    log::warn("leaving temp dir behind: {}", e.what());
  }
}

}  // namespace cowbench
