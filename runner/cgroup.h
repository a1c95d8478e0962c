// Per-container cgroups on pure v2, hybrid (v1 memory/cpuacct + controller-less v2) and v1 hosts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cowbench {

// Where the controllers cowbench uses live.
struct CgroupLayout {
  std::string v2_root;       // unified hierarchy mount ("" if none); used for the BPF cgroup id
  bool v2_memory = false;    // memory controller enabled in v2
  bool v2_cpu = false;       // cpu controller enabled in v2
  std::string v1_memory;     // v1 memory controller mount ("" if none or v2 has it)
  std::string v1_cpuacct;    // v1 cpuacct controller mount
  std::string describe() const;
};

// Parses /proc/self/mountinfo text (and, for v2, the root's cgroup.controllers content).
CgroupLayout parse_cgroup_layout(std::string_view mountinfo, std::string_view v2_controllers);
// The layout of this host.
CgroupLayout detect_cgroup_layout();

struct CgroupStats {
  int64_t page_cache_bytes = -1;  // file-backed memory charged (v2 "file", v1 "total_cache")
  int64_t memory_bytes = -1;      // all memory charged
  int64_t user_ns = -1;
  int64_t sys_ns = -1;
};

// One container's cgroup: the same relative path in every hierarchy cowbench uses
// (cowbench/<name>). Created by the constructor, removed by the destructor (after the
// processes in it are gone).
class Cgroup {
 public:
  Cgroup(const CgroupLayout& layout, const std::string& name);
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  ~Cgroup();

  // Moves `pid` into every hierarchy's group.
  void add(pid_t pid);
  CgroupStats stats() const;
  // The v2 cgroup's inode number = bpf_get_current_cgroup_id() of its members (0 without v2).
  uint64_t id() const noexcept { return id_; }
  const std::string& v2_path() const noexcept { return v2_; }
  // Moves this process (all its threads) into the v2 group until leave_self(), for work the
  // runner does itself that the tracer must see (it filters by v2 cgroup id). No-op without v2.
  void enter_self();
  // Moves this process back into the v2 group it came from; close() does it too.
  void leave_self() noexcept;
  // Kills every process left in it (cgroup.kill on v2, SIGKILL to cgroup.procs otherwise).
  void kill_all() noexcept;
  // Removes the directories; throws if processes are still in them.
  void close();

 private:
  std::string v2_root_, v2_, mem_, cpu_;
  std::string origin_;  // enter_self(): the v2 group this process came from
  uint64_t id_ = 0;
};

// Removes leftover cowbench/<name> cgroups (used by gc), killing what still runs in them;
// groups named run-<pid>-… of a live process other than this one are left alone. Returns
// the removed paths.
std::vector<std::string> remove_stale_cgroups(const CgroupLayout& layout);

}  // namespace cowbench
