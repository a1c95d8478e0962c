// OCI changeset helpers shared by the applier and the indexers (see changeset.h).
#include "images/changeset.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.h"

namespace cowbench::img {

std::pair<std::string, std::string> split_path(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string join_path(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

std::string whiteout_path(const std::string& path) {
  auto [dir, name] = split_path(path);
  return join_path(dir, std::string(kWhiteoutPrefix) + name);
}

void WrittenSet::add(const std::string& path) {
  paths_.insert(path);
  std::string p = path;
  for (size_t slash = p.rfind('/'); slash != std::string::npos; slash = p.rfind('/')) {
    p.resize(slash);
    if (!ancestors_.insert(p).second) break;  // its ancestors are in already
  }
}

std::vector<std::string> dir_names(int dirfd, const std::string& what) {
  int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) fail_sys("dup {}", what);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    int err = errno;
    ::close(dup_fd);
    fail_errno(err, "opendir {}", what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  closedir(d);
  if (err != 0) fail_errno(err, "readdir {}", what);
  return names;
}

}  // namespace cowbench::img
