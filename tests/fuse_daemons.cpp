// Test helpers for the FUSE daemon backends (see fuse_daemons.h).
#include "tests/fuse_daemons.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"
#include "common/fs.h"

namespace cowbench::test {
namespace {

// readlink(2) as a string; "" on error.
std::string link_of(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

std::string slurp(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

std::vector<pid_t> daemons_under(const std::string& dir, const std::string& comm) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::string base = "/proc/" + std::string(e->d_name);
    if (!slurp(base + "/comm").starts_with(comm)) continue;
    bool serves = link_of(base + "/cwd").starts_with(dir) || link_of(base + "/root").starts_with(dir);
    if (DIR* fds = opendir((base + "/fd").c_str())) {
      while (dirent* f = readdir(fds)) serves = serves || link_of(base + "/fd/" + f->d_name).starts_with(dir);
      closedir(fds);
    }
    if (serves) out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::string upper_of(const std::vector<Mount>& mounts) {
  for (const auto& m : mounts)
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) return o.substr(9);
  return "";
}

}  // namespace cowbench::test
