// How one repeat of a workload runs on one backend: one executor per workload shape behind one small interface.
#pragma once

#include <memory>
#include <vector>

#include "reports/results.h"
#include "runner/run_context.h"
#include "workloads/workload.h"

namespace cowbench {

// Runs one repeat of a planned workload on one backend and measures it, the way Google
// Benchmark's BenchmarkRunner runs one benchmark for RunBenchmarks: the scheduler decides what
// runs when, the executor how. Each call leaves no snapshot behind except the finished
// containers handed to ctx.retired.
class Executor {
 public:
  virtual ~Executor() = default;
  // The measured runs of one repeat (repeat < 0: the warm-up, whose runs the scheduler drops).
  // A run that fails is returned with status "failed"; errors that are not the run's own
  // (set-up, Ctrl-C: Errc::kInterrupted) are thrown.
  virtual std::vector<rep::Run> run(Backend& b, Planned& p, int repeat) = 0;
};

// What every executor holds: the run's shared state.
class ShapeExecutor : public Executor {
 public:
  explicit ShapeExecutor(RunContext& ctx) : ctx_(ctx) {}

 protected:
  RunContext& ctx_;
};

// The executor of a shape: kContainer (one container), kScaleOut (N containers at once),
// kSnapshotter (snapshot operations on the host, e.g. containerd-bench), kFamily (K images, one
// container each).
std::unique_ptr<Executor> make_executor(wl::Shape shape, RunContext& ctx);

// One per shape (exec_*.cpp); make_executor picks.
std::unique_ptr<Executor> make_container_executor(RunContext& ctx);
std::unique_ptr<Executor> make_scale_out_executor(RunContext& ctx);
std::unique_ptr<Executor> make_snapshotter_executor(RunContext& ctx);
std::unique_ptr<Executor> make_family_executor(RunContext& ctx);

}  // namespace cowbench
