// FIEMAP-based extent accounting (see fiemap.h).
#include "snapshotters/fiemap.h"

#include <fcntl.h>
#include <fts.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace cowbench::snap {
namespace {

// Extents asked for per FIEMAP call.
constexpr unsigned kBatch = 256;

uint64_t allocated(const struct stat& st) { return static_cast<uint64_t>(st.st_blocks) * 512; }

}  // namespace

ExtentUsage& ExtentUsage::operator+=(const ExtentUsage& o) {
  exclusive_bytes += o.exclusive_bytes;
  shared_bytes += o.shared_bytes;
  extents += o.extents;
  shared_extents += o.shared_extents;
  inline_bytes += o.inline_bytes;
  inodes += o.inodes;
  return *this;
}

bool Extent::shared() const { return flags & FIEMAP_EXTENT_SHARED; }
bool Extent::inline_data() const { return flags & FIEMAP_EXTENT_DATA_INLINE; }
bool Extent::unwritten() const { return flags & FIEMAP_EXTENT_UNWRITTEN; }

bool file_extents(int fd, const std::string& what, std::vector<Extent>& out, bool sync) {
  out.clear();
  // uint64_t storage keeps the struct aligned.
  std::vector<uint64_t> buf((sizeof(fiemap) + kBatch * sizeof(fiemap_extent)) / sizeof(uint64_t) + 1);
  uint64_t start = 0;
  bool first = true;
  while (true) {
    std::memset(buf.data(), 0, buf.size() * sizeof(uint64_t));
    auto* fm = reinterpret_cast<fiemap*>(buf.data());
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = first && sync ? FIEMAP_FLAG_SYNC : 0;  // flush delayed allocations once
    fm->fm_extent_count = kBatch;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
      if (first && (errno == EOPNOTSUPP || errno == ENOTTY)) return false;
      fail_sys("FIEMAP {}", what);
    }
    first = false;
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (unsigned i = 0; i < fm->fm_mapped_extents; ++i) {
      const fiemap_extent& e = fm->fm_extents[i];
      out.push_back({e.fe_logical, e.fe_length, e.fe_flags, e.fe_physical});
      last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
      start = e.fe_logical + e.fe_length;
    }
    if (last) break;
  }
  return true;
}

ExtentUsage file_extent_usage(int fd, const std::string& what) {
  ExtentUsage u;
  u.inodes = 1;
  std::vector<Extent> extents;
  if (!file_extents(fd, what, extents)) {
    struct stat st {};
    if (fstat(fd, &st) != 0) fail_sys("stat {}", what);
    u.exclusive_bytes = allocated(st);
    return u;
  }
  for (const Extent& e : extents) {
    ++u.extents;
    if (e.shared()) {
      u.shared_bytes += e.length;
      ++u.shared_extents;
    } else {
      u.exclusive_bytes += e.length;
      if (e.inline_data()) u.inline_bytes += e.length;
    }
  }
  return u;
}

namespace {

// Walks `path` without following symlinks or crossing into other mounts (nor btrfs subvolumes
// below it), each inode once: regular files go to on_file (open, read-only), the rest to
// on_other.
void walk_inodes(const std::string& path, const std::function<void(const struct stat&)>& on_other,
                 const std::function<void(int fd, const struct stat&, const char* what)>& on_file) {
  std::string p = path;
  char* paths[] = {p.data(), nullptr};
  FTS* fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, nullptr);
  if (!fts) fail_sys("walk {}", path);
  struct Closer {
    FTS* f;
    ~Closer() { fts_close(f); }
  } closer{fts};
  std::set<std::pair<dev_t, ino_t>> linked;
  dev_t dev = 0;
  while (FTSENT* e = fts_read(fts)) {
    switch (e->fts_info) {
      case FTS_DP:
        continue;  // a directory, the second time
      case FTS_DNR:
      case FTS_ERR:
      case FTS_NS:
        if (e->fts_errno == ENOENT && e->fts_level > 0) continue;  // removed while we walked
        fail_errno(e->fts_errno, "walk {}", e->fts_path);
      default:
        break;
    }
    const struct stat& st = *e->fts_statp;
    if (e->fts_level == 0) dev = st.st_dev;
    if (st.st_dev != dev) {  // another mount or a nested btrfs subvolume
      fts_set(fts, e, FTS_SKIP);
      continue;
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked.insert({st.st_dev, st.st_ino}).second) continue;
    if (!S_ISREG(st.st_mode)) {
      on_other(st);
      continue;
    }
    Fd fd(open(e->fts_accpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
      if (errno == ENOENT) continue;
      fail_sys("open {}", e->fts_path);
    }
    on_file(fd.get(), st, e->fts_path);
  }
  if (errno != 0) fail_sys("walk {}", path);
}

}  // namespace

ExtentUsage extent_usage(const std::string& path) {
  ExtentUsage u;
  walk_inodes(
      path,
      [&](const struct stat& st) {
        u.inodes += 1;
        u.exclusive_bytes += allocated(st);
      },
      [&](int fd, const struct stat&, const char* what) { u += file_extent_usage(fd, what); });
  return u;
}

uint64_t distinct_extent_bytes(const std::vector<std::string>& paths) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [physical, physical + length)
  uint64_t own = 0;                                   // what has no address to share: inline data, non-regular inodes
  std::vector<Extent> ex;
  for (const auto& path : paths)
    walk_inodes(
        path, [&](const struct stat& st) { own += allocated(st); },
        [&](int fd, const struct stat& st, const char* what) {
          ex.clear();
          if (!file_extents(fd, what, ex)) {
            own += allocated(st);
            return;
          }
          for (const Extent& e : ex) {
            if (e.inline_data() || e.physical == 0) own += e.length;
            else ranges.emplace_back(e.physical, e.physical + e.length);
          }
        });
  std::sort(ranges.begin(), ranges.end());
  uint64_t total = own, end = 0;
  for (const auto& [lo, hi] : ranges) {
    if (hi <= end) continue;
    total += hi - std::max(lo, end);
    end = hi;
  }
  return total;
}

}  // namespace cowbench::snap
