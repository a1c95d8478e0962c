// `cowbench compare`: exact counters, moderated t-tests with the drift between runs and Benjamini–Hochberg (see compare.h).
#include "reports/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "reports/markdown.h"
#include "reports/rounds.h"
#include "reports/stats.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;
using ByPair = std::map<std::pair<std::string, std::string>, std::vector<const Run*>>;

// The ok runs of each (backend, workload) pair, and the pairs in file order.
Pairs ok_pairs(const Results& r, ByPair& by) {
  Pairs order;
  for (const auto& run : r.runs) {
    if (run.status != "ok") continue;
    // Rows of a document merged from several hosts stay apart, per testbed.
    auto key = std::make_pair(run.testbed.empty() ? run.backend : run.backend + " @ " + run.testbed, run.workload);
    if (!by.count(key)) order.push_back(key);
    by[key].push_back(&run);
  }
  return order;
}

std::string pair_name(const std::pair<std::string, std::string>& p) { return p.second + " on " + p.first; }

// The definition of the row `run` belongs to: its backend and options (config.variants for a
// variant, config.backend_options for a plain backend).
nlohmann::json row_definition(const Results& r, const Run& run) {
  nlohmann::json options = nlohmann::json::object();
  const char* where = run.backend_kind.empty() || run.backend_kind == run.backend ? "backend_options" : "variants";
  if (auto it = r.config.find(where); it != r.config.end() && it->is_object())
    if (auto d = it->find(run.backend); d != it->end() && d->is_object())
      options = std::string(where) == "variants" ? d->value("options", nlohmann::json::object()) : *d;
  return {{"backend", run.backend_kind.empty() ? run.backend : run.backend_kind}, {"options", options}};
}

// How often each run that counted system calls made `name` (0 when it made none).
std::vector<double> syscall_counts(const std::vector<const Run*>& runs, const std::string& name) {
  std::vector<double> out;
  for (const Run* r : runs) {
    if (r->syscalls.empty()) continue;
    auto it = r->syscalls.find(name);
    out.push_back(it == r->syscalls.end() ? 0.0 : static_cast<double>(it->second));
  }
  return out;
}

bool constant(const std::vector<double>& v) { return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); }); }

// log(resolution + value): the scale a row is tested on.
std::vector<double> log_of(const std::vector<double>& v, double resolution) {
  std::vector<double> out;
  for (double x : v) out.push_back(std::log(resolution + x));
  return out;
}

// z of a t statistic: the normal quantile of its CDF, so that rows with different degrees of
// freedom are on one scale, kept finite in the far tails.
double z_of(double t, double df) {
  double c = student_t_cdf(t, df);
  if (c <= 1e-300) return -37;
  if (c >= 1 - 1e-16) return std::clamp(t, 8.2, 37.0);  // beyond double precision: t itself, roughly
  return normal_quantile(c);
}

Verdict decide(bool significant, bool over, double change) {
  if (!over) return Verdict::kWithin;
  if (!significant) return Verdict::kNotSignificant;
  return change > 0 ? Verdict::kRegression : Verdict::kImprovement;
}

// A tested row on its way: its test on the log scale (se with the drift between runs), its z.
struct Pending {
  size_t row = 0;
  MeanVar base, now;  // of the row's log values
  RowTest test;
  double z = 0;
};

