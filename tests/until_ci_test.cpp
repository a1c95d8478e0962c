// --until-ci's choice of the workloads that get another round, from summary rows.
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

}  // namespace
}  // namespace cowbench::test
