// The executor of kContainer workloads: one container per repeat, traced, measured against ground truth.
#include <optional>

#include "common/error.h"
#include "common/log.h"
#include "runner/container_snapshot.h"
#include "runner/executor.h"
#include "runner/host_load.h"
#include "runner/run_metrics.h"
#include "runner/sandbox.h"
#include "runner/trace_window.h"

namespace cowbench {
namespace {

class ContainerExecutor final : public ShapeExecutor {
 public:
  using ShapeExecutor::ShapeExecutor;

  std::vector<rep::Run> run(Backend& b, Planned& p, int repeat) override {
    rep::Run run = ctx_.new_run(b, p.name, repeat);
    // The warm-up (repeat -1) is not recorded: its container runs for the caches and the
    // backend's state, and what only a recorded run needs is left out (the ground truth, the
    // trace window, the walks that measure the tree: about 0.6 s a run on reflink and btrfs).
    const bool recorded = repeat >= 0;
    ContainerSnapshot c(*b.sn, b.image.top, ctx_.containers);
    // Block CoW ground truth: the lower files as the container inherits them (the tree is the
    // parent's clone until it runs), read before the caches are dropped.
    std::optional<InheritedExtents> inherited;
    if (recorded && b.granularity() == snap::Granularity::kExtent) {
      try {
        inherited = inherited_extents(writable_dir(c.mounts()), ctx_.lower_files);
      } catch (const Error& e) {
        log::warn("{} {}: no block CoW ground truth: {}", b.name, p.name, e.what());
      }
    }
    ctx_.before_measurement(repeat);
    Cgroup cg(ctx_.layout, c.key());
    SandboxOptions so;
    so.mounts = c.mounts();
    so.rootfs = c.rootfs();
    so.timeout = ctx_.cfg.timeout;
    // A workload that ends itself at the timeout (exec --ready, to report the output it saw)
    // gets there first; the container's own timeout is the backstop.
    if (p.w->ends_at_timeout()) so.timeout += std::chrono::seconds(5);
    so.cgroup = &cg;
    so.cancel = &ctx_.stop;
    so.cpu = ctx_.container_cpu;
    ebpf::TraceCounts traced;
    SandboxResult r;
    HostLoadWindow load;  // other work on the host while the container lives
    {
      TraceWindow window(recorded ? ctx_.tracer : nullptr, trace_target(cg.id(), b.name, b.granularity(), c.mounts()), c.key());
      const wl::Workload& w = *p.w;
      const nlohmann::json& plan = p.plan;
      load.start();
      r = run_in_sandbox(so, [&] { return wl::to_json(w.run(plan)); });
      load.end();
      traced = window.close();
    }
    CgroupStats cs = cg.stats();
    cg.close();
    run.setup_ns = c.prepare_ns() + r.setup_ns;
    run.page_cache_bytes = cs.page_cache_bytes;
    run.cpu_user_ns = cs.user_ns;
    run.cpu_sys_ns = cs.sys_ns;
    if (cs.user_ns >= 0 && cs.sys_ns >= 0) run.host_load = load.figures(cs.user_ns + cs.sys_ns);
    if (r.cancelled) throw Error(Errc::kInterrupted, "interrupted");
    if (!r.ok) {
      run.status = "failed";
      run.error = r.error;
    } else {
      wl::Outcome o = wl::outcome_from_json(r.result);
      run.wall_ns = o.wall_ns >= 0 ? o.wall_ns : r.run_ns;
      fill_outcome(o, run);
    }
    if (recorded) {
      if (ctx_.tracer) fill_trace(traced, run);
      apply_measure(measure_snapshot(*b.sn, b.spec->caps, c.key(), c.mounts(), &ctx_.lower_files,
                                     inherited ? &*inherited : nullptr),
                    run);
      explain_dead_fuse_daemon(c.mounts(), b.name, run);
    }
    ctx_.retired.retire(std::move(c));
    return {run};
  }

};

}  // namespace

std::unique_ptr<Executor> make_container_executor(RunContext& ctx) { return std::make_unique<ContainerExecutor>(ctx); }

}  // namespace cowbench
