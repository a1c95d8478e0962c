// The CSV form of the results: one row per run, every metric a column (RFC 4180 quoting, LF line ends).
#pragma once

#include <string>

#include "reports/results.h"

namespace cowbench::rep {

// Columns: backend, workload, repeat, cache, status, error, exit_code, then every metric of
// run_metrics() under its JSON path ("copyup.bytes"; raw ns and bytes), digest, stderr_tail,
// then the scalar workload figures as "extra.<path>" (the union over all runs, sorted).
// A figure that was not measured is an empty cell. Deterministic for a given document.
std::string render_csv(const Results& r);

}  // namespace cowbench::rep
