// The tracer port: what the runner asks of a tracer (attach to one container's cgroup, count, detach).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/copyup_kinds.h"
#include "common/mount.h"
#include "snapshotters/snapshotter.h"

namespace cowbench::ebpf {

// The container a window watches.
struct TraceTarget {
  uint64_t cgroup_id = 0;       // v2 id of the container's cgroup (bpf_get_current_cgroup_id())
  pid_t fuse_daemon_pid = 0;    // a FUSE daemon serving it from outside that cgroup (0: none)
  std::string backend;          // for messages
  snap::Granularity cow = snap::Granularity::kFile;  // how its backend copies on write
  std::vector<Mount> mounts;    // the snapshot's mounts: upperdir=/workdir= or the bind source
};

struct TraceCounts {
  // -1 = not observable here (details() and extra say why).
  int64_t copyup_events = 0;
  int64_t copyup_bytes = 0;           // data bytes copied (none for a metadata-only copy-up)
  int64_t copyup_metadata_only = 0;   // of copyup_events: files copied up metadata-only (overlay
                                      // metacopy=on) whose data was not copied up by the window's end
  // copyup_events and copyup_bytes by how each file's data reached the upper layer (data
  // copied, cloned, metadata only); not measured where copyup_events is -1.
  CopyupKinds copyup_kinds;
  std::vector<int64_t> copyup_latencies_ns;
  int64_t cow_extents = 0;
  int64_t cow_bytes = 0;
  int64_t lost_events = 0;
  nlohmann::json extra = nlohmann::json::object();  // per-syscall counts, FUSE requests...
  // Block CoW: cow_extents / cow_bytes count the blocks of inherited files that held data the
  // parent shared and were rewritten (each block once); new_bytes what was written into
  // inherited files beyond their inherited end or into their holes (new blocks, not CoW).
  // copyup_* are 0 there: nothing is copied whole.
  int64_t new_bytes = 0;
  // The system calls the container's tasks (its cgroup) entered during the window, by name
  // ("fsync" → 7); empty when they were not counted (the sys_enter program did not attach).
  std::map<std::string, int64_t> syscalls;
};

// One tracer for a whole `cowbench run`: programs are loaded once, then each container's
// window is bracketed by begin() / end(). Windows do not nest; one container at a time.
class TraceSession {
 public:
  virtual ~TraceSession() = default;
  // The probe mode that won ("tracepoint", "fentry", ...).
  virtual std::string mode() const = 0;
  // Starts counting events of the processes in target.cgroup_id (and of the FUSE daemon
  // target.fuse_daemon_pid, if > 0). Call before the container starts (its mounts are made
  // inside it). Throws when the target's mounts cannot be read.
  virtual void begin(const TraceTarget& target) = 0;
  // Stops counting (after making the target's writeback happen) and returns what was seen
  // since begin().
  virtual TraceCounts end() = 0;
  // Details for results.json (attach failures, programs, why the better modes lost).
  virtual nlohmann::json details() const = 0;
};

}  // namespace cowbench::ebpf
