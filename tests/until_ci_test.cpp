// The choice of the workloads that get another round: --until-ci from summary rows, --ci from the wall-time resolution of the runs so far.
#include "runner/until_ci.h"

#include <gtest/gtest.h>

namespace cowbench::test {
namespace {

rep::SummaryRow row(const std::string& workload, int64_t median, int64_t ci, int n = 3) {
  rep::SummaryRow r;
  r.backend = "overlayfs";
  r.workload = workload;
  r.n = n;
  r.median_wall_ns = median;
  r.ci95_ns = ci;
  return r;
}

const std::vector<std::pair<std::string, wl::Shape>> kPlanned = {
    {"startup", wl::Shape::kContainer},
    {"exec:/bin/sh -c 'cat /etc/x'", wl::Shape::kContainer},
    {"scale-out", wl::Shape::kScaleOut}};

TEST(UntilCi, WideIntervalsGetAnotherRound) {
  auto more = imprecise_workloads({row("startup", 1000, 200), row("scale-out/4", 1000, 50)}, kPlanned, 0.1);
  EXPECT_EQ(more, (std::set<std::string>{"startup"}));
}

// A command with a '/' is a workload name of its own, not a scale-out row.
TEST(UntilCi, ExecCommandWithASlashIsMatchedWhole) {
  auto more = imprecise_workloads({row("exec:/bin/sh -c 'cat /etc/x'", 1000, 500)}, kPlanned, 0.1);
  EXPECT_EQ(more, (std::set<std::string>{"exec:/bin/sh -c 'cat /etc/x'"}));
}

TEST(UntilCi, ScaleOutRowsBelongToTheirWorkload) {
  auto more = imprecise_workloads({row("scale-out/16", 1000, 300)}, kPlanned, 0.1);
  EXPECT_EQ(more, (std::set<std::string>{"scale-out"}));
  EXPECT_TRUE(imprecise_workloads({row("scale-outer/2", 1000, 300)}, kPlanned, 0.1).empty());
  EXPECT_TRUE(imprecise_workloads({row("startup/2", 1000, 300)}, kPlanned, 0.1).empty()) << "not a scale-out workload";
}

TEST(UntilCi, RowsWithoutASpreadAreLeftAlone) {
  EXPECT_TRUE(imprecise_workloads({row("startup", 1000, 500, 1)}, kPlanned, 0.1).empty()) << "one run";
  EXPECT_TRUE(imprecise_workloads({row("startup", -1, 500)}, kPlanned, 0.1).empty()) << "no median";
  EXPECT_TRUE(imprecise_workloads({row("startup", 1000, 100)}, kPlanned, 0.1).empty()) << "exactly at the target";
}

// Runs of one (backend, workload) with these wall times (ms).
std::vector<rep::Run> runs_of(const std::string& backend, const std::string& workload, const std::vector<double>& ms) {
  std::vector<rep::Run> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    rep::Run r;
    r.backend = backend;
    r.workload = workload;
    r.repeat = static_cast<int>(i);
    r.wall_ns = static_cast<int64_t>(ms[i] * 1e6);
    out.push_back(r);
  }
  return out;
}

// A steady row resolves a 10 % change, a noisy one does not, and more repeats of the same
// spread resolve more.
TEST(Ci, WallResolutionFollowsTheSpreadAndTheRepeats) {
  std::vector<rep::Run> runs = runs_of("overlayfs", "startup", {100, 101, 99, 100.5, 99.5});
  auto noisy = runs_of("overlayfs", "metadata", {100, 160, 70, 130, 85});
  runs.insert(runs.end(), noisy.begin(), noisy.end());
  auto res = wall_resolution(runs, 0.05, 0.8);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].workload, "startup");
  EXPECT_EQ(res[0].n, 5);
  EXPECT_LT(res[0].min_detectable_change, 0.1);
  EXPECT_GT(res[1].min_detectable_change, 0.3);
  EXPECT_EQ(unresolved_workloads(res, kPlanned, 0.1), (std::set<std::string>{}));
  const std::vector<std::pair<std::string, wl::Shape>> both = {{"startup", wl::Shape::kContainer}, {"metadata", wl::Shape::kContainer}};
  EXPECT_EQ(unresolved_workloads(res, both, 0.1), (std::set<std::string>{"metadata"}));
  auto longer = runs_of("overlayfs", "metadata", {100, 160, 70, 130, 85, 100, 160, 70, 130, 85});
  EXPECT_LT(wall_resolution(longer, 0.05, 0.8)[0].min_detectable_change, res[1].min_detectable_change);
  // Failed runs and rows of one run are left out.
  auto one = runs_of("copy", "startup", {50});
  EXPECT_TRUE(wall_resolution(one, 0.05, 0.8).empty());
}

TEST(Ci, RepeatsForANoiseLevel) {
  // 2 ((z(1 - 0.05/2) + z(0.8)) 0.1 / log 1.1)² = 17.3 for one test.
  EXPECT_EQ(repeats_for(0.1, 0.1, 1, 0.05, 0.8), 18);
  EXPECT_GT(repeats_for(0.1, 0.1, 30, 0.05, 0.8), 18) << "more tests, a stricter level";
  EXPECT_GT(repeats_for(0.2, 0.1, 1, 0.05, 0.8), 4 * 17);
  EXPECT_EQ(repeats_for(0.001, 0.1, 1, 0.05, 0.8), 2) << "at least two";
}

}  // namespace
}  // namespace cowbench::test
