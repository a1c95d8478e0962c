// What the scheduler hands every executor: the backends, the planned workloads and the run's shared state.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ebpf/trace_session.h"
#include "reports/results.h"
#include "runner/cgroup.h"
#include "runner/ground_truth.h"
#include "runner/hygiene.h"
#include "runner/retirement.h"
#include "runner/run.h"
#include "snapshotters/registry.h"
#include "workloads/workload.h"

namespace cowbench {

// One backend of the run, opened, with the image imported.
struct Backend {
  std::string name;
  const snap::BackendSpec* spec = nullptr;
  std::unique_ptr<snap::Snapshotter> sn;
  PreparedImage image;
  snap::Granularity granularity() const { return spec->caps.cow_granularity; }
};

// One workload of the run with its plan (the same on every backend).
struct Planned {
  std::string name;
  std::unique_ptr<wl::Workload> w;
  nlohmann::json plan;
  std::set<std::string> modified;  // lower files the plan modifies
};

// The state executors share, owned by the scheduler for the whole run.
struct RunContext {
  RunContext(const RunConfig& c, const std::atomic<bool>& s) : cfg(c), stop(s), hygiene(c.cache == "cold") {}

  const RunConfig& cfg;
  const std::atomic<bool>& stop;  // set by SIGINT: stop at the next safe point
  CgroupLayout layout;
  ebpf::TraceSession* tracer = nullptr;  // null: tracing off
  std::string containers;                // host directory of the containers' mount points
  LowerFiles lower_files;                // the image's regular files (ground truth)
  int container_cpu = -1;                // the containers' CPU (-1: not pinned)
  Hygiene hygiene;
  Retirement retired;
  std::vector<Backend> backends;
  // image-family: each member image's read plan, by image reference, made once from its files
  // on the first backend that imported it (the merged view, so the plan, is the same on all).
  std::map<std::string, nlohmann::json> family_plans;

  // Hygiene before a measurement (repeat < 0: the warm-up, whose noise is not recorded).
  void before_measurement(int repeat) {
    std::vector<snap::Snapshotter*> all;
    for (auto& b : backends) all.push_back(b.sn.get());
    hygiene.before_measurement(all, repeat >= 0);
  }

  // A run of `p` on `b` with its identity filled in.
  rep::Run new_run(const Backend& b, const std::string& workload, int repeat) const {
    rep::Run r;
    r.backend = b.name;
    r.backend_kind = b.spec->name;
    r.workload = workload;
    r.repeat = repeat;
    r.cache = cfg.cache;
    return r;
  }
};

}  // namespace cowbench
