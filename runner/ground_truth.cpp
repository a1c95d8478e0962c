// Ground truth for copy-up (see ground_truth.h).
#include "runner/ground_truth.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <set>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "snapshotters/fiemap.h"

namespace cowbench {
namespace {

// Walks the upper directory below `dirfd`; an inode seen under two names (a hard link made
// after its copy-up) is one copy-up.
void scan(int dirfd, const std::string& rel, const LowerFiles& lower, CopyupTruth& t, std::set<ino_t>& seen) {
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  DIR* d = fdopendir(dup);
  if (!d) {
    close(dup);
    fail_sys("open {}", rel.empty() ? "/" : rel);
  }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string path = rel + "/" + n;
    struct stat st {};
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) scan(sub.get(), path, lower, t, seen);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    auto below = lower.find(path);
    bool from_below = below != lower.end();
    Fd f(openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!from_below) {
      // The kernel's overlay records the origin in trusted.overlay.origin, fuse-overlayfs in
      // user.fuseoverlayfs.origin (a rename of a lower file keeps it).
      for (const char* name : {"trusted.overlay.origin", "user.fuseoverlayfs.origin"})
        from_below = from_below || (f && fgetxattr(f.get(), name, nullptr, 0) >= 0);
    }
    if (from_below && seen.insert(st.st_ino).second) {
      ++t.files;
      // What the copy-up copied: the lower file (a renamed one is known by its origin only:
      // its size now); nothing for a metadata-only copy-up (overlay metacopy=on).
      bool metacopy = f && fgetxattr(f.get(), "trusted.overlay.metacopy", nullptr, 0) >= 0;
      if (!metacopy) t.bytes += below != lower.end() ? below->second : st.st_size;
      t.metadata_only += metacopy;
    }
  }
  closedir(d);
}

}  // namespace

CopyupTruth extent_copyups(const std::string& root, const LowerFiles& lower) {
  CopyupTruth t;
  for (const auto& [p, size] : lower) {
    std::string path = root + p;
    Fd f(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!f || fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // deleted, renamed or replaced
    snap::ExtentUsage u = snap::file_extent_usage(f.get(), path);
    uint64_t own = u.exclusive_bytes - u.inline_bytes;
    if (own > 0) {
      ++t.files;
      t.bytes += static_cast<int64_t>(own);
    }
  }
  return t;
}

std::string writable_dir(const std::vector<Mount>& mounts) {
  for (const auto& m : mounts) {
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) return o.substr(9);
  }
  for (const auto& m : mounts)
    if (m.type == "bind") return m.source;
  return {};
}

CopyupTruth file_copyups(const std::string& upper, const LowerFiles& lower) {
  CopyupTruth t;
  if (upper.empty()) return t;
  Fd root = open_dir(upper);
  std::set<ino_t> seen;
  scan(root.get(), "", lower, t, seen);
  return t;
}

}  // namespace cowbench
