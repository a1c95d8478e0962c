// Names that carry the pid of the process that made them (run-<pid>-<n>, cowbench-import-<pid>-...),
// so that what a killed process left behind can be told from what a live one still uses.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string_view>

namespace cowbench {

// The pid in a name made as PREFIX<pid>-REST; nullopt when `name` is not one.
inline std::optional<pid_t> owner_pid(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || pid <= 0 || end == name.data() + name.size() || *end != '-') return std::nullopt;
  return pid;
}

// True when no process `pid` exists (kill(pid, 0) fails with ESRCH).
inline bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace cowbench
