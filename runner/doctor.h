// `cowbench doctor`: the host checks and every backend's availability, as a table or one JSON object.
#pragma once

#include <ostream>
#include <string>

namespace cowbench {

// Prints the host checks (check, ok/NO, detail; host_checks(), then a "tracer" row: the real
// eBPF tracer opened as `run --trace auto` opens it, and released) and the backends of the built-in registry
// (available or not and why, CoW granularity, page-cache sharing, root) to `out`; with
// `json`, one JSON object {"host", "workdir", "checks": [...], "backends": [...], "host_noise"}
// instead. host_noise: the noise probes sampled for about 2.5 s (measure_host_noise()).
// Creates `workdir` (the backends' probes try real operations in it, and leave nothing
// behind). Returns 0: the doctor reports, it does not fail. Throws cowbench::Error only
// when `workdir` cannot be created.
int run_doctor(std::ostream& out, const std::string& workdir, bool json);

}  // namespace cowbench
