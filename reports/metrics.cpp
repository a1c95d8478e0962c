// The measured figures of a run as one table (see metrics.h).
#include "reports/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

namespace cowbench::rep {

namespace {
// 16 blocks of 4 KiB: the block-allocation noise of the writable layer between identical runs.
constexpr int64_t kAllocationSlack = 64 * 1024;
}  // namespace

const std::vector<Metric>& run_metrics() {
  static const std::vector<Metric> metrics{
      {"wall_ns", "wall time", Unit::kNs, [](const Run& r) { return r.wall_ns; }, true},
      {"setup_ns", "setup time", Unit::kNs, [](const Run& r) { return r.setup_ns; }, true},
      {"ops.count", "operations", Unit::kCount, [](const Run& r) { return r.ops_count; }, false, true},
      {"ops.latency_ns.p50", "op latency p50", Unit::kNs, [](const Run& r) { return r.op_latency.p50; }, true},
      {"ops.latency_ns.p90", "op latency p90", Unit::kNs, [](const Run& r) { return r.op_latency.p90; }, false},
      {"ops.latency_ns.p99", "op latency p99", Unit::kNs, [](const Run& r) { return r.op_latency.p99; }, true},
      {"ops.latency_ns.max", "op latency max", Unit::kNs, [](const Run& r) { return r.op_latency.max; }, false},
      {"copyup.events", "copy-up events", Unit::kCount, [](const Run& r) { return r.copyup_events; }, true, true},
      {"copyup.bytes", "copy-up bytes", Unit::kBytes, [](const Run& r) { return r.copyup_bytes; }, true, true},
      {"copyup.latency_ns.p50", "copy-up latency p50", Unit::kNs, [](const Run& r) { return r.copyup_latency.p50; }, false},
      {"copyup.latency_ns.p90", "copy-up latency p90", Unit::kNs, [](const Run& r) { return r.copyup_latency.p90; }, false},
      {"copyup.latency_ns.p99", "copy-up latency p99", Unit::kNs, [](const Run& r) { return r.copyup_latency.p99; }, false},
      {"copyup.latency_ns.max", "copy-up latency max", Unit::kNs, [](const Run& r) { return r.copyup_latency.max; }, false},
      // Copy-ups by kind: counters, shown and exported, not gated (copyup.events/bytes are).
      {"copyup.kinds.data.events", "data-copied copy-ups", Unit::kCount,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.data.events : int64_t{-1}; }, false, true},
      {"copyup.kinds.data.bytes", "data-copied copy-up bytes", Unit::kBytes,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.data.bytes : int64_t{-1}; }, false, true},
      {"copyup.kinds.cloned.events", "cloned copy-ups", Unit::kCount,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.cloned.events : int64_t{-1}; }, false, true},
      {"copyup.kinds.cloned.bytes", "cloned copy-up bytes", Unit::kBytes,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.cloned.bytes : int64_t{-1}; }, false, true},
      {"copyup.kinds.metadata.events", "metadata-only copy-ups", Unit::kCount,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.metadata.events : int64_t{-1}; }, false, true},
      {"copyup.kinds.metadata.bytes", "metadata-only copy-up bytes", Unit::kBytes,
       [](const Run& r) { return r.copyup_kinds.measured ? r.copyup_kinds.metadata.bytes : int64_t{-1}; }, false, true},
      {"cow.extents", "CoW extents", Unit::kCount, [](const Run& r) { return r.cow_extents; }, false, true},
      {"cow.bytes", "CoW bytes", Unit::kBytes, [](const Run& r) { return r.cow_bytes; }, true, true},
      {"disk.upper_bytes", "writable layer", Unit::kBytes, [](const Run& r) { return r.upper_bytes; }, true, true, 1, kAllocationSlack},
      {"disk.shared_bytes", "shared bytes", Unit::kBytes, [](const Run& r) { return r.shared_bytes; }, false, true},
      {"memory.page_cache_bytes", "page cache", Unit::kBytes, [](const Run& r) { return r.page_cache_bytes; }, true},
      {"cpu.user_ns", "CPU user", Unit::kNs, [](const Run& r) { return r.cpu_user_ns; }, true, false, 1e7},
      {"cpu.sys_ns", "CPU system", Unit::kNs, [](const Run& r) { return r.cpu_sys_ns; }, true, false, 1e7},
      {"ground_truth.copyups", "copy-ups (ground truth)", Unit::kCount, [](const Run& r) { return r.truth_copyups; }, true, true},
      {"ground_truth.copyup_bytes", "copy-up bytes (ground truth)", Unit::kBytes,
       [](const Run& r) { return r.truth_copyup_bytes; }, true, true},
      {"ground_truth.copyup_kinds.data.events", "data-copied copy-ups (ground truth)", Unit::kCount,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.data.events : int64_t{-1}; }, false, true},
      {"ground_truth.copyup_kinds.data.bytes", "data-copied copy-up bytes (ground truth)", Unit::kBytes,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.data.bytes : int64_t{-1}; }, false, true},
      {"ground_truth.copyup_kinds.cloned.events", "cloned copy-ups (ground truth)", Unit::kCount,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.cloned.events : int64_t{-1}; }, false, true},
      {"ground_truth.copyup_kinds.cloned.bytes", "cloned copy-up bytes (ground truth)", Unit::kBytes,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.cloned.bytes : int64_t{-1}; }, false, true},
      {"ground_truth.copyup_kinds.metadata.events", "metadata-only copy-ups (ground truth)", Unit::kCount,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.metadata.events : int64_t{-1}; }, false, true},
      {"ground_truth.copyup_kinds.metadata.bytes", "metadata-only copy-up bytes (ground truth)", Unit::kBytes,
       [](const Run& r) { return r.truth_copyup_kinds.measured ? r.truth_copyup_kinds.metadata.bytes : int64_t{-1}; }, false, true},
      {"cow.new_bytes", "new data", Unit::kBytes, [](const Run& r) { return r.cow_new_bytes; }, true, true},
      {"ground_truth.cow_extents", "CoW extents (ground truth)", Unit::kCount, [](const Run& r) { return r.truth_cow_extents; },
       false, true},
      {"ground_truth.cow_bytes", "CoW bytes (ground truth)", Unit::kBytes, [](const Run& r) { return r.truth_cow_bytes; }, true, true},
      {"ground_truth.new_bytes", "new data (ground truth)", Unit::kBytes, [](const Run& r) { return r.truth_new_bytes; }, true, true},
      // Other work on the host during the run (a run's conditions, not its result: never compared).
      {"host_load.window_ns", "host load window", Unit::kNs,
       [](const Run& r) { return r.host_load ? r.host_load->window_ns : int64_t{-1}; }, false},
      {"host_load.steal_ns", "steal time", Unit::kNs,
       [](const Run& r) { return r.host_load ? r.host_load->steal_ns : int64_t{-1}; }, false},
      {"host_load.outside_busy_ns", "outside CPU busy", Unit::kNs,
       [](const Run& r) { return r.host_load ? r.host_load->outside_busy_ns : int64_t{-1}; }, false},
  };
  return metrics;
}

