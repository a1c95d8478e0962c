// Load from outside the container during a measured run: /proc/stat around the run, minus the container's and cowbench's own CPU time.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "reports/results.h"

namespace cowbench {

// The all-CPUs "cpu" line of /proc/stat, in USER_HZ ticks, and how many cpuN lines follow it.
struct CpuTicks {
  int64_t busy = 0;   // user + nice + system + irq + softirq (guest time is counted in user already)
  int64_t idle = 0;   // idle + iowait
  int64_t steal = 0;  // time the hypervisor ran something else
  int cpus = 0;
};
// Parses /proc/stat text; nullopt without a well-formed "cpu " line. Pure.
std::optional<CpuTicks> parse_proc_stat(std::string_view text);

// The host load of one window from two readings (pure): `window_ns` long, during which the
// container's cgroup used `container_cpu_ns` and cowbench itself `own_cpu_ns`; `tick_ns` is one
// USER_HZ tick (10 ms at the usual 100). Outside busy = host busy − container − own (at least
// 0); the resolution is (cpus + 1) ticks: each CPU's counters advance in whole ticks, and the
// container's CPU split is tick-sampled too. busy is set by rep::busy_host.
rep::HostLoad host_load_between(const CpuTicks& before, const CpuTicks& after, int64_t window_ns,
                                int64_t container_cpu_ns, int64_t own_cpu_ns, int64_t tick_ns);

// One measured window: start() and end() read /proc/stat, the monotonic clock and this
// process's CPU time (every thread: the runner, the tracer's reader); figures() subtracts the
// container's CPU time. Put start() and end() tight around the measured work. FUSE daemons
// that serve a container run inside its cgroup; kernel threads that work for it (writeback,
// loop devices, file-system workers) count as outside, which is one reason the threshold is
// half a CPU rather than zero.
class HostLoadWindow {
 public:
  void start();
  void end();
  // The figures once both ends were sampled; nullopt when /proc/stat could not be read, the
  // window was not closed, or container_cpu_ns is negative (not measured).
  std::optional<rep::HostLoad> figures(int64_t container_cpu_ns) const;

 private:
  std::optional<CpuTicks> before_, after_;
  int64_t t0_ = 0, t1_ = 0, own0_ = 0, own1_ = 0;
};

}  // namespace cowbench
