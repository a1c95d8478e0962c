// `--until-ci` (see until_ci.h).
#include "runner/until_ci.h"

namespace cowbench {

std::set<std::string> imprecise_workloads(const std::vector<rep::SummaryRow>& rows,
                                          const std::vector<std::pair<std::string, wl::Shape>>& workloads,
                                          double fraction) {
  auto belongs = [](const std::string& row, const std::string& name, wl::Shape shape) {
    if (row == name) return true;
    return shape == wl::Shape::kScaleOut && row.size() > name.size() && row.starts_with(name) && row[name.size()] == '/';
  };
  std::set<std::string> out;
  for (const auto& row : rows) {
    if (row.n < 2 || row.median_wall_ns <= 0 || row.ci95_ns < 0) continue;
    if (static_cast<double>(row.ci95_ns) <= fraction * static_cast<double>(row.median_wall_ns)) continue;
    for (const auto& [name, shape] : workloads)
      if (belongs(row.workload, name, shape)) out.insert(name);
  }
  return out;
}

}  // namespace cowbench
