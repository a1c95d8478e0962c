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

void write_run_reports(const rep::Results&, const std::string&) {}

}  // namespace cowbench
