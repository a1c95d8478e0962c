// Locating tracefs and reading the lockdown mode (see kernel_fs.h).
#include "ebpf/kernel_fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"

namespace cowbench::ebpf {
namespace {

constexpr const char* kTracefsHome = "/sys/kernel/tracing";
constexpr const char* kLockdownFile = "/sys/kernel/security/lockdown";

struct MountEntry {
  std::string target;
  std::string type;
};

// /proc/self/mounts, one entry per line ("source target type options 0 0").
std::vector<MountEntry> read_mounts() {
  std::vector<MountEntry> out;
  std::string text;
  try {
    text = read_file("/proc/self/mounts");
  } catch (const Error&) {
    return out;
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    MountEntry e;
    std::string source;
    if (fields >> source >> e.target >> e.type) out.push_back(std::move(e));
  }
  return out;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// "integrity" out of "none [integrity] confidentiality".
std::string bracketed(const std::string& text) {
  auto open = text.find('[');
  auto close = text.find(']', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return text.substr(open + 1, close - open - 1);
}

}  // namespace

Tracefs find_tracefs(bool mount) {
  Tracefs t;
  std::string debugfs;
  for (const auto& m : read_mounts()) {
    if (m.type == "tracefs" && (t.path.empty() || m.target == kTracefsHome)) t.path = m.target;
    if (m.type == "debugfs" && debugfs.empty()) debugfs = m.target;
  }
  if (!t.path.empty()) return t;
  // Looking into <debugfs>/tracing makes the kernel automount tracefs there.
  if (!debugfs.empty() && exists(path_join(debugfs, "tracing/events"))) {
    t.path = path_join(debugfs, "tracing");
    return t;
  }
  if (!mount) {
    t.error = "tracefs is not mounted";
    return t;
  }
  if (!exists(kTracefsHome)) {
    t.error = fmt::format("tracefs is not mounted and {} does not exist (kernel built without CONFIG_TRACING?)",
                          kTracefsHome);
    return t;
  }
  if (::mount("nodev", kTracefsHome, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    int err = errno;
    t.error = fmt::format("tracefs is not mounted and mounting it at {} failed: {}{}", kTracefsHome, std::strerror(err),
                          err == EPERM ? " (needs root)" : "");
    return t;
  }
  t.path = kTracefsHome;
  t.mounted_now = true;
  return t;
}

Lockdown read_lockdown() {
  Lockdown l;
  Fd fd(open(kLockdownFile, O_RDONLY | O_CLOEXEC));
  int open_err = fd ? 0 : errno;
  Fd mnt;
  if (fd) {
    l.how = fmt::format("from {}", kLockdownFile);
  } else {
    bool securityfs_mounted = false;
    for (const auto& m : read_mounts()) securityfs_mounted = securityfs_mounted || m.type == "securityfs";
    if (securityfs_mounted) {
      if (open_err == ENOENT) {
        l.mode = "none";
        l.how = fmt::format("{} absent: kernel without the lockdown LSM", kLockdownFile);
      } else {
        l.how = fmt::format("cannot read {}: {}", kLockdownFile, std::strerror(open_err));
      }
      return l;
    }
    // securityfs is not mounted: look through a detached mount of it that vanishes on close.
    Fd fsfd(fsopen("securityfs", FSOPEN_CLOEXEC));
    if (!fsfd || fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0 ||
        !(mnt = Fd(fsmount(fsfd.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY)))) {
      int err = errno;
      l.how = fmt::format("securityfs is not mounted and a detached mount of it failed: {}{}", std::strerror(err),
                          err == EPERM ? " (needs root)" : "");
      return l;
    }
    fd = Fd(openat(mnt.get(), "lockdown", O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) {
        l.mode = "none";
        l.how = "securityfs has no lockdown file: kernel without the lockdown LSM";
      } else {
        l.how = fmt::format("cannot read lockdown in securityfs: {}", std::strerror(errno));
      }
      return l;
    }
    l.how = "from a detached securityfs mount; securityfs is not mounted";
  }
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n < 0) {
    l.how = fmt::format("cannot read lockdown: {}", std::strerror(errno));
    return l;
  }
  l.mode = bracketed(std::string(buf, static_cast<size_t>(n)));
  if (l.mode.empty()) l.how = fmt::format("unexpected lockdown text '{}'", std::string(buf, static_cast<size_t>(n)));
  return l;
}

}  // namespace cowbench::ebpf
