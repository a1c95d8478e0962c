// Small helpers shared by the backends' availability probes.
#pragma once

#include <optional>
#include <string>

#include "common/fs.h"

namespace cowbench::snap {

// Why the process cannot do privileged mounts (not root / no CAP_SYS_ADMIN), or nullopt.
std::optional<std::string> needs_root_reason();

// A scratch directory for a probe: WORKDIR/.probe-<name>.XXXXXX, removed afterwards.
class ProbeDir {
 public:
  ProbeDir(const std::string& workdir, const std::string& name);
  // Creates and returns path()/name.
  std::string sub(const std::string& name);
  const std::string& path() const noexcept { return dir_.path(); }

 private:
  TempDir dir_;
};

// Writes `content` to a file (created or truncated); throws on error.
void write_test_file(const std::string& path, const std::string& content);

// fs_type_name(path), or "an unknown file system" if even statfs fails.
std::string fs_type_name_or(const std::string& path);

}  // namespace cowbench::snap
