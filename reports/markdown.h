// The Markdown report: facts, findings in words, one table per workload, scale-out, failed runs, microbenchmarks.
#pragma once

#include <string>
#include <vector>

#include "reports/gbench.h"
#include "reports/report_model.h"
#include "reports/results.h"

namespace cowbench::rep {

// A table in GitHub-flavoured Markdown (header, alignment row, rows; '|' in cells escaped),
// followed by its notes. The title is the caller's.
std::string markdown_table(const Table& t);

// The whole report. Deterministic: the same document gives the same bytes.
std::string render_markdown(const Results& r, const std::vector<GbenchFile>& gbench = {});

}  // namespace cowbench::rep
