// `cowbench compare`: per (backend, workload, metric), the change of the median between two results files, tested with a Mann–Whitney U test over the repeats against a threshold.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "reports/metrics.h"
#include "reports/results.h"

namespace cowbench::rep {

// A two-sided Mann–Whitney U test (Wilcoxon rank-sum) of samples a and b, the test Google
// Benchmark's compare.py runs over repetitions (scipy's mannwhitneyu, two-sided).
struct UTest {
  double u = 0;        // U of a: pairs (x in a, y in b) with x > y, ties counting 1/2
  double p = 1;        // two-sided p-value
  bool exact = false;  // exact permutation distribution of the (mid)rank sum, else normal approximation
};
// Exact for n1 + n2 <= kExactLimit (ties handled through midranks, so the p-value is that of
// the permutation test), else the normal approximation with tie correction and continuity
// correction. Either sample empty gives p = 1.
inline constexpr int kExactLimit = 30;
UTest mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);

// The smallest two-sided p-value any outcome can reach with n1 and n2 values (all of one
// sample above all of the other): 2 / C(n1 + n2, n1), at most 1. With 3 and 3 it is 0.1, so
// at alpha 0.05 a U test over 3 repeats can never call anything significant.
double min_p_value(int n1, int n2);

struct CompareOptions {
  double threshold = 0.05;  // relative change of the median that a regression must exceed
  double alpha = 0.05;      // significance level of the U test
};

enum class Verdict {
  kRegression,      // significant and worse than the threshold allows
  kImprovement,     // significant and better by more than the threshold
  kNotSignificant,  // changed by more than the threshold, but the U test cannot tell it from noise
  kTooFewRepeats,   // changed by more than the threshold, but with so few repeats no outcome is significant at alpha
  kWithin,          // changed by no more than the threshold
};
const char* verdict_name(Verdict v);

struct CompareRow {
  std::string backend, workload;
  const Metric* metric = nullptr;
  std::vector<double> base, now;  // the measured values of the ok runs
  double base_median = NAN, new_median = NAN;
  double change = NAN;  // (new - base) / |base|; ±inf when base is 0 and new is not
  // How significance was decided: "U exact", "U normal" (the test), "constant" (every
  // repeat on each side gave the same value: a deterministic figure, so any difference is
  // real and only the threshold decides), "n<2" (nothing to test).
  std::string method;
  double p = NAN;  // the U test's p-value; NaN unless method is a U test
  Verdict verdict = Verdict::kWithin;
};

struct Comparison {
  CompareOptions options;
  std::vector<CompareRow> rows;  // in the base file's order of (backend, workload), then metric
  std::vector<std::string> only_base, only_new;  // "workload on backend" pairs found in one file only
  int count(Verdict v) const;
};

// Compares every metric (of run_metrics() marked `compared`) measured for a (backend,
// workload) pair with ok runs in both documents. All metrics are lower-is-better. Throws
// Error(kInvalidInput) naming both sides' pairs when no row is in both.
//
// A row is a regression when it is significant and its median is worse by more than the
// threshold. Significant means: the U test gives p < alpha; or, for a "constant" row, the
// values differ. When min_p_value(n_base, n_new) > alpha the U test cannot reach alpha
// whatever the data: such a row is not tested and, if over the threshold, is reported as
// kTooFewRepeats, which is not a regression (compare.py likewise refuses the test below 2
// repetitions and warns below 9). comparison_markdown says how many repeats would do.
Comparison compare_results(const Results& base, const Results& now, const CompareOptions& o);

// The comparison as Markdown fit for a CI step summary: a summary line, the rows that moved
// beyond the threshold, the unchanged rows folded in <details>, notes on untestable rows.
std::string comparison_markdown(const Comparison& c, const std::string& base_name, const std::string& new_name);

}  // namespace cowbench::rep
