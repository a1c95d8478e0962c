// Bencher Metric Format (BMF) JSON: one benchmark per (backend, workload) row, its medians as measures, for `bencher run --adapter json`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "reports/results.h"

namespace cowbench::rep {

// The measures, by their Bencher slug. "latency" is Bencher's built-in measure (nanoseconds).
inline constexpr const char* kBmfWallTime = "latency";               // median wall time, ns
inline constexpr const char* kBmfCopyups = "copy-ups";               // file copy-ups
inline constexpr const char* kBmfCopyupBytes = "copy-up-bytes";      // bytes copied up
inline constexpr const char* kBmfCowBytes = "cow-bytes";             // block CoW: inherited bytes rewritten
inline constexpr const char* kBmfUpperBytes = "upper-bytes";         // the writable layer
inline constexpr const char* kBmfPageCacheBytes = "page-cache-bytes";  // page cache charged

// {"<backend>/<workload>": {"<measure>": {"value": v[, "lower_value": lo, "upper_value": hi]}}}
// from the summary rows with at least one ok run (variants are rows: their backend field is the
// row's name). Every value is the median over the ok runs. Wall time ("latency") carries the
// same approximate 95 % interval of the median as report.md and the summary's ci95_ns —
// median ± ci95_ns, the lower end at least 0 — when there are two or more runs. The copy-up
// and CoW figures are the tracer's, or the ground truth when tracing was off (as in
// report.md); a figure that was not measured (null) has no measure, a row with none is left
// out. Deterministic: keys in byte order.
nlohmann::json to_bmf(const Results& r);
// to_bmf(r), indented, with a final newline.
std::string render_bmf(const Results& r);

}  // namespace cowbench::rep
