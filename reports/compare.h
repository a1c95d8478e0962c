// `cowbench compare`: the CI regression gate between two results files — deterministic counters compared exactly, noisy figures by a moderated t-test on log values, with the drift between the runs, and Benjamini–Hochberg, each row with its minimum detectable change.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/metrics.h"
#include "reports/results.h"
#include "reports/rounds.h"
#include "reports/stats.h"

namespace cowbench::rep {

struct CompareOptions {
  double threshold = 0.05;  // relative change a regression must exceed (noisy figures only)
  double alpha = 0.05;      // false-discovery rate over all tested rows (Benjamini–Hochberg)
  double power = 0.8;       // for the minimum detectable change
  // Whether regressions of measured figures other than wall time (setup, latencies, CPU, page
  // cache) fail the gate too; by default they are tested and shown but only wall time and the
  // exact counters decide the exit code.
  bool gate_all = false;
  // Whether wall times are taken within their rounds (rounds.h): each run's value divided by what
  // its round shared with the other backends, so that the host's moments between rounds do not
  // count as the rows' spread.
  bool within_rounds = true;
};

enum class Verdict {
  kRegression,      // exact: the counter grew; tested: significant and worse than the threshold allows
  kImprovement,     // exact: the counter shrank; tested: significant and better by more than the threshold
  kNotSignificant,  // tested: changed by more than the threshold, but not beyond the noise
  kWithin,          // tested: no significant change beyond the threshold (see min_detectable_change)
  kSame,            // exact: the same value
  kUntestable,      // tested: no spread to judge by (a single value on a side, and no other row of the metric)
};
const char* verdict_name(Verdict v);

// How a row was decided.
enum class Method {
  kExact,     // every repeat on each side gave one value (a deterministic counter): any change is real
  kT,         // moderated two-sample t-test on log(resolution + value), the drift between runs added per metric
  kCombined,  // a backend's wall-time rows over all workloads (inverse-variance weighted, backend drift added);
              // with 3+ backends, against the others (the shared shift taken out)
  kShared,    // the backends' median combined difference: what every backend shares between the runs
};
const char* method_name(Method m);

struct CompareRow {
  std::string backend, workload;  // workload "*" for a combined row; both "*" for the shared shift
  const Metric* metric = nullptr;
  std::vector<double> base, now;  // the measured values of the ok runs
  double base_median = NAN, new_median = NAN;
  // exact rows: (new - base) / |base| (±inf from 0); tested rows: the ratio of geometric means
  // (of the metric's resolution + value) minus 1, for wall time divided by the shared shift's
  // ratio when there is one (3+ backends); combined rows: the geometric mean of their rows' ratios minus 1,
  // divided by the shared shift's ratio when there is one (3+ backends); the shared shift: the backends' median
  // ratio minus 1.
  double change = NAN;
  Method method = Method::kExact;
  double p = NAN;  // two-sided p-value (the drift between runs included); NaN for exact rows
  double q = NAN;  // Benjamini–Hochberg adjusted within its family: wall time (rows and combined), or the other figures
  // Tested rows: the smallest change (as a fraction, either way) this row alone would have
  // flagged with probability `power` — at level alpha / (rows of its family), the level a lone
  // change must reach under Benjamini–Hochberg — from its n and spread, never below the
  // threshold; NaN for exact rows.
  double min_detectable_change = NAN;
  Verdict verdict = Verdict::kWithin;
  bool gates = true;  // a regression here fails the gate (exact counters, wall time; others with gate_all)
};

struct Comparison {
  CompareOptions options;
  std::vector<CompareRow> rows;  // in the base file's order of (backend, workload), then metric; combined rows last
  std::vector<std::string> only_base, only_new;  // "workload on backend" pairs found in one file only
  // Rows (matched by name) that ran another backend or other options in the two files, e.g.
  // "ovl-meta: overlayfs {"metacopy":"on"} in base, overlayfs {} in new": compared all the same, and said.
  std::vector<std::string> redefined;
  // metric key → variance (of a row's difference of log means) between the two runs beyond
  // what the repeats show: host drift, estimated from all the metric's rows, added to each.
  std::map<std::string, double> between_runs;
  // The same for the combined rows: drift of whole backends between the runs, across backends.
  double between_backends = 0;
  std::map<std::string, VariancePrior> prior;   // metric key → the variance prior fitted to its rows
  RoundModel rounds_base, rounds_new;            // wall time: what each side's rounds shared (within_rounds)
  int tested_wall = 0, tested_other = 0;        // rows in the two Benjamini–Hochberg families
  // Ok runs of each side, and of those the runs taken while the host was busy (host_load).
  int runs_base = 0, runs_new = 0, busy_base = 0, busy_new = 0;
  int count(Verdict v) const;
  bool regressed() const;  // a row that gates is a regression
};

// Compares every metric (of run_metrics() marked `compared`) measured for a (backend,
// workload) pair with ok runs in both documents; every metric is lower-is-better. Throws
// Error(kInvalidInput) naming both sides' pairs when no row is in both.
Comparison compare_results(const Results& base, const Results& now, const CompareOptions& o);

// The comparison as Markdown fit for a CI step summary: the verdict, the rows that changed,
// the resolution of the rest, unchanged rows folded in <details>, notes.
std::string comparison_markdown(const Comparison& c, const std::string& base_name, const std::string& new_name);

// The comparison as JSON: {"base", "new", "options", "regressions", "rows": [{metric, backend,
// workload, base, new, change, p, q, test, min_detectable_change, verdict, n_base, n_new}], ...}.
nlohmann::json comparison_json(const Comparison& c, const std::string& base_name, const std::string& new_name);

}  // namespace cowbench::rep
