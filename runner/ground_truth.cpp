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
#include <string_view>

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

namespace {

// What a path of the upper shows for a lower path of the same name.
enum class Upper { kAbsent, kWhiteout, kDir, kOpaqueDir, kOther };

bool has_xattr_y(int fd, const char* name) {
  char v[2] = {};
  return fgetxattr(fd, name, v, sizeof v) == 1 && v[0] == 'y';
}

Upper upper_state(int root, const std::string& rel) {
  std::string path = rel.substr(1);  // relative to the upper's root
  struct stat st {};
  if (fstatat(root, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    size_t slash = path.rfind('/');
    std::string wh = slash == std::string::npos ? ".wh." + path : path.substr(0, slash + 1) + ".wh." + path.substr(slash + 1);
    return faccessat(root, wh.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? Upper::kWhiteout : Upper::kAbsent;
  }
  if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return Upper::kWhiteout;
  if (!S_ISDIR(st.st_mode)) return Upper::kOther;
  Fd d(openat(root, path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) return Upper::kDir;
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"})
    if (has_xattr_y(d.get(), name)) return Upper::kOpaqueDir;
  return faccessat(d.get(), ".wh..wh..opq", F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? Upper::kOpaqueDir : Upper::kDir;
}

// The lower paths upper files were renamed from (fuse-overlayfs's origin: the lower path).
void collect_origins(int dirfd, std::set<std::string>& out) {
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  DIR* d = fdopendir(dup);
  if (!d) {
    close(dup);
    return;
  }
  while (dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) collect_origins(sub.get(), out);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    Fd f(openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    char v[4096];
    ssize_t len = f ? fgetxattr(f.get(), "user.fuseoverlayfs.origin", v, sizeof v) : -1;
    if (len <= 0) continue;
    std::string origin(v, static_cast<size_t>(len));
    while (!origin.empty() && origin.back() == '\0') origin.pop_back();
    if (!origin.starts_with('/')) origin.insert(0, "/");
    out.insert(origin);
  }
  closedir(d);
}

}  // namespace

void add(CopyupTruth& into, const CopyupTruth& more) {
  into.files += more.files;
  into.bytes += more.bytes;
  into.metadata_only += more.metadata_only;
  into.dropped += more.dropped;
}

CopyupTruth deleted_copyups(const std::string& upper, const LowerFiles& lower) {
  CopyupTruth t;
  if (upper.empty()) return t;
  Fd root = open_dir(upper);
  std::set<std::string> renamed;
  collect_origins(root.get(), renamed);
  std::map<std::string, Upper> seen;  // per path of the upper, looked at once
  auto state = [&](const std::string& rel) {
    auto it = seen.find(rel);
    if (it == seen.end()) it = seen.emplace(rel, upper_state(root.get(), rel)).first;
    return it->second;
  };
  for (const auto& [path, size] : lower) {
    bool hidden = false, present = false;
    for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
      bool last = at == std::string::npos;
      Upper u = state(last ? path : path.substr(0, at));
      if (u == Upper::kWhiteout) {
        hidden = true;
        break;
      }
      if (u == Upper::kAbsent) break;  // nothing of it in the upper: still the lower's
      if (last) {
        present = true;
        break;
      }
      if (u == Upper::kOther) {  // the directory was replaced by a file
        hidden = true;
        break;
      }
      hidden = hidden || u == Upper::kOpaqueDir;
    }
    if (!hidden || present || renamed.contains(path)) continue;
    ++t.files;
    ++t.dropped;
    t.bytes += size;
  }
  return t;
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
