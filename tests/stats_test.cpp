// The gate's statistics against known values: normal and t distributions, Benjamini–Hochberg, the variance between runs, the variance prior.
#include <gtest/gtest.h>

#include <cmath>

#include "common/prng.h"
#include "reports/stats.h"

namespace cowbench::test {
namespace {

// A standard normal value from the platform-independent PRNG (Box–Muller).
double gauss(Prng& rng) {
  double u1 = (static_cast<double>(rng.next() >> 11) + 0.5) / 9007199254740992.0;
  double u2 = (static_cast<double>(rng.next() >> 11) + 0.5) / 9007199254740992.0;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

TEST(Stats, NormalAndStudentT) {
  EXPECT_NEAR(rep::normal_cdf(1.959963985), 0.975, 1e-9);
  EXPECT_NEAR(rep::normal_quantile(0.975), 1.959963985, 1e-7);
  EXPECT_NEAR(rep::normal_quantile(0.8), 0.841621234, 1e-7);
  // Tables: t(0.975; 4) = 2.776445, t(0.975; 10) = 2.228139, t(0.995; 2) = 9.924843.
  EXPECT_NEAR(rep::student_t_cdf(2.776445, 4), 0.975, 1e-6);
  EXPECT_NEAR(rep::student_t_quantile(0.975, 10), 2.228139, 1e-5);
  EXPECT_NEAR(rep::student_t_quantile(0.995, 2), 9.924843, 1e-4);
  // One degree of freedom is Cauchy: P(T <= 1) = 3/4 exactly; symmetric about 0.
  EXPECT_NEAR(rep::student_t_cdf(1, 1), 0.75, 1e-12);
  EXPECT_NEAR(rep::student_t_cdf(-1.7, 7) + rep::student_t_cdf(1.7, 7), 1, 1e-12);
  // Many degrees of freedom approach the normal.
  EXPECT_NEAR(rep::student_t_cdf(1.96, 1e7), rep::normal_cdf(1.96), 1e-6);
}

TEST(Stats, BenjaminiHochberg) {
  std::vector<double> q = rep::benjamini_hochberg({0.01, 0.04, 0.03, 0.5});
  // Sorted 0.01, 0.03, 0.04, 0.5 → 0.04, 0.04·4/3 … then the running minimum from the top.
  EXPECT_NEAR(q[0], 0.04, 1e-12);
  EXPECT_NEAR(q[1], 0.04 * 4 / 3, 1e-12);
  EXPECT_NEAR(q[2], 0.04 * 4 / 3, 1e-12);
  EXPECT_NEAR(q[3], 0.5, 1e-12);
  EXPECT_TRUE(rep::benjamini_hochberg({}).empty());
}

TEST(Stats, ExcessVarianceBetweenRuns) {
  // Rows that fit their own errors need nothing added.
  EXPECT_EQ(rep::excess_variance({0.1, -0.2, 0.1}, {1, 1, 1}), 0);
  EXPECT_EQ(rep::excess_variance({5, 5}, {1, 1}), 0) << "too few to tell";
  // Differences with their own error 0.05 plus drift of sd 0.1 between the runs: v near 0.01,
  // whatever the rows' own errors are.
  Prng rng(7);
  std::vector<double> d, se2;
  for (int i = 0; i < 4000; ++i) {
    double own = 0.02 + 0.08 * static_cast<double>(i % 5) / 4;
    d.push_back(own * gauss(rng) + 0.1 * gauss(rng));
    se2.push_back(own * own);
  }
  EXPECT_NEAR(rep::excess_variance(d, se2), 0.01, 0.0015);
  // Every row 30 % slower, no drift: a change of everything, not variance between runs.
  std::vector<double> shifted;
  for (size_t i = 0; i < se2.size(); ++i) shifted.push_back(0.26 + std::sqrt(se2[i]) * gauss(rng));
  EXPECT_LT(rep::excess_variance(shifted, se2), 0.0005);
}

// Rows whose true variances differ (scaled inverse χ² with d0 = 10 around 0.04) and rows that
// share one: the fitted prior finds both.
TEST(Stats, VariancePriorFitsTheRows) {
  Prng rng(11);
  auto chi2 = [&](int k) {
    double s = 0;
    for (int i = 0; i < k; ++i) {
      double g = gauss(rng);
      s += g * g;
    }
    return s;
  };
  std::vector<double> vars, dfs, same;
  for (int i = 0; i < 3000; ++i) {
    double truth = 0.04 * 10 / chi2(10);
    vars.push_back(truth * chi2(4) / 4);
    same.push_back(0.04 * chi2(4) / 4);
    dfs.push_back(4);
  }
  rep::VariancePrior p = rep::fit_variance_prior(vars, dfs);
  EXPECT_GT(p.df, 6);
  EXPECT_LT(p.df, 16);
  EXPECT_NEAR(p.var, 0.04, 0.006);
  rep::VariancePrior s = rep::fit_variance_prior(same, dfs);
  EXPECT_GT(s.df, 50) << "one shared variance: the prior outweighs a row's own 4 df";
  EXPECT_NEAR(s.var, 0.04, 0.004);
  EXPECT_EQ(rep::fit_variance_prior({0.1, 0.2}, {4, 4}).df, 0) << "too few rows";
}

TEST(Stats, ModeratedTAndDetectableChange) {
  rep::MeanVar a = rep::mean_var({1, 2, 3}), b = rep::mean_var({2, 3, 4});
  EXPECT_DOUBLE_EQ(a.mean, 2);
  EXPECT_DOUBLE_EQ(a.var, 1);
  rep::RowTest own = rep::moderated_t(a, b, 0, 0);
  EXPECT_DOUBLE_EQ(own.diff, 1);
  EXPECT_DOUBLE_EQ(own.df, 4);
  EXPECT_NEAR(own.se, std::sqrt(2.0 / 3), 1e-12);
  // A prior of variance 4 with 4 df: the pooled variance is (4·1 + 4·4) / 8.
  rep::RowTest mod = rep::moderated_t(a, b, 4, 4);
  EXPECT_DOUBLE_EQ(mod.df, 8);
  EXPECT_NEAR(mod.se, std::sqrt(2.5 * 2.0 / 3), 1e-12);
  // One value a side and no prior: nothing to test.
  EXPECT_EQ(rep::moderated_t(rep::mean_var({1}), rep::mean_var({2}), 0, 0).se, 0);
  EXPECT_GT(rep::moderated_t(rep::mean_var({1}), rep::mean_var({2}), 0.01, 10).se, 0);
  // (z 0.975 + z 0.8) · se with many df.
  EXPECT_NEAR(rep::min_detectable(0.1, 1e7, 0.05, 0.8), 0.1 * (1.959964 + 0.841621), 1e-5);
  EXPECT_GT(rep::min_detectable(0.1, 4, 0.05, 0.8), rep::min_detectable(0.1, 40, 0.05, 0.8));
}

}  // namespace
}  // namespace cowbench::test
