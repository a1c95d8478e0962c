// The runner's side of tracing: one window per container (RAII), the sum of a run's windows, their figures in a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/mount.h"
#include "ebpf/trace_session.h"
#include "reports/results.h"
#include "snapshotters/snapshotter.h"

namespace cowbench {

// What the tracer watches in one container: its cgroup, its snapshot's mounts, how it CoWs.
ebpf::TraceTarget trace_target(uint64_t cgroup_id, const std::string& backend, snap::Granularity granularity,
                               const std::vector<Mount>& mounts);

// One open trace window. The constructor opens it (nothing when `tracer` is null); close()
// ends it and returns what it saw; a window still open at destruction (an error inside it) is
// ended and its counts dropped, so that the next run gets a clean one — a failure to end it
// then is only logged, since the first error wins.
class TraceWindow {
 public:
  TraceWindow(ebpf::TraceSession* tracer, const ebpf::TraceTarget& target, std::string what);
  TraceWindow(const TraceWindow&) = delete;
  TraceWindow& operator=(const TraceWindow&) = delete;
  ~TraceWindow();
  bool open() const { return tracer_ != nullptr; }
  ebpf::TraceCounts close();

 private:
  ebpf::TraceSession* tracer_;
  std::string what_;
};

// The counts of several windows of one run (containerd-bench: a window per layer) added up:
// numbers add (-1, not observable, wins), events are tagged with their window.
class TraceTally {
 public:
  void add(const ebpf::TraceCounts& c);
  int windows() const { return windows_; }
  const ebpf::TraceCounts& total() const { return total_; }

 private:
  ebpf::TraceCounts total_;
  int windows_ = 0;
};

// Puts a window's (or a tally's) counts into a run: copy-ups, CoW, lost records, and the
// tracer's details under run.extra["trace"]. Call after fill_outcome, which sets run.extra.
void fill_trace(const ebpf::TraceCounts& c, rep::Run& run);

}  // namespace cowbench