// Fills the tested rows of one metric: moderated variances from the metric's shared spread
// (`prior`, fitted here), the variance between the two runs that the repeats do not show (added
// to every row's error), z and p. Returns that variance (of a difference of log means).
double test_metric(std::vector<CompareRow>& rows, std::vector<Pending>& pend, VariancePrior& prior) {
  const double res = pend.empty() ? 1 : rows[pend.front().row].metric->resolution;
  // The shared spread: a prior fitted to the rows' own variances (limma's empirical Bayes).
  std::vector<double> vars, dfs;
  for (Pending& p : pend) {
    p.base = mean_var(log_of(rows[p.row].base, res));
    p.now = mean_var(log_of(rows[p.row].now, res));
    const MeanVar &a = p.base, &b = p.now;
    double df = std::max(0, a.n - 1) + std::max(0, b.n - 1);
    if (df <= 0) continue;
    vars.push_back((std::max(0, a.n - 1) * a.var + std::max(0, b.n - 1) * b.var) / df);
    dfs.push_back(df);
  }
  prior = fit_variance_prior(vars, dfs);
  std::vector<double> diffs, se2;
  for (Pending& p : pend) {
    p.test = moderated_t(p.base, p.now, prior.var, prior.df);
    CompareRow& r = rows[p.row];
    r.change = std::expm1(p.test.diff);
    if (p.test.se <= 0) {
      r.verdict = Verdict::kUntestable;
      continue;
    }
    diffs.push_back(p.test.diff);
    se2.push_back(p.test.se * p.test.se);
  }
  double between = excess_variance(diffs, se2);
  for (Pending& p : pend) {
    if (p.test.se <= 0) continue;
    p.test.se = std::sqrt(p.test.se * p.test.se + between);
    p.test.t = p.test.diff / p.test.se;
    p.z = z_of(p.test.t, p.test.df);
    rows[p.row].p = 2 * normal_cdf(-std::fabs(p.z));
  }
  return between;
}

std::string p_cell(double p) {
  if (std::isnan(p)) return "—";
  return p < 0.001 ? fmt::format("{:.1e}", p) : fmt::format("{:.3f}", p);
}

std::string resolution_cell(const CompareRow& r) {
  if (std::isnan(r.min_detectable_change)) return "exact";
  return fmt::format("±{}", format_value(Unit::kFraction, r.min_detectable_change));
}

Table rows_table(const std::vector<const CompareRow*>& rows) {
  Table t;
  t.header = {"backend", "workload", "metric", "base", "new", "change", "p", "q", "test", "detectable", "n", "verdict"};
  t.numeric = {false, false, false, true, true, true, true, true, false, true, true, false};
  for (const CompareRow* r : rows) {
    Unit u = r->metric->unit;
    std::string verdict = verdict_name(r->verdict);
    if (r->verdict == Verdict::kRegression) verdict = "**" + verdict + "**";
    bool combined = r->method == Method::kCombined || r->method == Method::kShared;
    t.rows.push_back({r->method == Method::kShared ? "all backends" : r->backend, combined ? "all workloads" : r->workload, r->metric->label,
                      combined ? "—" : format_value(u, r->base_median), combined ? "—" : format_value(u, r->new_median),
                      format_change(r->change), p_cell(r->p), p_cell(r->q), method_name(r->method), resolution_cell(*r),
                      fmt::format("{}/{}", r->base.size(), r->now.size()), verdict});
  }
  return t;
}

// What one side's rounds shared (wall time, log scale), for the JSON output.
nlohmann::json rounds_json(const RoundModel& m) {
  return {{"rounds", m.rounds}, {"shared_variance", m.shared_var}, {"noise_variance", m.noise_var}};
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kRegression: return "regression";
    case Verdict::kImprovement: return "improvement";
    case Verdict::kNotSignificant: return "not significant";
    case Verdict::kWithin: return "no change detected";
    case Verdict::kSame: return "same";
    case Verdict::kUntestable: return "untestable";
  }
  return "?";
}

const char* method_name(Method m) {
  switch (m) {
    case Method::kExact: return "exact";
    case Method::kT: return "moderated t";
    case Method::kCombined: return "combined";
    case Method::kShared: return "shared shift";
  }
  return "?";
}

int Comparison::count(Verdict v) const {
  return static_cast<int>(std::count_if(rows.begin(), rows.end(), [&](const CompareRow& r) { return r.verdict == v; }));
}

bool Comparison::regressed() const {
  return std::any_of(rows.begin(), rows.end(), [](const CompareRow& r) { return r.gates && r.verdict == Verdict::kRegression; });
}

