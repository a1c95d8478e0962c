// `cowbench compare`: Mann–Whitney U tests over the repeats and a threshold (see compare.h).
#include "reports/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "reports/markdown.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

// Twice the midrank of every value of a then b in the pooled sample (integers: tied values
// at sorted positions i..j, 1-based, all get i + j).
std::vector<int> doubled_midranks(const std::vector<double>& pooled) {
  std::vector<size_t> idx(pooled.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return pooled[x] < pooled[y]; });
  std::vector<int> r(pooled.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && pooled[idx[j + 1]] == pooled[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = static_cast<int>(i + 1 + j + 1);
    i = j + 1;
  }
  return r;
}

// P(|T - E T| >= |t - E T|) where T is the doubled rank sum of n1 values drawn without
// replacement from `ranks`: the exact two-sided permutation p-value.
double exact_p(const std::vector<int>& ranks, int n1, int t) {
  int total = 0;
  for (int r : ranks) total += r;
  // ways[k][s]: subsets of k ranks summing to s.
  std::vector<std::vector<double>> ways(static_cast<size_t>(n1) + 1, std::vector<double>(static_cast<size_t>(total) + 1, 0));
  ways[0][0] = 1;
  for (int r : ranks)
    for (int k = n1; k >= 1; --k)
      for (int s = total; s >= r; --s) ways[k][s] += ways[k - 1][s - r];
  double all = 0, extreme = 0;
  double mean = static_cast<double>(n1) * total / static_cast<double>(ranks.size());
  double obs = std::fabs(t - mean);
  for (int s = 0; s <= total; ++s) {
    double w = ways[n1][s];
    all += w;
    if (std::fabs(s - mean) >= obs - 1e-9) extreme += w;
  }
  return all > 0 ? std::min(1.0, extreme / all) : 1.0;
}

// The verdict of a row from its significance and size; every metric is lower-is-better.
Verdict decide(bool significant, bool over, double change) {
  if (!over) return Verdict::kWithin;
  if (!significant) return Verdict::kNotSignificant;
  return change > 0 ? Verdict::kRegression : Verdict::kImprovement;
}

bool constant(const std::vector<double>& v) { return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); }); }

CompareRow compare_row(const std::vector<const Run*>& base, const std::vector<const Run*>& now, const Metric& m,
                       const CompareOptions& o) {
  CompareRow row;
  row.backend = base.front()->backend;
  row.workload = base.front()->workload;
  row.metric = &m;
  row.base = measured(base, m);
  row.now = measured(now, m);
  row.base_median = median(row.base);
  row.new_median = median(row.now);
  double diff = row.new_median - row.base_median;
  row.change = row.base_median != 0 ? diff / std::fabs(row.base_median) : diff == 0 ? 0 : diff > 0 ? INFINITY : -INFINITY;
  bool over = std::fabs(row.change) > o.threshold;
  int n1 = static_cast<int>(row.base.size()), n2 = static_cast<int>(row.now.size());
  if (n1 < 2 || n2 < 2) {
    row.method = "n<2";
    row.verdict = over ? Verdict::kTooFewRepeats : Verdict::kWithin;
  } else if (constant(row.base) && constant(row.now)) {
    row.method = "constant";
    row.verdict = decide(row.base_median != row.new_median, over, row.change);
  } else {
    UTest t = mann_whitney_u(row.base, row.now);
    row.method = t.exact ? "U exact" : "U normal";
    row.p = t.p;
    if (min_p_value(n1, n2) > o.alpha)
      row.verdict = over ? Verdict::kTooFewRepeats : Verdict::kWithin;
    else
      row.verdict = decide(t.p < o.alpha, over, row.change);
  }
  return row;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;
using ByPair = std::map<std::pair<std::string, std::string>, std::vector<const Run*>>;

// The ok runs of each (backend, workload) pair, and the pairs in file order.
Pairs ok_pairs(const Results& r, ByPair& by) {
  Pairs order;
  for (const auto& run : r.runs) {
    if (run.status != "ok") continue;
    auto key = std::make_pair(run.backend, run.workload);
    if (!by.count(key)) order.push_back(key);
    by[key].push_back(&run);
  }
  return order;
}

std::string pair_name(const std::pair<std::string, std::string>& p) { return p.second + " on " + p.first; }

std::string p_cell(const CompareRow& r) { return std::isnan(r.p) ? "—" : fmt::format("{:.3f}", r.p); }

// The smallest equal number of repeats per side whose U test can reach alpha.
int repeats_needed(double alpha) {
  int n = 2;
  while (n < 50 && min_p_value(n, n) > alpha) ++n;
  return n;
}

Table rows_table(const std::vector<const CompareRow*>& rows) {
  Table t;
  t.header = {"backend", "workload", "metric", "base", "new", "change", "p", "test", "n", "verdict"};
  t.numeric = {false, false, false, true, true, true, true, false, true, false};
  for (const CompareRow* r : rows) {
    Unit u = r->metric->unit;
    std::string verdict = verdict_name(r->verdict);
    if (r->verdict == Verdict::kRegression) verdict = "**" + verdict + "**";
    t.rows.push_back({r->backend, r->workload, r->metric->label, format_value(u, r->base_median), format_value(u, r->new_median),
                      format_change(r->change), p_cell(*r), r->method, fmt::format("{}/{}", r->base.size(), r->now.size()),
                      verdict});
  }
  return t;
}

}  // namespace

