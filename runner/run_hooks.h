// The pieces `cowbench run` plugs into the matrix: image import and the tracer.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "reports/results.h"
#include "runner/run.h"

namespace cowbench {

// Imports cfg.image (oci:, docker-archive:, synth:) into a backend, cached by chain id in
// the backend's snapshots unless cfg.fresh.
std::function<PreparedImage(snap::Snapshotter&, const std::string&)> make_image_importer(const RunConfig& cfg);

// The tracer for a --trace mode: "off" gives null; "auto" the best mode that works here (or
// null with a warning when none does); a forced mode that cannot work here throws kUsage
// naming the reason.
std::function<std::unique_ptr<ebpf::TraceSession>(const std::string&)> make_tracer_factory();

}  // namespace cowbench
