// Trace windows, their sums and their figures in a run (see trace_window.h).
#include "runner/trace_window.h"

#include <utility>

#include "common/log.h"

namespace cowbench {
namespace {

using nlohmann::json;

// Adds one window's extra figures to the sum of the earlier windows: integers add, objects
// merge, array entries (events) are tagged with their window.
void add_json_counts(json& sum, const json& more, int window) {
  for (const auto& [k, v] : more.items()) {
    if (!sum.contains(k)) {
      sum[k] = v.is_array() ? json::array() : v;
      if (!v.is_array()) continue;
    }
    json& s = sum[k];
    if (v.is_number_integer() && s.is_number_integer()) {
      s = s.get<int64_t>() + v.get<int64_t>();
    } else if (v.is_object() && s.is_object() && k != "window") {
      add_json_counts(s, v, window);
    } else if (v.is_array() && s.is_array()) {
      for (json e : v) {
        if (e.is_object()) e["window"] = window;
        s.push_back(std::move(e));
      }
    }
  }
}

}  // namespace

ebpf::TraceTarget trace_target(uint64_t cgroup_id, const std::string& backend, snap::Granularity granularity,
                               const std::vector<Mount>& mounts) {
  ebpf::TraceTarget t;
  t.cgroup_id = cgroup_id;
  t.backend = backend;
  t.cow = granularity;
  t.mounts = mounts;
  return t;
}

TraceWindow::TraceWindow(ebpf::TraceSession* tracer, const ebpf::TraceTarget& target, std::string what)
    : tracer_(tracer), what_(std::move(what)) {
  if (tracer_) tracer_->begin(target);
}

TraceWindow::~TraceWindow() {
  if (!tracer_) return;
  try {
    tracer_->end();
  } catch (const std::exception& e) {
    log::warn("closing the trace window of {}: {}", what_, e.what());
  }
}

ebpf::TraceCounts TraceWindow::close() {
  if (!tracer_) return {};
  ebpf::TraceSession* t = std::exchange(tracer_, nullptr);
  return t->end();
}

void TraceTally::add(const ebpf::TraceCounts& c) {
  auto add = [](int64_t& a, int64_t b) { a = a < 0 || b < 0 ? -1 : a + b; };  // -1: not observable
  add(total_.copyup_events, c.copyup_events);
  add(total_.copyup_bytes, c.copyup_bytes);
  add(total_.copyup_metadata_only, c.copyup_metadata_only);
  // Kinds: measured only when every window measured them.
  CopyupKinds& k = total_.copyup_kinds;
  k.measured = (windows_ == 0 || k.measured) && c.copyup_kinds.measured;
  for (auto [into, from] : {std::pair{&k.data, &c.copyup_kinds.data}, std::pair{&k.cloned, &c.copyup_kinds.cloned},
                            std::pair{&k.metadata, &c.copyup_kinds.metadata}}) {
    into->events += from->events;
    into->bytes += from->bytes;
  }
  add(total_.cow_extents, c.cow_extents);
  add(total_.cow_bytes, c.cow_bytes);
  add(total_.lost_events, c.lost_events);
  add(total_.new_bytes, c.new_bytes);
  // System calls: counted in every window or not at all (empty = not counted).
  if (windows_ == 0 || !total_.syscalls.empty())
    for (const auto& [name, n] : c.syscalls) total_.syscalls[name] += n;
  if (c.syscalls.empty()) total_.syscalls.clear();
  total_.copyup_latencies_ns.insert(total_.copyup_latencies_ns.end(), c.copyup_latencies_ns.begin(),
                                    c.copyup_latencies_ns.end());
  add_json_counts(total_.extra, c.extra, windows_++);
}

void fill_trace(const ebpf::TraceCounts& c, rep::Run& run) {
  run.copyup_events = c.copyup_events;
  run.copyup_bytes = c.copyup_bytes;
  run.copyup_metadata_only = c.copyup_metadata_only;
  run.copyup_kinds = c.copyup_kinds;
  std::vector<int64_t> lat = c.copyup_latencies_ns;
  run.copyup_latency = rep::quantiles(lat);
  run.cow_extents = c.cow_extents;
  run.cow_bytes = c.cow_bytes;
  run.lost_events = c.lost_events;
  run.cow_new_bytes = c.new_bytes;
  run.syscalls = c.syscalls;
  run.extra["trace"] = c.extra;
  run.extra["trace"]["lost_events"] = c.lost_events;
}

}  // namespace cowbench
