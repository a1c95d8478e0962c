// Ground truth for copy-up (see ground_truth.h).
#include "runner/ground_truth.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
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

namespace {

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// An open regular file of the tree, its stat and generation; false when `path` is not one.
bool open_regular(const std::string& path, Fd& f, struct stat& st, uint32_t& generation) {
  f = Fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!f || fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  int g = 0;
  generation = ioctl(f.get(), FS_IOC_GETVERSION, &g) == 0 ? static_cast<uint32_t>(g) : 0;
  return true;
}

// Bytes of [a, b) covered by the sorted, disjoint ranges.
uint64_t overlap(uint64_t a, uint64_t b, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  uint64_t n = 0;
  for (const auto& [s, e] : ranges) {
    if (e <= a) continue;
    if (s >= b) break;
    n += std::min(b, e) - std::max(a, s);
  }
  return n;
}

}  // namespace

InheritedExtents inherited_extents(const std::string& root, const LowerFiles& lower) {
  InheritedExtents out;
  std::vector<snap::Extent> extents;
  for (const auto& [p, size] : lower) {
    std::string path = root + p;
    Fd f;
    struct stat st {};
    InheritedFile in;
    if (!open_regular(path, f, st, in.generation)) continue;
    in.ino = st.st_ino;
    in.size = st.st_size;
    in.block = st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
    uint64_t end = round_up(static_cast<uint64_t>(st.st_size), in.block);
    if (snap::file_extents(f.get(), path, extents, false)) {
      for (const snap::Extent& e : extents) {
        uint64_t s = e.logical, t = std::min(e.logical + e.length, end);
        if (s >= t) continue;
        if (!in.data.empty() && in.data.back().second >= s)
          in.data.back().second = std::max(in.data.back().second, t);
        else
          in.data.emplace_back(s, t);
      }
    } else if (end > 0) {
      in.data.emplace_back(0, end);  // no FIEMAP: no holes known
    }
    out.emplace(p, std::move(in));
  }
  return out;
}

BlockCowTruth extent_cow(const std::string& root, const InheritedExtents& before) {
  BlockCowTruth t;
  std::vector<snap::Extent> extents;
  for (const auto& [p, in] : before) {
    std::string path = root + p;
    Fd f;
    struct stat st {};
    uint32_t generation = 0;
    if (!open_regular(path, f, st, generation)) continue;                  // deleted or no longer a file
    if (st.st_ino != in.ino || generation != in.generation) continue;     // replaced: another inode
    if (!snap::file_extents(f.get(), path, extents)) continue;
    uint64_t end = round_up(static_cast<uint64_t>(st.st_size), in.block);
    bool changed = false;
    for (const snap::Extent& e : extents) {
      if (e.shared() || e.inline_data() || e.unwritten()) continue;
      uint64_t s = e.logical, u = std::min(e.logical + e.length, end);
      if (s >= u) continue;
      uint64_t cow = overlap(s, u, in.data), fresh = (u - s) - cow;
      if (cow) {
        ++t.cow_extents;
        t.cow_bytes += static_cast<int64_t>(cow);
      }
      if (fresh) {
        ++t.new_extents;
        t.new_bytes += static_cast<int64_t>(fresh);
      }
      changed = true;
    }
    t.files += changed;
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