UTest mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  UTest t;
  if (a.empty() || b.empty()) return t;
  std::vector<double> pooled = a;
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::vector<int> r2 = doubled_midranks(pooled);
  int n1 = static_cast<int>(a.size()), n2 = static_cast<int>(b.size());
  int n = n1 + n2;
  int t2 = 0;
  for (int i = 0; i < n1; ++i) t2 += r2[static_cast<size_t>(i)];
  t.u = t2 / 2.0 - n1 * (n1 + 1) / 2.0;
  if (n <= kExactLimit) {
    t.exact = true;
    t.p = exact_p(r2, n1, t2);
    return t;
  }
  // Normal approximation: tie-corrected variance, continuity correction.
  std::map<int, int> ties;
  for (int r : r2) ++ties[r];
  double tie_term = 0;
  for (auto [r, c] : ties) tie_term += static_cast<double>(c) * c * c - c;
  double var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (static_cast<double>(n) * (n - 1)));
  if (var <= 0) return t;  // every value equal: no evidence of a difference
  double z = std::max(0.0, std::fabs(t.u - n1 * n2 / 2.0) - 0.5) / std::sqrt(var);
  t.p = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return t;
}

double min_p_value(int n1, int n2) {
  if (n1 < 1 || n2 < 1) return 1;
  double c = 1;  // C(n1 + n2, n1), built up exactly enough in doubles
  for (int i = 1; i <= n1; ++i) c = c * (n2 + i) / i;
  return std::min(1.0, 2 / c);
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kRegression: return "regression";
    case Verdict::kImprovement: return "improvement";
    case Verdict::kNotSignificant: return "not significant";
    case Verdict::kTooFewRepeats: return "too few repeats";
    case Verdict::kWithin: return "within threshold";
  }
  return "?";
}

int Comparison::count(Verdict v) const {
  return static_cast<int>(std::count_if(rows.begin(), rows.end(), [&](const CompareRow& r) { return r.verdict == v; }));
}

Comparison compare_results(const Results& base, const Results& now, const CompareOptions& o) {
  Comparison c;
  c.options = o;
  ByPair b_runs, n_runs;
  Pairs b_order = ok_pairs(base, b_runs), n_order = ok_pairs(now, n_runs);
  for (const auto& key : b_order) {
    if (!n_runs.count(key)) {
      c.only_base.push_back(pair_name(key));
      continue;
    }
    for (const auto& m : run_metrics()) {
      if (!m.compared) continue;
      if (measured(b_runs[key], m).empty() || measured(n_runs[key], m).empty()) continue;
      c.rows.push_back(compare_row(b_runs[key], n_runs[key], m, o));
    }
  }
  for (const auto& key : n_order)
    if (!b_runs.count(key)) c.only_new.push_back(pair_name(key));
  if (c.rows.empty()) {
    auto names = [](const Pairs& p) {
      std::vector<std::string> v;
      for (const auto& k : p) v.push_back(pair_name(k));
      return v.empty() ? std::string("no ok run") : fmt::format("{}", fmt::join(v, ", "));
    };
    fail(Errc::kInvalidInput, "no common rows: no (backend, workload) pair has a measured metric in both files (base: {}; new: {})",
         names(b_order), names(n_order));
  }
  return c;
}