Comparison compare_results(const Results& base, const Results& now, const CompareOptions& o) {
  Comparison c;
  c.options = o;
  ByPair b_runs, n_runs;
  Pairs b_order = ok_pairs(base, b_runs), n_order = ok_pairs(now, n_runs);
  std::map<const Metric*, std::vector<Pending>> tested;  // per metric, its tested rows
  const Metric* wall = &run_metrics().front();
  if (o.within_rounds) {
    c.rounds_base = fit_rounds(base.runs, *wall);
    c.rounds_new = fit_rounds(now.runs, *wall);
  }
  std::set<std::string> told;  // rows already in c.redefined
  for (const auto& key : b_order) {
    if (!n_runs.count(key)) {
      c.only_base.push_back(pair_name(key));
      continue;
    }
    const Run& b0 = *b_runs[key].front();
    nlohmann::json bdef = row_definition(base, b0), ndef = row_definition(now, *n_runs[key].front());
    if (bdef != ndef && told.insert(key.first).second)
      c.redefined.push_back(fmt::format("{}: {} {} in base, {} {} in new", key.first, bdef["backend"].get<std::string>(),
                                        bdef["options"].dump(), ndef["backend"].get<std::string>(), ndef["options"].dump()));
    auto add = [&](const Metric& m, std::vector<double> base_values, std::vector<double> new_values) {
      if (base_values.empty() || new_values.empty()) return;
      CompareRow row;
      row.backend = key.first;
      row.workload = key.second;
      row.metric = &m;
      row.base = std::move(base_values);
      row.now = std::move(new_values);
      row.base_median = median(row.base);
      row.new_median = median(row.now);
      if (m.counter && constant(row.base) && constant(row.now)) {
        // A deterministic counter: any difference is the work's, not noise.
        double diff = row.new_median - row.base_median;
        row.method = Method::kExact;
        row.change = row.base_median != 0 ? diff / std::fabs(row.base_median) : diff == 0 ? 0 : diff > 0 ? INFINITY : -INFINITY;
        row.verdict = std::fabs(diff) <= static_cast<double>(m.slack) ? Verdict::kSame
                      : diff > 0                                       ? Verdict::kRegression
                                                                       : Verdict::kImprovement;
      } else {
        row.method = Method::kT;
        tested[&m].push_back(Pending{c.rows.size()});
      }
      c.rows.push_back(std::move(row));
    };
    for (const auto& m : run_metrics()) {
      if (!m.compared) continue;
      if (&m == wall)
        add(m, measured_within_rounds(b_runs[key], m, c.rounds_base), measured_within_rounds(n_runs[key], m, c.rounds_new));
      else
        add(m, measured(b_runs[key], m), measured(n_runs[key], m));
    }
    // The system calls the work itself decides (fsync, unlink, rename …), counted by the tracer.
    for (const std::string& name : workload_syscalls())
      add(syscall_metric(name), syscall_counts(b_runs[key], name), syscall_counts(n_runs[key], name));
  }
  for (const auto& key : n_order)
    if (!b_runs.count(key)) c.only_new.push_back(pair_name(key));
  auto tally = [](const ByPair& by, int& runs, int& busy) {
    for (const auto& [key, rs] : by)
      for (const Run* r : rs) {
        ++runs;
        busy += r->host_load && r->host_load->busy;
      }
  };
  tally(b_runs, c.runs_base, c.busy_base);
  tally(n_runs, c.runs_new, c.busy_new);
  if (c.rows.empty()) {
    auto names = [](const Pairs& p) {
      std::vector<std::string> v;
      for (const auto& k : p) v.push_back(pair_name(k));
      return v.empty() ? std::string("no ok run") : fmt::format("{}", fmt::join(v, ", "));
    };
    fail(Errc::kInvalidInput, "no common rows: no (backend, workload) pair has a measured metric in both files (base: {}; new: {})",
         names(b_order), names(n_order));
  }

  // Each metric's rows tested against their shared spread and the drift between the runs.
  std::vector<Pending> family;
  for (auto& [m, pend] : tested) {
    VariancePrior prior;
    c.between_runs[m->key] = test_metric(c.rows, pend, prior);
    c.prior[m->key] = prior;
    for (const Pending& p : pend)
      if (p.test.se > 0) family.push_back(p);
  }
  // Wall time per backend over all its workloads: a slowdown spread thinly over every workload
  // adds up here — the rows' differences averaged with inverse-variance weights, tested against
  // their standard error plus the drift between the runs at the level of whole backends (a
  // backend's rows move together from one run to the next more than rows of different backends
  // do), estimated across the backends as for rows.
  std::map<std::string, std::vector<const Pending*>> by_backend;
  std::vector<std::string> backend_order;
  for (const Pending& p : family)
    if (c.rows[p.row].metric == wall) {
      auto& v = by_backend[c.rows[p.row].backend];
      if (v.empty()) backend_order.push_back(c.rows[p.row].backend);
      v.push_back(&p);
    }
  struct Combined {
    size_t row;
    double diff, se;  // weighted mean difference of log means; its standard error, drift added below
  };
  std::vector<Combined> combined;
  for (const auto& b : backend_order) {
    const auto& ps = by_backend[b];
    if (ps.size() < 2) continue;
    double wsum = 0, wdsum = 0;
    CompareRow row;
    row.backend = b;
    row.workload = "*";
    row.metric = wall;
    row.method = Method::kCombined;
    for (const Pending* p : ps) {
      double w = 1 / (p->test.se * p->test.se);
      wsum += w;
      wdsum += w * p->test.diff;
      const CompareRow& r = c.rows[p->row];
      row.base.insert(row.base.end(), r.base.begin(), r.base.end());
      row.now.insert(row.now.end(), r.now.begin(), r.now.end());
    }
    combined.push_back({c.rows.size(), wdsum / wsum, std::sqrt(1 / wsum)});
    c.rows.push_back(std::move(row));
  }
  // What every backend shares between the two runs — the host from one run to the next, or
  // what every backend runs on (kernel, file system) — is no one backend's regression, and
  // between two runs of one host it drifts by more than the repeats show (the common shift of
  // 55 pairs of identical default runs on the development VM: sd 6 %). With three or more
  // backends each combined row therefore tests its backend against the others: its difference
  // less the backends' median difference, with the drift of whole backends between the runs
  // (estimated across the backends as for rows) and the median's own error added. The median
  // difference is a row of its own (backend and workload "*", test "shared shift"), tested
  // against the repeats only; it fails the gate only with gate_all (--gate all).
  std::vector<double> bdiff, bse2;
  for (const Combined& cb : combined) {
    bdiff.push_back(cb.diff);
    bse2.push_back(cb.se * cb.se);
  }
  c.between_backends = excess_variance(bdiff, bse2);
  if (combined.size() >= 3) {
    double shared = median(bdiff), mean_var = 0;
    for (double v : bse2) mean_var += (v + c.between_backends) / static_cast<double>(bse2.size());
    // The median of n values with variance s² has about π/2 · s²/n.
    double shared_var = M_PI / 2 * mean_var / static_cast<double>(combined.size());
    for (Combined& cb : combined) {
      cb.diff -= shared;
      cb.se = std::sqrt(cb.se * cb.se + c.between_backends + shared_var);
    }
    // So are the wall-time rows: each tested, and its change stated, against the shared shift.
    for (Pending& p : family) {
      if (c.rows[p.row].metric != wall) continue;
      p.test.diff -= shared;
      c.rows[p.row].change = std::expm1(p.test.diff);
      p.test.se = std::sqrt(p.test.se * p.test.se + shared_var);
      p.test.t = p.test.diff / p.test.se;
      p.z = z_of(p.test.t, p.test.df);
      c.rows[p.row].p = 2 * normal_cdf(-std::fabs(p.z));
    }
    CompareRow row;
    row.backend = "*";
    row.workload = "*";
    row.metric = wall;
    row.method = Method::kShared;
    double se = 0;
    for (double v : bse2) se += v / static_cast<double>(bse2.size());
    se = std::sqrt(M_PI / 2 * se / static_cast<double>(combined.size()));
    combined.push_back({c.rows.size(), shared, se});
    c.rows.push_back(std::move(row));
  } else {
    for (Combined& cb : combined) cb.se = std::sqrt(cb.se * cb.se + c.between_backends);
  }
  for (Combined& cb : combined) {
    CompareRow& r = c.rows[cb.row];
    r.change = std::expm1(cb.diff);
    r.p = 2 * normal_cdf(-std::fabs(cb.diff / cb.se));
  }

  // Two Benjamini–Hochberg families: wall time (its rows and the combined rows), which gates,
  // and every other measured figure, which gates with `gate_all`.
  const Metric* wall_metric = wall;
  for (bool primary : {true, false}) {
    std::vector<size_t> fam_rows;
    for (const Pending& p : family)
      if ((c.rows[p.row].metric == wall_metric) == primary) fam_rows.push_back(p.row);
    if (primary)
      for (const Combined& cb : combined) fam_rows.push_back(cb.row);
    std::vector<double> ps;
    for (size_t i : fam_rows) ps.push_back(c.rows[i].p);
    std::vector<double> qs = benjamini_hochberg(ps);
    (primary ? c.tested_wall : c.tested_other) = static_cast<int>(fam_rows.size());
    double lone_alpha = o.alpha / std::max<size_t>(1, fam_rows.size());
    double zcrit = normal_quantile(1 - lone_alpha / 2) + normal_quantile(o.power);
    for (size_t j = 0; j < fam_rows.size(); ++j) {
      CompareRow& r = c.rows[fam_rows[j]];
      r.q = qs[j];
      r.gates = (primary && r.method != Method::kShared) || o.gate_all;
      r.verdict = decide(r.q <= o.alpha, std::fabs(r.change) > o.threshold, r.change);
    }
    for (const Pending& p : family) {
      CompareRow& r = c.rows[p.row];
      if ((r.metric == wall_metric) != primary) continue;
      double d = min_detectable(p.test.se, p.test.df, lone_alpha, o.power);
      r.min_detectable_change = std::max(o.threshold, std::expm1(d));
    }
    if (primary)
      for (const Combined& cb : combined) c.rows[cb.row].min_detectable_change = std::max(o.threshold, std::expm1(zcrit * cb.se));
  }
  return c;
}

