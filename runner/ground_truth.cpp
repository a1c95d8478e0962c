// Ground truth for copy-up (see ground_truth.h).
#include "runner/ground_truth.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"

namespace cowbench {
namespace {

void scan(int dirfd, const std::string& rel, const std::set<std::string>& lower, CopyupTruth& t) {
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
      if (sub) scan(sub.get(), path, lower, t);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    bool from_below = lower.count(path) > 0;
    if (!from_below) {
      Fd f(openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
      from_below = f && fgetxattr(f.get(), "trusted.overlay.origin", nullptr, 0) >= 0;
    }
    if (from_below) {
      ++t.files;
      t.bytes += st.st_size;
    }
  }
  closedir(d);
}

}  // namespace

std::string writable_dir(const std::vector<Mount>& mounts) {
  for (const auto& m : mounts) {
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) return o.substr(9);
  }
  for (const auto& m : mounts)
    if (m.type == "bind") return m.source;
  return {};
}

CopyupTruth file_copyups(const std::string& upper, const std::set<std::string>& lower_paths) {
  CopyupTruth t;
  if (upper.empty()) return t;
  Fd root = open_dir(upper);
  scan(root.get(), "", lower_paths, t);
  return t;
}

}  // namespace cowbench
