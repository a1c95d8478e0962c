// Locating tracefs and reading the lockdown mode (see kernel_fs.h).
#include "ebpf/kernel_fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"

namespace cowbench::ebpf {
namespace {

constexpr const char* kTracefsHome = "/sys/kernel/tracing";
constexpr const char* kLockdownFile = "/sys/kernel/security/lockdown";

// This process's mounts (/proc/self/mountinfo); none when it cannot be read.
std::vector<MountEntry> read_mounts() {
  try {
    return parse_mountinfo(read_file("/proc/self/mountinfo"));
  } catch (const Error&) {
    return {};
  }
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
    if (m.fs_type == "tracefs" && (t.path.empty() || m.mount_point == kTracefsHome)) t.path = m.mount_point;
    if (m.fs_type == "debugfs" && debugfs.empty()) debugfs = m.mount_point;
  }
  if (!t.path.empty()) return t;
  // Looking into <debugfs>/tracing makes the kernel automount tracefs there.
  if (!debugfs.empty() && path_exists(path_join(debugfs, "tracing/events"))) {
    t.path = path_join(debugfs, "tracing");
    return t;
  }
  if (!mount) {
    t.error = "tracefs is not mounted";
    return t;
  }
  if (!path_exists(kTracefsHome)) {
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
    for (const auto& m : read_mounts()) securityfs_mounted = securityfs_mounted || m.fs_type == "securityfs";
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
