// Helpers shared by the backends' availability probes (see probe_util.h).
#include "snapshotters/probe_util.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fd.h"

namespace cowbench::snap {

std::optional<std::string> needs_root_reason() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return std::string("cannot read the process capabilities");
  bool sys_admin = data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
  if (!sys_admin) return std::string("needs root (CAP_SYS_ADMIN) to mount; run cowbench as root");
  return std::nullopt;
}

ProbeDir::ProbeDir(const std::string& workdir, const std::string& name) : dir_(workdir, ".probe-" + name) {}

std::string ProbeDir::sub(const std::string& name) {
  std::string p = path_join(dir_.path(), name);
  make_dirs(p);
  return p;
}

void write_test_file(const std::string& path, const std::string& content) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) fail_sys("create {}", path);
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) fail_sys("write {}", path);
  if (fd.close() != 0) fail_sys("close {}", path);
}

std::string fs_type_name_or(const std::string& path) {
  try {
    return fs_type_name(path);
  } catch (const Error&) {
    return "an unknown file system";
  }
}

}  // namespace cowbench::snap
