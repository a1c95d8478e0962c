// Where the kernel's tracing and security pseudo file systems are: tracefs, and the lockdown mode.
#pragma once

#include <string>

namespace cowbench::ebpf {

// Where tracefs is reachable.
struct Tracefs {
  std::string path;          // e.g. "/sys/kernel/tracing"; empty when not found (see error)
  bool mounted_now = false;  // this call mounted it (and left it mounted)
  std::string error;         // why there is no tracefs, when path is empty
};

// Finds tracefs in /proc/self/mounts (preferring /sys/kernel/tracing), or under a mounted
// debugfs (<debugfs>/tracing, which the kernel automounts). When it is nowhere and `mount`
// is true and the process may mount, mounts tracefs at /sys/kernel/tracing and LEAVES IT
// MOUNTED: libbpf's tracepoint/kprobe attach and the tracers look for it there, and every
// systemd host has it there anyway. Never throws.
Tracefs find_tracefs(bool mount);

// The kernel lockdown mode.
struct Lockdown {
  std::string mode;  // "none", "integrity", "confidentiality"; empty when it could not be read
  std::string how;   // "from <where>" when read; why it is "none" or could not be read otherwise
};

// Reads /sys/kernel/security/lockdown. When securityfs is not mounted, reads it through a
// detached securityfs mount (fsopen/fsmount: no mount point is touched, nothing stays
// mounted), which needs CAP_SYS_ADMIN. No lockdown file in securityfs means the kernel has
// no lockdown LSM ("none"). Never throws.
Lockdown read_lockdown();

}  // namespace cowbench::ebpf
