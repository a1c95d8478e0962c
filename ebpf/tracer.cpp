// The tracer's mode fallback (see tracer.h): `--trace auto` tries kProbeModes in order and records why the better ones lost.
#include "ebpf/tracer.h"

#include "common/error.h"
#include "common/log.h"
#include "ebpf/tracer_internal.h"

namespace cowbench::ebpf {

std::unique_ptr<TraceSession> open_tracer(const std::string& mode, const TracerOptions& options, std::string* why_none) {
  // The modes to try, best first: all of them for auto, else the one asked for.
  std::vector<ProbeMode> tries;
  for (size_t i = 0; i < kProbeModes.size(); ++i)
    if (mode == "auto" || mode == kProbeModes[i]) tries.push_back(static_cast<ProbeMode>(i));
  if (tries.empty()) fail(Errc::kUsage, "--trace takes {}, not '{}'", trace_mode_list(), mode);
  if (options.ringbuf_bytes < 4096 || (options.ringbuf_bytes & (options.ringbuf_bytes - 1)))
    fail(Errc::kInvalidInput, "ring buffer size {} is not a power of two of at least 4096", options.ringbuf_bytes);

  TracepointIndex index;
  nlohmann::json why_not = nlohmann::json::object();
  for (ProbeMode m : tries) {
    try {
      auto t = std::make_unique<BpfTracer>(m, options);
      t->load(index);
      t->set_why_not(why_not);
      return t;
    } catch (const Error& e) {
      // A forced mode that cannot work is a usage error; auto goes on to the next mode.
      if (mode != "auto") throw Error(Errc::kUsage, fmt::format("--trace {}: {}", mode, e.what()));
      why_not[probe_mode_name(m)] = e.what();
      log::debug("tracer: {} mode unavailable: {}", probe_mode_name(m), e.what());
    }
  }
  std::string why;
  for (const auto& [m, reason] : why_not.items())
    why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", m, reason.get<std::string>());
  if (why_none) *why_none = why;
  return nullptr;
}

}  // namespace cowbench::ebpf
