// The pieces `cowbench run` plugs into the matrix (see run_hooks.h).
#include "runner/run_hooks.h"

#include "common/error.h"
#include "common/log.h"

namespace cowbench {

std::function<PreparedImage(snap::Snapshotter&, const std::string&)> make_image_importer(const RunConfig& cfg) {
  std::string image = cfg.image;
  return [image](snap::Snapshotter&, const std::string&) -> PreparedImage {
    fail(Errc::kUnsupported, "importing {} needs the images library (pending)", image);
  };
}

std::function<std::unique_ptr<TraceSession>(const std::string&)> make_tracer_factory() {
  return [](const std::string& mode) -> std::unique_ptr<TraceSession> {
    if (mode == "off" || mode == "auto") return nullptr;
    fail(Errc::kUsage, "--trace {}: this build has no tracer", mode);
  };
}

void write_run_reports(const rep::Results&, const std::string&) {}

}  // namespace cowbench
