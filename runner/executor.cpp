// Picks the executor of a workload shape (see executor.h).
#include "runner/executor.h"

namespace cowbench {

std::unique_ptr<Executor> make_executor(wl::Shape shape, RunContext& ctx) {
  switch (shape) {
    case wl::Shape::kContainer: return make_container_executor(ctx);
    case wl::Shape::kScaleOut: return make_scale_out_executor(ctx);
    case wl::Shape::kSnapshotter: return make_snapshotter_executor(ctx);
    case wl::Shape::kFamily: return make_family_executor(ctx);
  }
  return make_container_executor(ctx);
}

}  // namespace cowbench
