// The executor of kSnapshotter workloads (containerd-bench): snapshot operations on the host, a trace window per layer.
#include "common/clock.h"
#include "runner/executor.h"
#include "runner/host_load.h"
#include "runner/run_metrics.h"
#include "runner/trace_window.h"
#include "snapshotters/snapshot_keys.h"

namespace cowbench {
namespace {

class SnapshotterExecutor final : public ShapeExecutor {
 public:
  using ShapeExecutor::ShapeExecutor;

  std::vector<rep::Run> run(Backend& b, Planned& p, int repeat) override {
    rep::Run run = ctx_.new_run(b, p.name, repeat);
    // The runner writes the layers itself: with a tracer it joins a cgroup of its own for the
    // run, and each layer's apply is a trace window on that layer's writable snapshot.
    std::unique_ptr<Cgroup> cg;
    if (ctx_.tracer) {
      cg = std::make_unique<Cgroup>(ctx_.layout, snap::mint_key(snap::KeyKind::kContainer));
      if (cg->id() == 0) cg.reset();  // no cgroup v2 here: nothing to filter by
    }
    TraceTally tally;
    std::unique_ptr<TraceWindow> window;
    int64_t windows_ns = 0;  // opening and closing them: not the workload's time
    wl::LayerHooks hooks;
    if (cg) {
      hooks.before_apply = [&](const std::vector<Mount>& mounts) {
        int64_t t = monotonic_ns();
        window = std::make_unique<TraceWindow>(ctx_.tracer, trace_target(cg->id(), b.name, b.granularity(), mounts),
                                               p.name);
        windows_ns += monotonic_ns() - t;
      };
      hooks.after_apply = [&] {
        int64_t t = monotonic_ns();
        tally.add(window->close());
        window.reset();
        windows_ns += monotonic_ns() - t;
      };
    }
    ctx_.before_measurement(repeat);
    wl::Outcome o;
    int64_t wall_ns = 0;
    HostLoadWindow load;  // other work on the host while the runner applies the layers itself
    {
      if (cg) cg->enter_self();  // cg's destructor moves this process back and removes the group
      load.start();
      int64_t t0 = monotonic_ns();
      o = p.w->run_on_snapshotter(*b.sn, b.image.top, p.plan, ctx_.containers, hooks);
      wall_ns = monotonic_ns() - t0;
      load.end();
      window.reset();  // (open only if the workload failed inside a layer, which throws past this)
      if (cg) cg->close();
    }
    run.wall_ns = wall_ns - windows_ns;
    run.host_load = load.figures(0);  // the work is cowbench's own: its CPU time is subtracted
    fill_outcome(o, run);
    if (cg) {
      fill_trace(tally.total(), run);
      run.extra["trace"]["windows"] = tally.windows();
    }
    if (o.layers) record_layers(b, *o.layers, run);
    return {run};
  }

 private:
  // Ground truth from what the workload says it did — a file-granular backend copies up each
  // lower file a layer writes, once per layer (and each it removes, if it copies up to delete); an extent-granular one copies nothing up but
  // rewrites the one inherited block each update writes (a few bytes inside the file, one 4 KiB
  // block of the scratch XFS and btrfs), once per layer; a full copy does neither — then the disk
  // figures of its top layer, and its layers go.
  void record_layers(Backend& b, const wl::LayerWork& work, rep::Run& run) {
    constexpr int64_t kBlock = 4096;
    if (b.granularity() == snap::Granularity::kFile) {
      // A backend that copies a file up to delete it copies each removed lower file too.
      const int64_t dropped = b.spec->caps.copies_up_before_delete ? work.lower_files_removed : 0;
      run.truth_copyups = work.lower_files_updated + dropped;
      run.truth_copyup_bytes = run.truth_copyups * work.file_size;
      run.truth_copyups_dropped = dropped;
      run.truth_cow_extents = run.truth_cow_bytes = run.truth_new_bytes = 0;
    } else if (b.granularity() == snap::Granularity::kExtent) {
      run.truth_copyups = run.truth_copyup_bytes = 0;
      run.truth_cow_extents = work.lower_files_updated;
      run.truth_cow_bytes = work.lower_files_updated * kBlock;
      run.truth_new_bytes = 0;
    } else if (b.granularity() == snap::Granularity::kTree) {
      run.truth_copyups = run.truth_copyup_bytes = 0;
      run.truth_cow_extents = run.truth_cow_bytes = run.truth_new_bytes = 0;
    }
    if (!work.layers.empty()) {
      SnapshotMeasure m = measure_snapshot(*b.sn, b.spec->caps, work.layers.back(), {}, nullptr);
      run.upper_bytes = m.upper_bytes;
      run.shared_bytes = m.shared_bytes;
    }
    for (auto it = work.layers.rbegin(); it != work.layers.rend(); ++it) b.sn->remove(*it);
  }
};

}  // namespace

std::unique_ptr<Executor> make_snapshotter_executor(RunContext& ctx) {
  return std::make_unique<SnapshotterExecutor>(ctx);
}

}  // namespace cowbench