const std::vector<std::string>& workload_syscalls() {
  static const std::vector<std::string> names{
      "fsync",  "fdatasync", "sync_file_range", "unlink",  "unlinkat",  "rename",    "renameat",  "renameat2",
      "mkdir",  "mkdirat",   "rmdir",           "link",    "linkat",    "symlink",   "symlinkat", "chmod",
      "fchmod", "fchmodat",  "chown",           "fchown",  "lchown",    "fchownat",  "utimensat", "truncate",
      "ftruncate", "fallocate", "setxattr",     "lsetxattr", "fsetxattr", "removexattr"};
  return names;
}

const Metric& syscall_metric(const std::string& name) {
  // Stable objects (a map's nodes never move), made once per name; compare may run on threads.
  struct Named {
    std::string key, label;
    Metric metric;
  };
  static std::mutex mu;
  static std::map<std::string, Named> made;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = made.try_emplace(name);
  if (fresh) {
    it->second.key = "syscalls." + name;
    it->second.label = name + " calls";
    it->second.metric = Metric{it->second.key.c_str(), it->second.label.c_str(), Unit::kCount, nullptr, true, true};
  }
  return it->second.metric;
}

std::vector<double> measured(const std::vector<const Run*>& runs, const Metric& m) {
  std::vector<double> out;
  for (const Run* r : runs) {
    int64_t v = m.get(*r);
    if (v >= 0) out.push_back(static_cast<double>(v));
  }
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::optional<std::pair<std::string, int>> scale_out_point(const Run& r) {
  auto slash = r.workload.rfind('/');
  auto it = r.extra.find("containers");
  if (it == r.extra.end()) it = r.extra.find("images");  // image-family: one container per image
  if (slash == std::string::npos || it == r.extra.end() || !it->is_number_integer()) return std::nullopt;
  return std::make_pair(r.workload.substr(0, slash), it->get<int>());
}

Sourced copyup_events(const SummaryRow& s) {
  if (s.median_copyup_events >= 0) return {s.median_copyup_events, false};
  return {s.median_truth_copyups, s.median_truth_copyups >= 0};
}

Sourced copyup_bytes(const SummaryRow& s) {
  if (s.median_copyup_bytes >= 0) return {s.median_copyup_bytes, false};
  return {s.median_truth_copyup_bytes, s.median_truth_copyup_bytes >= 0};
}

Sourced cow_bytes(const SummaryRow& s) {
  if (s.median_cow_bytes >= 0) return {s.median_cow_bytes, false};
  return {s.median_truth_cow_bytes, s.median_truth_cow_bytes >= 0};
}

Sourced new_bytes(const SummaryRow& s) {
  if (s.median_cow_new_bytes >= 0) return {s.median_cow_new_bytes, false};
  return {s.median_truth_new_bytes, s.median_truth_new_bytes >= 0};
}

}  // namespace cowbench::rep
