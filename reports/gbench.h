// Google Benchmark JSON output (--benchmark_out_format=json) read for the reports: one row per benchmark instance.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "reports/report_model.h"

namespace cowbench::rep {

// One benchmark instance (e.g. "BM_Prepare/overlayfs/100"). With repetitions, the times are
// the "median" aggregate when the file has it, else the median of the repetitions.
struct GbenchRow {
  std::string name;      // run_name without the aggregate suffix
  std::string family;    // the name up to the first '/': "BM_Prepare"
  std::string instance;  // the rest ("overlayfs/100"), or "" for an argument-less benchmark
  double real_ns = 0, cpu_ns = 0;
  int64_t iterations = 0;
  int repetitions = 1;
  std::string error;                        // SkipWithError's message; times are meaningless then
  std::map<std::string, double> counters;   // state.counters (and bytes/items_per_second)
};

struct GbenchFile {
  std::string path;
  std::string executable;  // context.executable
  std::string date;        // context.date
  std::vector<GbenchRow> rows;  // in the order the file lists them
};

// Reads one file; throws Error(kInvalidInput) naming the file when it is not benchmark JSON.
GbenchFile load_gbench(const std::string& path);
GbenchFile gbench_from_json(const nlohmann::json& j, const std::string& path);

// The file as a table: benchmark, time, CPU, iterations, counters, error.
Table gbench_table(const GbenchFile& f);

}  // namespace cowbench::rep
