// The HTML report: one self-contained file (inline CSS and SVG, no script, no network) with charts and tables.
#pragma once

#include <string>
#include <vector>

#include "reports/gbench.h"
#include "reports/results.h"

namespace cowbench::rep {

// The whole report: findings, wall time with 95 % CI whiskers per workload, copy-up bytes
// and writable-layer bytes per backend, operation latency CDFs, page cache / disk / wall
// time against the number of containers (scale-out), the tables of the Markdown report,
// failed runs, and one section per Google Benchmark file (bar chart per benchmark family
// and a table). Backends keep one colour throughout. Works offline and without JavaScript.
std::string render_html(const Results& r, const std::vector<GbenchFile>& gbench = {});

}  // namespace cowbench::rep
