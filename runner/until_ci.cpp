// `--until-ci` and `--ci`: which workloads get another round (see until_ci.h).
#include "runner/until_ci.h"

#include <cmath>
#include <map>

#include "reports/stats.h"

namespace cowbench {
namespace {

bool belongs(const std::string& row, const std::string& name, wl::Shape shape) {
  if (row == name) return true;
  return (shape == wl::Shape::kScaleOut || shape == wl::Shape::kFamily) && row.size() > name.size() && row.starts_with(name) && row[name.size()] == '/';
}

}  // namespace

std::set<std::string> imprecise_workloads(const std::vector<rep::SummaryRow>& rows,
                                          const std::vector<std::pair<std::string, wl::Shape>>& workloads,
                                          double fraction) {
  std::set<std::string> out;
  for (const auto& row : rows) {
    if (row.n < 2 || row.median_wall_ns <= 0 || row.ci95_ns < 0) continue;
    if (static_cast<double>(row.ci95_ns) <= fraction * static_cast<double>(row.median_wall_ns)) continue;
    for (const auto& [name, shape] : workloads)
      if (belongs(row.workload, name, shape)) out.insert(name);
  }
  return out;
}

std::vector<RowResolution> wall_resolution(const std::vector<rep::Run>& runs, double alpha, double power) {
  std::map<std::pair<std::string, std::string>, std::vector<double>> logs;
  std::vector<std::pair<std::string, std::string>> order;
  for (const auto& r : runs) {
    if (r.status != "ok" || r.wall_ns <= 0) continue;
    auto key = std::make_pair(r.backend, r.workload);
    if (!logs.count(key)) order.push_back(key);
    logs[key].push_back(std::log(1.0 + static_cast<double>(r.wall_ns)));
  }
  std::vector<double> vars, dfs;
  std::map<std::string, int> backends;
  std::map<std::pair<std::string, std::string>, rep::MeanVar> spread;
  for (const auto& key : order) {
    const rep::MeanVar& m = spread[key] = rep::mean_var(logs[key]);
    ++backends[key.first];
    if (m.n < 2) continue;
    vars.push_back(m.var);
    dfs.push_back(m.n - 1);
  }
  rep::VariancePrior prior = rep::fit_variance_prior(vars, dfs);
  int tests = static_cast<int>(order.size());
  for (const auto& [b, k] : backends) tests += k >= 2;
  std::vector<RowResolution> out;
  for (const auto& key : order) {
    const rep::MeanVar& m = spread[key];
    if (m.n < 2) continue;
    // A comparison with a run like this one: both sides with this n and this spread.
    rep::RowTest t = rep::moderated_t(m, m, prior.var, prior.df);
    double d = rep::min_detectable(t.se, t.df, alpha / std::max(1, tests), power);
    out.push_back({key.first, key.second, m.n, std::expm1(d)});
  }
  return out;
}

std::set<std::string> unresolved_workloads(const std::vector<RowResolution>& rows,
                                           const std::vector<std::pair<std::string, wl::Shape>>& workloads,
                                           double target) {
  std::set<std::string> out;
  for (const auto& row : rows) {
    if (row.min_detectable_change <= target) continue;
    for (const auto& [name, shape] : workloads)
      if (belongs(row.workload, name, shape)) out.insert(name);
  }
  return out;
}

int repeats_for(double sd, double target, int tests, double alpha, double power) {
  double z = rep::normal_quantile(1 - alpha / (2.0 * std::max(1, tests))) + rep::normal_quantile(power);
  double n = 2 * std::pow(z * sd / std::log1p(target), 2);
  return std::max(2, static_cast<int>(std::ceil(n)));
}

}  // namespace cowbench
