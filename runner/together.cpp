// N containers started together and collected together (see together.h).
#include "runner/together.h"

#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/sha256.h"
#include "runner/host_load.h"
#include "runner/hygiene.h"
#include "runner/run_metrics.h"
#include "runner/sandbox.h"

namespace cowbench {

std::optional<int64_t> run_together(RunContext& ctx, Backend& b, const std::vector<ContainerSnapshot>& containers,
                                    const wl::Workload& w, const std::vector<const nlohmann::json*>& plans, rep::Run& run) {
  size_t n = containers.size();
  if (plans.size() != n) fail(Errc::kFailure, "run_together: {} plans for {} containers", plans.size(), n);
  std::vector<std::unique_ptr<Cgroup>> groups;
  for (const auto& c : containers) groups.push_back(std::make_unique<Cgroup>(ctx.layout, c.key()));
  std::vector<SandboxResult> results(n);
  // Started one after another from this thread (see start_sandbox), then collected together.
  std::vector<StartedSandbox> started;
  std::vector<std::thread> threads;
  HostLoadWindow load;  // other work on the host while the containers live
  load.start();
  int64_t t0 = monotonic_ns();
  for (size_t i = 0; i < n; ++i) {
    SandboxOptions so;
    so.mounts = containers[i].mounts();
    so.rootfs = containers[i].rootfs();
    so.timeout = ctx.cfg.timeout;
    so.cgroup = groups[i].get();
    so.cancel = &ctx.stop;
    const nlohmann::json* plan = plans[i];
    started.push_back(start_sandbox(so, [&w, plan] { return wl::to_json(w.run(*plan)); }));
  }
  for (size_t i = 0; i < started.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] = started[i].wait();
      } catch (const std::exception& e) {
        results[i].error = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  int64_t all_ns = monotonic_ns() - t0;
  std::optional<int64_t> cached_after = meminfo_kb({"Cached"});
  load.end();
  std::vector<int64_t> lat;
  std::vector<std::string> digests;
  int64_t cpu_u = 0, cpu_s = 0, disk = 0;
  bool cpu_known = true;
  for (size_t i = 0; i < n; ++i) {
    const auto& r = results[i];
    if (r.cancelled) throw Error(Errc::kInterrupted, "interrupted");
    if (!r.ok) {
      if (run.status != "failed") run.error = fmt::format("container {} of {}: {}", i + 1, n, r.error);
      run.status = "failed";
      continue;
    }
    wl::Outcome o = wl::outcome_from_json(r.result);
    lat.insert(lat.end(), o.latencies_ns.begin(), o.latencies_ns.end());
    run.ops_count += o.ops;
    digests.push_back(o.digest);
    CgroupStats cs = groups[i]->stats();
    cpu_known = cpu_known && cs.user_ns >= 0 && cs.sys_ns >= 0;
    cpu_u += std::max<int64_t>(0, cs.user_ns);
    cpu_s += std::max<int64_t>(0, cs.sys_ns);
    SnapshotMeasure m = measure_snapshot(*b.sn, b.spec->caps, containers[i].key(), containers[i].mounts(), nullptr);
    disk += std::max<int64_t>(0, m.upper_bytes);
  }
  if (!digests.empty()) {
    bool same = std::all_of(digests.begin(), digests.end(), [&](const std::string& d) { return d == digests.front(); });
    if (same) {
      run.digest = digests.front();
    } else {
      Sha256 h;
      for (const auto& d : digests) h.update(d);
      run.digest = h.hex();
    }
  }
  groups.clear();
  run.op_latency = rep::quantiles(lat);
  run.wall_ns = all_ns;
  run.cpu_user_ns = cpu_u;
  run.cpu_sys_ns = cpu_s;
  if (cpu_known) run.host_load = load.figures(cpu_u + cpu_s);
  run.upper_bytes = disk;
  return cached_after;
}

}  // namespace cowbench
