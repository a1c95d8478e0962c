// Ground truth for copy-up (see ground_truth.h).
#include "runner/ground_truth.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>
#include <set>
#include <string_view>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/text.h"
#include "snapshotters/fiemap.h"

namespace cowbench {
namespace {

// Walks the upper directory below `dirfd`; an inode seen under two names (a hard link made
// after its copy-up) is one copy-up.
// The lower file the kernel's overlay names in trusted.overlay.origin (struct ovl_fb: version,
// magic 0xfb, len, flags, handle type, the lower fs's uuid, the file handle), opened read-only
// by handle on the file system of `mount_fd` (a lower directory); empty when there is no origin
// or it cannot be opened (another file system, a handle this kernel cannot open) or is not a
// regular file.
Fd open_kernel_origin(int fd, int mount_fd) {
  unsigned char fb[256];
  ssize_t n = fgetxattr(fd, "trusted.overlay.origin", fb, sizeof fb);
  constexpr size_t kHeader = 5 + 16;
  if (n <= static_cast<ssize_t>(kHeader) || fb[1] != 0xfb || fb[2] != n) return Fd();
  size_t bytes = static_cast<size_t>(n) - kHeader;
  std::vector<unsigned char> buf(sizeof(struct file_handle) + bytes);
  auto* h = reinterpret_cast<struct file_handle*>(buf.data());
  h->handle_bytes = static_cast<unsigned>(bytes);
  h->handle_type = fb[4];
  std::memcpy(h->f_handle, fb + kHeader, bytes);
  Fd lower(::open_by_handle_at(mount_fd, h, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!lower || ::fstat(lower.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Fd();
  return lower;
}

// A lower file that unionfs-fuse's whiteouts hide: what its copy-up, renamed, looks like.
struct HiddenLower {
  int64_t size = 0;
  int64_t mtime = -1;  // whole seconds; -1: unknown (no lower directory given)
  bool matched = false;
};

// The lower directories of one scan: the nearest open for opening origins by handle, and all
// of them (nearest first) for finding a lower file by path; unionfs-fuse's hidden lower files,
// when its whiteout directory is known.
struct Lowers {
  Fd nearest;
  std::vector<std::string> dirs;
  std::vector<HiddenLower> hidden;
  bool skip_meta = false;  // the top-level kUnionfsMetaDir is unionfs-fuse's, not the container's
};

// The regular file at `path` (inside the image) in the nearest lower directory that has one.
Fd open_lower_at(const Lowers& lowers, const std::string& path) {
  for (const auto& d : lowers.dirs) {
    Fd f(::open((d + path).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (f && ::fstat(f.get(), &st) == 0 && S_ISREG(st.st_mode)) return f;
  }
  return Fd();
}

// Whether the upper file `upper` holds data cloned from its lower file `lower` (the copy-up
// was a clone): an extent of it flagged FIEMAP_EXTENT_SHARED that lies on disk within an
// extent of the lower file, on the same file system. Without the lower file, any shared extent
// counts. False where the file system has no FIEMAP or shares nothing.
bool cloned_from(int upper, const Fd& lower, const std::string& what) {
  std::vector<snap::Extent> up;
  if (!snap::file_extents(upper, what, up, false)) return false;  // no sync: clones are never delayed
  bool any_shared = std::any_of(up.begin(), up.end(), [](const snap::Extent& e) { return e.shared(); });
  if (!any_shared || !lower) return any_shared;
  struct stat us {}, ls {};
  if (::fstat(upper, &us) != 0 || ::fstat(lower.get(), &ls) != 0 || us.st_dev != ls.st_dev) return false;
  std::vector<snap::Extent> low;
  if (!snap::file_extents(lower.get(), what + " (its lower file)", low, false)) return true;
  for (const auto& e : up) {
    if (!e.shared() || e.inline_data()) continue;
    for (const auto& l : low)
      if (e.physical < l.physical + l.length && l.physical < e.physical + e.length) return true;
  }
  return false;
}

// Matches a file at no lower path against the hidden lower files (see file_copyups); true
// when it is a renamed copy-up.
bool renamed_copyup(const struct stat& st, Lowers& lowers) {
  if (st.st_mtim.tv_nsec != 0) return false;  // unionfs-fuse's copy has whole seconds
  for (auto& h : lowers.hidden) {
    if (h.matched || h.size != st.st_size || (h.mtime >= 0 && h.mtime != st.st_mtim.tv_sec)) continue;
    h.matched = true;
    return true;
  }
  return false;
}

// The lower regular files hidden by the markers below `meta` (unionfs-fuse's .unionfs-fuse):
// <meta>/<path>_HIDDEN~ hides <path> and everything below it.
std::vector<HiddenLower> hidden_lower_files(const std::string& meta, const LowerFiles& lower,
                                            const std::vector<std::string>& lowers) {
  constexpr std::string_view kTag = "_HIDDEN~";
  std::vector<HiddenLower> out;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(meta, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string rel = it->path().string().substr(meta.size());
    if (!rel.ends_with(kTag)) continue;
    rel.resize(rel.size() - kTag.size());
    for (auto f = lower.lower_bound(rel); f != lower.end() && f->first.starts_with(rel); ++f) {
      if (f->first.size() != rel.size() && f->first[rel.size()] != '/') continue;
      HiddenLower h;
      h.size = f->second;
      for (const auto& l : lowers) {
        struct stat st {};
        if (::lstat((l + f->first).c_str(), &st) != 0) continue;
        if (S_ISREG(st.st_mode)) h.mtime = st.st_mtim.tv_sec;
        break;
      }
      out.push_back(h);
    }
  }
  return out;
}

void scan(int dirfd, const std::string& rel, const LowerFiles& lower, Lowers& lowers, CopyupTruth& t,
          std::set<ino_t>& seen) {
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
    if (lowers.skip_meta && rel.empty() && n == kUnionfsMetaDir) continue;
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) scan(sub.get(), path, lower, lowers, t, seen);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    auto below = lower.find(path);
    Fd f(openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    // A copy-up records the origin (the kernel's overlay in trusted.overlay.origin,
    // fuse-overlayfs in user.fuseoverlayfs.origin; a rename keeps it), but not always (the
    // kernel's for a hard-linked lower file with index=off, and some copy-ups of this
    // kernel's append-log runs): a file at a lower path counts too. That also counts a file made
    // new and renamed over a lower path (dpkg's status), which no copy-up made.
    bool origin = false;
    for (const char* name : {"trusted.overlay.origin", "user.fuseoverlayfs.origin"})
      origin = origin || (f && fgetxattr(f.get(), name, nullptr, 0) >= 0);
    bool from_below = origin || below != lower.end();
    if (!from_below && !lowers.hidden.empty() && seen.count(st.st_ino) == 0 && renamed_copyup(st, lowers)) {
      seen.insert(st.st_ino);
      ++t.files;
      t.bytes += st.st_size;
      continue;
    }
    if (from_below && seen.insert(st.st_ino).second) {
      ++t.files;
      // What the copy-up copied: the lower file — fuse-overlayfs names it in its origin (a path
      // below the root), so a file linked or renamed onto another lower path (dpkg's
      // status → status-old) counts its origin's size; the kernel's origin is a file handle, so
      // its renamed files count their size now; nothing for a metadata-only copy-up
      // (overlay metacopy=on).
      bool metacopy = f && fgetxattr(f.get(), "trusted.overlay.metacopy", nullptr, 0) >= 0;
      char from[4096];
      ssize_t n = f ? fgetxattr(f.get(), "user.fuseoverlayfs.origin", from, sizeof from) : -1;
      if (n > 0) {
        std::string origin(from, static_cast<size_t>(n));
        if (!origin.starts_with('/')) origin.insert(0, 1, '/');
        if (auto o = lower.find(origin); o != lower.end()) below = o;
      }
      int64_t size = below != lower.end() ? below->second : st.st_size;
      // The lower file itself: the kernel's origin, else the one at the (origin) path.
      Fd from_fd = f && lowers.nearest ? open_kernel_origin(f.get(), lowers.nearest.get()) : Fd();
      struct stat os {};
      if (from_fd && ::fstat(from_fd.get(), &os) == 0) size = os.st_size;
      if (!from_fd && below != lower.end()) from_fd = open_lower_at(lowers, below->first);
      if (!metacopy) {
        t.bytes += size;
        // Cloned: the upper file still shares extents with the lower file.
        if (f && cloned_from(f.get(), from_fd, path)) {
          ++t.cloned;
          t.cloned_bytes += size;
        }
      }
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
    in.ctime = st.st_ctim;
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
    if (st.st_ctim.tv_sec == in.ctime.tv_sec && st.st_ctim.tv_nsec == in.ctime.tv_nsec) continue;  // not written
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
  into.cloned += more.cloned;
  into.cloned_bytes += more.cloned_bytes;
}

CopyupKinds kinds_of(const CopyupTruth& t) {
  CopyupKinds k;
  k.measured = true;
  k.cloned = {t.cloned, t.cloned_bytes};
  k.metadata = {t.metadata_only, 0};
  k.data = {t.files - t.cloned - t.metadata_only, t.bytes - t.cloned_bytes};
  return k;
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

CopyupTruth file_copyups(const std::string& upper, const LowerFiles& lower, const std::vector<std::string>& lowers,
                         const std::string& meta_dir) {
  CopyupTruth t;
  if (upper.empty()) return t;
  Fd root = open_dir(upper);
  std::set<ino_t> seen;
  Lowers l;
  if (!lowers.empty()) l.nearest = Fd(::open(lowers.front().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  l.dirs = lowers;
  if (!meta_dir.empty()) {
    l.hidden = hidden_lower_files(meta_dir, lower, lowers);
    l.skip_meta = true;
  }
  scan(root.get(), "", lower, l, t, seen);
  return t;
}

std::string unionfs_meta_dir(const std::vector<Mount>& mounts) {
  for (const auto& m : mounts) {
    if (m.type != kUnionfsFuseType) continue;
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) return path_join(o.substr(9), kUnionfsMetaDir);
  }
  return {};
}

std::vector<std::string> lower_dirs(const std::vector<Mount>& mounts) {
  std::vector<std::string> out;
  for (const auto& m : mounts)
    for (const auto& o : m.options)
      if (o.starts_with("lowerdir="))
        for (auto& d : split(o.substr(9), ':'))
          if (!d.empty()) out.push_back(std::move(d));
  return out;
}

}  // namespace cowbench
