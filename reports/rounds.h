// Round effects: the part of a run's wall time that the backends of one round shared (the host at that moment), estimated so that compare can take it out.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "reports/metrics.h"
#include "reports/results.h"

namespace cowbench::rep {

// One round of one workload: its backends ran back to back (interleaved, rotated), so whatever
// the host did during those seconds — writeback of other work, a neighbour on the VM, the
// matrix's own growing state — hits all of them. Rounds are per testbed.
using RoundKey = std::tuple<std::string, std::string, int>;  // testbed, workload, repeat

// What the rounds of one document shared, on the log scale, and how each run is corrected.
// A run's deviation is its log value minus its row's mean over the repeats. The rounds' shared
// variance `shared_var` is the mean product of two different backends' deviations in one round
// (zero when their noise is independent), floored at 0; `noise_var` what is left of a
// deviation's variance. A run's correction is `weight` × the mean deviation of the *other*
// backends of its round (never its own: its noise must stay in its row's spread), with
// weight = shared / (shared + noise / others) — the best linear guess of the round's share from
// the others (empirical Bayes again: no shared variance, no correction). A backend slower in
// every round, a regression, leaves the deviations, hence the corrections, alone.
struct RoundModel {
  double shared_var = 0, noise_var = 0;
  int rounds = 0;  // rounds with at least `min_backends` backends
  // (testbed, workload, repeat, backend) → the log correction of that run.
  std::map<std::tuple<std::string, std::string, int, std::string>, double> correction;
};

RoundModel fit_rounds(const std::vector<Run>& runs, const Metric& m, int min_backends = 3);

// The measured values of `m` over `runs` (as measured()), each corrected by its round:
// exp(log(1 + value) - correction) - 1.
std::vector<double> measured_within_rounds(const std::vector<const Run*>& runs, const Metric& m, const RoundModel& model);

}  // namespace cowbench::rep
