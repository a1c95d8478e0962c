// make_tracer_factory (declared in run_hooks.h): the eBPF tracer behind `--trace MODE`.
#include "common/error.h"
#include "runner/run_hooks.h"

namespace cowbench {

std::function<std::unique_ptr<TraceSession>(const std::string&)> make_tracer_factory() {
  return [](const std::string& mode) -> std::unique_ptr<TraceSession> {
    if (mode == "off" || mode == "auto") return nullptr;
    fail(Errc::kUsage, "--trace {}: this build has no tracer", mode);
  };
}

}  // namespace cowbench
