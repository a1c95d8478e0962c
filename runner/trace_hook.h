// What the runner needs from a tracer: attach to one container's cgroup, count, detach.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cowbench {

struct TraceCounts {
  int64_t copyup_events = 0;
  int64_t copyup_bytes = 0;
  std::vector<int64_t> copyup_latencies_ns;
  int64_t cow_extents = 0;
  int64_t cow_bytes = 0;
  int64_t lost_events = 0;
  nlohmann::json extra = nlohmann::json::object();  // per-syscall counts, FUSE requests...
};

// One tracer for a whole `cowbench run`: programs are loaded once, then each container's
// window is bracketed by begin() / end().
class TraceSession {
 public:
  virtual ~TraceSession() = default;
  // The probe mode that won ("tracepoint", "fentry", ...).
  virtual std::string mode() const = 0;
  // Starts counting events of processes in the cgroup with this v2 id (and of the FUSE
  // daemon with this pid, if > 0).
  virtual void begin(uint64_t cgroup_id, pid_t fuse_daemon_pid) = 0;
  // Stops counting and returns what was seen since begin().
  virtual TraceCounts end() = 0;
  // Details for results.json (attach failures, programs, why the better modes lost).
  virtual nlohmann::json details() const = 0;
};

}  // namespace cowbench
