// The executor of kScaleOut workloads: N containers from one image started together, for each N of the plan.
#include <fmt/format.h>

#include "common/clock.h"
#include "runner/container_snapshot.h"
#include "runner/executor.h"
#include "runner/hygiene.h"
#include "runner/together.h"

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
    std::vector<const nlohmann::json*> plans(containers.size(), &p.plan);
    std::optional<int64_t> cached_after = run_together(ctx_, b, containers, *p.w, plans, run);
    int64_t growth = page_cache_growth_bytes(cached_before, cached_after);
    run.setup_ns = prepare_ns;
    run.page_cache_bytes = growth;
    run.extra = {{"containers", n},
                 {"snapshots_per_s", prepare_ns > 0 ? n * 1e9 / static_cast<double>(prepare_ns) : 0.0},
                 {"page_cache_growth_bytes", growth},
                 {"disk_growth_bytes", run.upper_bytes}};
    containers.clear();  // removed now, by their destructors (failures are logged)
    return run;
  }
};

}  // namespace

std::unique_ptr<Executor> make_scale_out_executor(RunContext& ctx) { return std::make_unique<ScaleOutExecutor>(ctx); }

}  // namespace cowbench
