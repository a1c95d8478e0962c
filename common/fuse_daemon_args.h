// How a FUSE daemon Mount becomes the daemon's command line: the daemons cowbench runs (one row each) and their arguments.
#pragma once

#include <sys/mount.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "common/fuse_mount.h"
#include "common/mount.h"

namespace cowbench {

// The FUSE daemons this file runs, one row each.
struct DaemonKind {
  std::string_view type;              // Mount::type
  const char* program;                // its name in messages
  const char* env;                    // the variable that overrides the program
  std::array<const char*, 2> names;   // what to look for in $PATH, in order (nullptr: none)
  const char* package;                // the Debian package that has it
  bool mounts_itself;                 // libfuse 2: the daemon calls mount(2) on the target itself
};

// The row of the daemon that serves mounts of `type`; null (find) or kInvalidInput (kind_of) for none.
const DaemonKind* find_daemon_kind(std::string_view type) noexcept;
const DaemonKind& kind_of(std::string_view type);

// The daemon finds the FUSE connection here (argument "/dev/fd/3").
inline constexpr int kDaemonFuseFd = 3;

// What a FUSE daemon Mount asks for, split into mount flags and the daemon's arguments.
struct DaemonArgs {
  unsigned long flags = MS_NODEV | MS_NOATIME;  // what fuse-overlayfs itself asks the kernel for
  std::vector<std::string> options;             // -o, in order, layer paths relative to cwd
  std::vector<std::string> operands;            // after the options (the FUSE fd, or branches and mount point)
  std::string cwd = "/";
};

// The daemon's arguments for mounting `m` on `target`: layers relative to their common
// directory (the daemon's cwd), flags from ro/nosuid/noexec. Throws kInvalidInput for a Mount
// it cannot express (no lowerdir, a comma in an option, unionfs-fuse's separators in a path).
DaemonArgs daemon_args(const DaemonKind& kind, const Mount& m, const std::string& target);

}  // namespace cowbench
