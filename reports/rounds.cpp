// Round effects (see rounds.h).
#include "reports/rounds.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace cowbench::rep {
namespace {

using RowKey = std::tuple<std::string, std::string, std::string>;  // testbed, backend, workload

double log_value(const Run& r, const Metric& m) { return std::log1p(static_cast<double>(m.get(r))); }

}  // namespace

RoundModel fit_rounds(const std::vector<Run>& runs, const Metric& m, int min_backends) {
  auto usable = [&](const Run& r) { return r.status == "ok" && m.get(r) >= 0; };
  // Each row's mean log value over its repeats.
  std::map<RowKey, std::pair<double, int>> sums;
  for (const Run& r : runs)
    if (usable(r)) {
      auto& s = sums[{r.testbed, r.backend, r.workload}];
      s.first += log_value(r, m);
      ++s.second;
    }
  // Per round, each backend's deviation from its row's mean (a scale-out round has several
  // runs of one backend: their mean; rows of one repeat say nothing).
  std::map<RoundKey, std::map<std::string, std::pair<double, int>>> rounds;
  for (const Run& r : runs) {
    if (!usable(r)) continue;
    const auto& s = sums[{r.testbed, r.backend, r.workload}];
    if (s.second < 2) continue;
    auto& d = rounds[{r.testbed, r.workload, r.repeat}][r.backend];
    d.first += log_value(r, m) - s.first / s.second;
    ++d.second;
  }
  RoundModel model;
  double products = 0, squares = 0;
  long pairs = 0, singles = 0;
  std::vector<std::pair<RoundKey, std::vector<std::pair<std::string, double>>>> used;
  for (const auto& [round, by_backend] : rounds) {
    if (static_cast<int>(by_backend.size()) < min_backends) continue;
    std::vector<std::pair<std::string, double>> dev;
    for (const auto& [b, d] : by_backend) dev.emplace_back(b, d.first / d.second);
    for (size_t i = 0; i < dev.size(); ++i) {
      squares += dev[i].second * dev[i].second;
      ++singles;
      for (size_t j = i + 1; j < dev.size(); ++j) {
        products += dev[i].second * dev[j].second;
        ++pairs;
      }
    }
    used.emplace_back(round, std::move(dev));
  }
  model.rounds = static_cast<int>(used.size());
  if (pairs == 0) return model;
  model.shared_var = std::max(0.0, products / static_cast<double>(pairs));
  model.noise_var = std::max(0.0, squares / static_cast<double>(singles) - model.shared_var);
  if (model.shared_var <= 0) return model;
  for (const auto& [round, dev] : used) {
    double total = 0;
    for (const auto& [b, d] : dev) total += d;
    const double others = static_cast<double>(dev.size() - 1);
    const double weight = model.shared_var / (model.shared_var + model.noise_var / others);
    for (const auto& [b, d] : dev)
      model.correction[{std::get<0>(round), std::get<1>(round), std::get<2>(round), b}] = weight * (total - d) / others;
  }
  return model;
}

std::vector<double> measured_within_rounds(const std::vector<const Run*>& runs, const Metric& m, const RoundModel& model) {
  std::vector<double> out;
  for (const Run* r : runs) {
    int64_t v = m.get(*r);
    if (v < 0) continue;
    auto it = model.correction.find({r->testbed, r->workload, r->repeat, r->backend});
    double c = it == model.correction.end() ? 0 : it->second;
    out.push_back(std::expm1(std::log1p(static_cast<double>(v)) - c));
  }
  return out;
}

}  // namespace cowbench::rep