std::string comparison_markdown(const Comparison& c, const std::string& base_name, const std::string& new_name) {
  std::string out = "## cowbench compare\n\n";
  out += fmt::format("- base: `{}`\n- new: `{}`\n", base_name, new_name);
  out += fmt::format("- a regression: the median got worse by more than {} and a two-sided Mann–Whitney U test over the "
                     "repeats gives p < {}\n\n",
                     format_value(Unit::kFraction, c.options.threshold), c.options.alpha);
  int reg = c.count(Verdict::kRegression), imp = c.count(Verdict::kImprovement);
  int few = c.count(Verdict::kTooFewRepeats), noise = c.count(Verdict::kNotSignificant), same = c.count(Verdict::kWithin);
  out += fmt::format("**{}** · {} {} · {} not significant · {} too few repeats to test · {} within threshold ({} rows)\n\n",
                     reg == 0 ? "no regression" : fmt::format("{} regression{}", reg, reg == 1 ? "" : "s"), imp,
                     imp == 1 ? "improvement" : "improvements", noise, few, same, c.rows.size());
  // Notes first: a reader of a CI summary must see when the gate could not bite.
  std::vector<std::string> notes;
  auto untestable = [&](const CompareRow& r) {
    return r.method == "n<2" || (r.method != "constant" && min_p_value(static_cast<int>(r.base.size()), static_cast<int>(r.now.size())) > c.options.alpha);
  };
  int blind = static_cast<int>(std::count_if(c.rows.begin(), c.rows.end(), untestable));
  int min_n = 1 << 30;
  for (const auto& r : c.rows)
    if (r.method != "constant") min_n = std::min<int>(min_n, static_cast<int>(std::min(r.base.size(), r.now.size())));
  if (blind > 0) {
    const CompareRow& r = *std::find_if(c.rows.begin(), c.rows.end(), untestable);
    int n1 = static_cast<int>(r.base.size()), n2 = static_cast<int>(r.now.size());
    std::string why = r.method == "n<2" ? fmt::format("{} against {} repeats: nothing to test", n1, n2)
                                        : fmt::format("{} against {} repeats: the smallest two-sided p-value a U test can reach is {:.3f}",
                                                      n1, n2, min_p_value(n1, n2));
    notes.push_back(fmt::format("**{} of {} rows cannot be tested at alpha {}** ({}), so they can never count as regressions{}. "
                                "Run with --repeat {} or more (Google Benchmark's compare.py recommends 9+), or raise --alpha.",
                                blind, c.rows.size(), c.options.alpha, why,
                                few > 0 ? fmt::format("; {} of them changed by more than the threshold", few) : "",
                                repeats_needed(c.options.alpha)));
  } else if (min_n < 9 && min_n >= 2) {
    notes.push_back(fmt::format("Some rows have only {} repeats per side: U-test p-values are rough below 9 (compare.py's advice).", min_n));
  }
  if (std::any_of(c.rows.begin(), c.rows.end(), [](const CompareRow& r) { return r.method == "constant"; }))
    notes.push_back("test “constant”: every repeat gave the same value on each side (a deterministic figure), so any change is real "
                    "and the threshold alone decides.");
  if (!c.only_base.empty()) notes.push_back(fmt::format("only in base (not compared): {}.", fmt::join(c.only_base, ", ")));
  if (!c.only_new.empty()) notes.push_back(fmt::format("only in new (not compared): {}.", fmt::join(c.only_new, ", ")));
  for (const auto& n : notes) out += "- " + n + "\n";
  if (!notes.empty()) out += "\n";

  std::vector<const CompareRow*> moved, rest;
  for (const auto& r : c.rows) (r.verdict == Verdict::kWithin ? rest : moved).push_back(&r);
  std::stable_sort(moved.begin(), moved.end(), [](const CompareRow* a, const CompareRow* b) { return a->verdict < b->verdict; });
  if (!moved.empty()) out += markdown_table(rows_table(moved)) + "\n";
  if (!rest.empty())
    out += fmt::format("<details><summary>{} rows within the threshold</summary>\n\n{}\n</details>\n\n", rest.size(),
                       markdown_table(rows_table(rest)));
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

}  // namespace cowbench::rep