std::string comparison_markdown(const Comparison& c, const std::string& base_name, const std::string& new_name) {
  std::string out = "## cowbench compare\n\n";
  out += fmt::format("- base: `{}`\n- new: `{}`\n", base_name, new_name);
  out += fmt::format("- counters (copy-ups, bytes, writable layer …) that every repeat repeats exactly are compared "
                     "exactly: any change is real. Measured figures are tested on log values (a t-test whose variance is "
                     "moderated towards the metric's other rows, plus the drift between the two runs that the rows show); wall time also per backend "
                     "over all its workloads. A regression is worse by more than {} with a Benjamini–Hochberg q ≤ {} "
                     "({} wall-time tests{}). “detectable” is the smallest change a row could have flagged (power {}).\n\n",
                     format_value(Unit::kFraction, c.options.threshold), c.options.alpha, c.tested_wall,
                     c.options.gate_all ? fmt::format(", {} other tests", c.tested_other)
                                        : fmt::format("; {} tests of other figures are shown but do not fail the gate", c.tested_other),
                     format_value(Unit::kFraction, c.options.power));
  int reg = c.count(Verdict::kRegression), imp = c.count(Verdict::kImprovement);
  int noise = c.count(Verdict::kNotSignificant), within = c.count(Verdict::kWithin), same = c.count(Verdict::kSame);
  int untestable = c.count(Verdict::kUntestable);
  out += fmt::format("**{}** · {} {} · {} not significant · {} without a detectable change · {} counters the same{} ({} rows)\n\n",
                     reg == 0 ? "no regression" : fmt::format("{} regression{}", reg, reg == 1 ? "" : "s"), imp,
                     imp == 1 ? "improvement" : "improvements", noise, within, same,
                     untestable ? fmt::format(" · {} untestable", untestable) : "", c.rows.size());
  // Resolution first: a reader of a CI summary must see what "no regression" means.
  std::vector<std::string> notes;
  std::vector<double> wall_mdc;
  for (const auto& r : c.rows)
    if (r.metric == &run_metrics().front() && r.method == Method::kT && !std::isnan(r.min_detectable_change))
      wall_mdc.push_back(r.min_detectable_change);
  if (!wall_mdc.empty()) {
    std::sort(wall_mdc.begin(), wall_mdc.end());
    notes.push_back(fmt::format("wall time could be resolved to {} (median row; best {}, worst {}); a backend's wall time over "
                                "all its workloads to the “combined” rows' figure.",
                                format_value(Unit::kFraction, median(wall_mdc)), format_value(Unit::kFraction, wall_mdc.front()),
                                format_value(Unit::kFraction, wall_mdc.back())));
  }
  for (const auto& [key, v] : c.between_runs)
    if (v > 0 && key == std::string(run_metrics().front().key))
      notes.push_back(fmt::format("the wall-time rows differ more than their repeats explain: drift between the two runs of "
                                  "about {} per row, added to every row's error.",
                                  format_value(Unit::kFraction, std::expm1(std::sqrt(v)))));
  if (c.busy_base + c.busy_new > 0)
    notes.push_back(fmt::format("{} of {} base runs and {} of {} new runs were taken while the host was busy (other work on "
                                "its CPUs, or steal): their spread widens the rows' errors, so the gate sees less.",
                                c.busy_base, c.runs_base, c.busy_new, c.runs_new));
  for (const auto& r : c.rows)
    if (r.method == Method::kShared && (r.verdict == Verdict::kRegression || r.verdict == Verdict::kImprovement))
      notes.push_back(fmt::format("every backend moved {} together (the “shared shift” row): the host between the two runs, "
                                  "or what every backend runs on (kernel, file system). The combined rows are taken against "
                                  "it; it fails the gate only with --gate all, since between two runs of one host it drifts "
                                  "more than the repeats show.",
                                  format_change(r.change)));
  if (!c.only_base.empty()) notes.push_back(fmt::format("only in base (not compared): {}.", fmt::join(c.only_base, ", ")));
  if (!c.only_new.empty()) notes.push_back(fmt::format("only in new (not compared): {}.", fmt::join(c.only_new, ", ")));
  if (!c.redefined.empty())
    notes.push_back(fmt::format("rows of one name that ran another backend or other options (compared by name all the same): {}.",
                                fmt::join(c.redefined, "; ")));
  for (const auto& n : notes) out += "- " + n + "\n";
  if (!notes.empty()) out += "\n";

  std::vector<const CompareRow*> moved, rest;
  for (const auto& r : c.rows) (r.verdict == Verdict::kWithin || r.verdict == Verdict::kSame ? rest : moved).push_back(&r);
  std::stable_sort(moved.begin(), moved.end(), [](const CompareRow* a, const CompareRow* b) { return a->verdict < b->verdict; });
  if (!moved.empty()) out += markdown_table(rows_table(moved)) + "\n";
  if (!rest.empty())
    out += fmt::format("<details><summary>{} rows without a change</summary>\n\n{}\n</details>\n\n", rest.size(),
                       markdown_table(rows_table(rest)));
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

nlohmann::json comparison_json(const Comparison& c, const std::string& base_name, const std::string& new_name) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : c.rows)
    rows.push_back({{"metric", r.metric->key},
                    {"backend", r.backend},
                    {"workload", r.workload},
                    {"base", number_or_null(r.base_median)},
                    {"new", number_or_null(r.new_median)},
                    {"change", number_or_null(r.change)},
                    {"p", number_or_null(r.p)},
                    {"q", number_or_null(r.q)},
                    {"test", method_name(r.method)},
                    {"min_detectable_change", number_or_null(r.min_detectable_change)},
                    {"verdict", verdict_name(r.verdict)},
                    {"gates", r.gates},
                    {"n_base", r.base.size()},
                    {"n_new", r.now.size()}});
  nlohmann::json between = nlohmann::json::object(), prior = nlohmann::json::object();
  for (const auto& [k, v] : c.between_runs) between[k] = v;
  for (const auto& [k, v] : c.prior) prior[k] = {{"var", v.var}, {"df", v.df}};
  return {{"base", base_name},
          {"new", new_name},
          {"options",
           {{"threshold", c.options.threshold}, {"alpha", c.options.alpha}, {"power", c.options.power}, {"gate_all", c.options.gate_all}}},
          {"regressions", c.count(Verdict::kRegression)},
          {"improvements", c.count(Verdict::kImprovement)},
          {"tested_wall", c.tested_wall},
          {"tested_other", c.tested_other},
          {"busy_runs", {{"base", c.busy_base}, {"new", c.busy_new}}},
          {"between_runs_variance", between},
          {"between_runs_variance_backends", c.between_backends},
          {"rounds", {{"base", rounds_json(c.rounds_base)}, {"new", rounds_json(c.rounds_new)}}},
          {"prior", prior},
          {"only_base", c.only_base},
          {"only_new", c.only_new},
          {"redefined", c.redefined},
          {"rows", rows}};
}

}  // namespace cowbench::rep
