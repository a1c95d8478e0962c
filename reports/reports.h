// The report writers at once (what `cowbench run` writes at its end) and reading report inputs with errors that name the file.
#pragma once

#include <string>

#include "reports/results.h"

namespace cowbench::rep {

// Writes OUT_DIR/report.md, OUT_DIR/results.csv and OUT_DIR/report.html (each atomically;
// OUT_DIR is created). results.json is the caller's (the runner saves it as it goes).
// Throws Error on I/O failure.
void write_reports(const Results& r, const std::string& out_dir);

// load_results() for command-line inputs: any failure to read or parse `path` — missing,
// unreadable, not JSON, another schema, missing fields — is Error(kInvalidInput) whose
// message starts with `role` and the path ("base file x.json: ..."), so the CLI exits 2.
Results load_input(const std::string& path, const std::string& role);

}  // namespace cowbench::rep
