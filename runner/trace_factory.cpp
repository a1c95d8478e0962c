// make_tracer_factory (declared in run_hooks.h): the eBPF tracer behind `--trace MODE`.
#include "common/error.h"
#include "common/log.h"
#include "ebpf/trace_modes.h"
#include "runner/run_hooks.h"

#ifdef COWBENCH_HAVE_BPF_TRACER
#include "ebpf/tracer.h"
#endif

namespace cowbench {

std::function<std::unique_ptr<ebpf::TraceSession>(const std::string&)> make_tracer_factory() {
  return [](const std::string& mode) -> std::unique_ptr<ebpf::TraceSession> {
    if (mode == "off") return nullptr;
    if (mode != "auto" && !ebpf::is_probe_mode(mode))
      fail(Errc::kUsage, "--trace takes {}, not '{}'", ebpf::trace_mode_list(), mode);
#ifdef COWBENCH_HAVE_BPF_TRACER
    std::string why;
    auto tracer = ebpf::open_tracer(mode, {}, &why);
    if (!tracer) log::warn("tracing off: no probe mode works here ({})", why);
    return tracer;
#else
    if (mode == "auto") {
      log::warn("tracing off: this cowbench was built without the eBPF tracer (clang, bpftool or libbpf missing)");
      return nullptr;
    }
    fail(Errc::kUsage, "--trace {}: this cowbench was built without the eBPF tracer (clang, bpftool or libbpf missing)",
         mode);
#endif
  };
}

}  // namespace cowbench
