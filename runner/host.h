// Host facts and host checks: what this machine offers cowbench (kernel, filesystems, tools, BPF).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cowbench {

// One row of `cowbench doctor`.
struct HostCheck {
  std::string name;
  bool ok = false;
  std::string detail;  // what was found (version, path) when ok; the reason when not
};

// The names of the rows host_checks() returns, in order: root, kernel, lockdown, overlay,
// fuse, fuse-overlayfs, fusermount3, unionfs-fuse, aufs (ok only on a kernel that has it),
// mkfs.xfs, mkfs.btrfs, loop, io_uring, cgroups,
// tracefs, drop_caches, btf, then — built with libbpf — "bpf tracepoint",
// "bpf raw_tracepoint", "bpf tp_btf", "bpf fentry", "bpf kprobe", or — without — one "bpf"
// row saying that cowbench was built without libbpf.
std::vector<std::string> host_check_names();

// Runs every check. Each is a real trial (open /dev/fuse, LOOP_CTL_GET_FREE, an io_uring,
// a BPF load and attach) and leaves nothing behind, with two deliberate exceptions done
// only as root: when overlay is missing it runs `modprobe overlay`, and when tracefs is
// mounted nowhere it mounts it at /sys/kernel/tracing and leaves it there for the tracers
// (the tracefs row says so). Never throws: a check that fails unexpectedly is a failing
// row naming the error. Takes a few hundred milliseconds (it runs external --version
// commands and BPF probes).
std::vector<HostCheck> host_checks();

// What the results record about the host.
struct HostFacts {
  std::string kernel;     // uname release
  std::string arch;       // uname machine
  std::string cpu_model;  // /proc/cpuinfo "model name" (or the closest field), "" if none
  unsigned cpus = 0;      // online CPUs
  uint64_t memory_bytes = 0;
  std::string lockdown;       // none | integrity | confidentiality | unknown
  std::string cgroup_layout;  // CgroupSummary::detail of this host
  std::string hostname;       // uname nodename (a pod's name in Kubernetes): for people, not identity
  std::string boot_id;        // /proc/sys/kernel/random/boot_id: one per machine and boot, shared by its containers
};
// Never throws; unknown fields stay empty or 0.
HostFacts host_facts();

// results.json's `host`: host_facts() and the work dir's file system (type and mount options).
nlohmann::json describe_host(const std::string& workdir);

// Records the file system holding `path` as host["filesystems"][role] (its type) and
// host["mount_options"][role]; logs a warning when it cannot tell.
void record_filesystem(nlohmann::json& host, const std::string& role, const std::string& path);

// What about the work directory's file system can skew measurements, in words; empty when
// nothing. Today: ext4 without a journal, which skips recently deleted inodes one by one when
// it creates files, so that deleting many files slows the creations that follow.
std::vector<std::string> workdir_caveats(const std::string& workdir);

// How the cgroup hierarchies that cowbench uses (memory, cpu accounting) are laid out.
struct CgroupSummary {
  std::string kind;         // "v2", "hybrid", "v1" or "none"
  bool accounting = false;  // both memory and CPU use can be measured per container
  std::string detail;       // e.g. "hybrid: v1 memory at /sys/fs/cgroup/memory, v1 cpuacct at
                            // /sys/fs/cgroup/cpuacct, v2 at /sys/fs/cgroup/unified without them"
};
// Pure: from /proc/self/mountinfo text and the v2 root's cgroup.controllers content ("" when
// there is no v2 mount or the file is empty).
CgroupSummary summarize_cgroups(std::string_view mountinfo, std::string_view v2_controllers);
// This host's layout (reads /proc/self/mountinfo and <v2 root>/cgroup.controllers).
CgroupSummary host_cgroups();

}  // namespace cowbench
