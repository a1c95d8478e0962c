// The executor of kScaleOut workloads: N containers from one image started together, for each N of the plan.
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "runner/container_snapshot.h"
#include "runner/executor.h"
#include "runner/host_load.h"
#include "runner/hygiene.h"
#include "runner/run_metrics.h"
#include "runner/sandbox.h"

namespace cowbench {
namespace {

class ScaleOutExecutor final : public ShapeExecutor {
 public:
  using ShapeExecutor::ShapeExecutor;

  std::vector<rep::Run> run(Backend& b, Planned& p, int repeat) override {
    std::vector<rep::Run> out;
    for (const auto& nj : p.plan.at("containers")) {
      if (ctx_.stop) break;
      out.push_back(run_n(b, p, repeat, nj.get<int>()));
    }
    return out;
  }

 private:
  rep::Run run_n(Backend& b, Planned& p, int repeat, int n) {
    rep::Run run = ctx_.new_run(b, fmt::format("{}/{}", p.name, n), repeat);
    // Page-cache growth is measured from a dropped cache, whatever --cache says.
    run.cache = "cold";
    drop_caches();
    std::optional<int64_t> cached_before = meminfo_kb({"Cached"});
    // Declared before the cgroups, so that the containers' processes are gone before their
    // snapshots are removed (also when something throws).
    std::vector<ContainerSnapshot> containers;
    int64_t t0 = monotonic_ns();
    for (int i = 0; i < n; ++i) containers.emplace_back(*b.sn, b.image.top, ctx_.containers);
    int64_t prepare_ns = monotonic_ns() - t0;
    std::vector<std::unique_ptr<Cgroup>> groups;
    for (const auto& c : containers) groups.push_back(std::make_unique<Cgroup>(ctx_.layout, c.key()));
    std::vector<SandboxResult> results(static_cast<size_t>(n));
    const wl::Workload& w = *p.w;
    const nlohmann::json& plan = p.plan;
    // Started one after another from this thread (see start_sandbox), then collected together.
    std::vector<StartedSandbox> started;
    std::vector<std::thread> threads;
    HostLoadWindow load;  // other work on the host while the N containers live
    load.start();
    int64_t t1 = monotonic_ns();
    for (size_t i = 0; i < containers.size(); ++i) {
      SandboxOptions so;
      so.mounts = containers[i].mounts();
      so.rootfs = containers[i].rootfs();
      so.timeout = ctx_.cfg.timeout;
      so.cgroup = groups[i].get();
      so.cancel = &ctx_.stop;
      started.push_back(start_sandbox(so, [&] { return wl::to_json(w.run(plan)); }));
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
    int64_t all_ns = monotonic_ns() - t1;
    load.end();
    int64_t growth = page_cache_growth_bytes(cached_before, meminfo_kb({"Cached"}));
    std::vector<int64_t> lat;
    int64_t cpu_u = 0, cpu_s = 0, disk = 0;
    bool cpu_known = true;
    for (size_t i = 0; i < containers.size(); ++i) {
      const auto& r = results[i];
      if (r.cancelled) throw Error(Errc::kInterrupted, "interrupted");
      if (!r.ok) {
        run.status = "failed";
        run.error = fmt::format("container {} of {}: {}", i + 1, n, r.error);
        continue;
      }
      wl::Outcome o = wl::outcome_from_json(r.result);
      lat.insert(lat.end(), o.latencies_ns.begin(), o.latencies_ns.end());
      run.ops_count += o.ops;
      run.digest = o.digest;
      CgroupStats cs = groups[i]->stats();
      cpu_known = cpu_known && cs.user_ns >= 0 && cs.sys_ns >= 0;
      cpu_u += std::max<int64_t>(0, cs.user_ns);
      cpu_s += std::max<int64_t>(0, cs.sys_ns);
      SnapshotMeasure m = measure_snapshot(*b.sn, b.spec->caps, containers[i].key(), containers[i].mounts(), nullptr);
      disk += std::max<int64_t>(0, m.upper_bytes);
    }
    groups.clear();
    run.op_latency = rep::quantiles(lat);
    run.wall_ns = all_ns;
    run.setup_ns = prepare_ns;
    run.page_cache_bytes = growth;
    run.cpu_user_ns = cpu_u;
    run.cpu_sys_ns = cpu_s;
    if (cpu_known) run.host_load = load.figures(cpu_u + cpu_s);
    run.upper_bytes = disk;
    run.extra = {{"containers", n},
                 {"snapshots_per_s", prepare_ns > 0 ? n * 1e9 / static_cast<double>(prepare_ns) : 0.0},
                 {"page_cache_growth_bytes", growth},
                 {"disk_growth_bytes", disk}};
    containers.clear();  // removed now, by their destructors (failures are logged)
    return run;
  }
};

}  // namespace

std::unique_ptr<Executor> make_scale_out_executor(RunContext& ctx) { return std::make_unique<ScaleOutExecutor>(ctx); }

}  // namespace cowbench
