// Which workloads get another interleaved round: `--until-ci` (a median not yet known closely enough) and `--ci` (a wall-time row that could not yet resolve the target change).
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "reports/results.h"
#include "workloads/workload.h"

namespace cowbench {

// The workloads (by planned name) with a summary row of at least two runs whose 95 % interval
// of the median is wider than `fraction` of the median. A row belongs to a workload when it
// has the workload's name, or "<name>/<N>" for a kScaleOut workload (one row per container
// count). Pure.
std::set<std::string> imprecise_workloads(const std::vector<rep::SummaryRow>& rows,
                                          const std::vector<std::pair<std::string, wl::Shape>>& workloads,
                                          double fraction);

// The wall-time resolution a row has so far: the minimum detectable change (a fraction) of a
// `cowbench compare` of this run against another like it (the same n and spread), computed as
// compare does — log values, the row's variance moderated towards a prior fitted to all rows,
// Benjamini–Hochberg's level for a lone change over the rows and one combined row per backend,
// `power` — but without the drift between two runs, which one run cannot show. Rows with fewer
// than two ok runs are left out.
struct RowResolution {
  std::string backend, workload;
  int n = 0;
  double min_detectable_change = 0;
};
std::vector<RowResolution> wall_resolution(const std::vector<rep::Run>& runs, double alpha, double power);

// The workloads (by planned name, as imprecise_workloads matches rows) with a row whose
// min_detectable_change is above `target`.
std::set<std::string> unresolved_workloads(const std::vector<RowResolution>& rows,
                                           const std::vector<std::pair<std::string, wl::Shape>>& workloads,
                                           double target);

// The repeats a row needs for a minimum detectable change of `target` when its log-scale
// spread is `sd` (a coefficient of variation, roughly), compared against a run like it, at the
// level a lone change must reach among `tests` (normal quantiles): 2 ((z(1 - alpha/2 tests) +
// z(power)) sd / log(1 + target))², at least 2.
int repeats_for(double sd, double target, int tests, double alpha, double power);

}  // namespace cowbench
