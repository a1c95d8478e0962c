// `--until-ci`: which workloads get another interleaved round because a median is not yet known closely enough.
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

}  // namespace cowbench
