// `cowbench compare` as a CI gate: the U test against brute force, crafted pairs (a 20 % slowdown, noise, too few repeats), bad input exits 2.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/error.h"
#include "common/fs.h"
#include "reports/compare.h"
#include "reports/results.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using rep::Verdict;

// The two-sided p-value of the permutation test by enumerating every split of the pooled
// values (U by pairwise comparison): an independent check of the rank-sum DP.
double brute_force_p(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> pool = a;
  pool.insert(pool.end(), b.begin(), b.end());
  size_t n = pool.size(), n1 = a.size();
  auto u_of = [&](const std::vector<bool>& in_a) {
    double u = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (in_a[i] && !in_a[j]) u += pool[i] > pool[j] ? 1 : pool[i] == pool[j] ? 0.5 : 0;
    return u;
  };
  std::vector<bool> observed(n, false);
  for (size_t i = 0; i < n1; ++i) observed[i] = true;
  double mean = static_cast<double>(n1 * (n - n1)) / 2, obs = std::fabs(u_of(observed) - mean);
  double all = 0, extreme = 0;
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (static_cast<size_t>(__builtin_popcount(mask)) != n1) continue;
    std::vector<bool> in_a(n);
    for (size_t i = 0; i < n; ++i) in_a[i] = mask >> i & 1;
    all += 1;
    extreme += std::fabs(u_of(in_a) - mean) >= obs - 1e-9;
  }
  return extreme / all;
}

TEST(MannWhitney, ExactMatchesEnumeration) {
  const std::vector<std::pair<std::vector<double>, std::vector<double>>> cases{
      {{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}},   // complete separation: 2 / C(10,5)
      {{1, 3, 5}, {2, 4, 6}},                // interleaved: 0.7
      {{1, 2, 2}, {2, 3, 4}},                // ties across the samples
      {{5, 5, 5, 5}, {5, 5, 6, 6}},          // heavy ties
      {{10, 12, 11, 13, 9, 14}, {15, 12, 16, 17}},
      {{3, 1}, {2, 4, 6, 5, 7}},
  };
  for (const auto& [a, b] : cases) {
    rep::UTest t = rep::mann_whitney_u(a, b);
    EXPECT_TRUE(t.exact);
    EXPECT_NEAR(t.p, brute_force_p(a, b), 1e-12) << "a[0]=" << a[0] << " b[0]=" << b[0];
  }
  EXPECT_NEAR(rep::mann_whitney_u({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}).p, 2.0 / 252, 1e-12);
  EXPECT_EQ(rep::mann_whitney_u({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}).u, 0);
  EXPECT_NEAR(rep::mann_whitney_u({1, 3, 5}, {2, 4, 6}).p, 0.7, 1e-12);
  EXPECT_EQ(rep::mann_whitney_u({7, 7, 7}, {7, 7, 7}).p, 1);
  EXPECT_EQ(rep::mann_whitney_u({}, {1, 2}).p, 1);
}

TEST(MannWhitney, NormalApproximationForLargeSamples) {
  std::vector<double> low, high, even, odd;
  for (int i = 0; i < 20; ++i) low.push_back(i), high.push_back(20 + i), even.push_back(2 * i), odd.push_back(2 * i + 1);
  rep::UTest sep = rep::mann_whitney_u(low, high);
  EXPECT_FALSE(sep.exact);
  // z = (200 - 0.5) / sqrt(20 * 20 * 41 / 12) = 5.396: p = 6.8e-8.
  EXPECT_NEAR(sep.p, 6.8e-8, 0.2e-8);
  rep::UTest mixed = rep::mann_whitney_u(even, odd);
  EXPECT_GT(mixed.p, 0.5);
  std::vector<double> flat(40, 3.0);
  EXPECT_EQ(rep::mann_whitney_u({flat.begin(), flat.begin() + 20}, {flat.begin() + 20, flat.end()}).p, 1);
}

TEST(MannWhitney, SmallestReachablePValue) {
  EXPECT_NEAR(rep::min_p_value(3, 3), 0.1, 1e-12);  // 3 repeats can never reach 0.05
  EXPECT_NEAR(rep::min_p_value(4, 4), 2.0 / 70, 1e-12);
  EXPECT_NEAR(rep::min_p_value(5, 5), 2.0 / 252, 1e-12);
  EXPECT_EQ(rep::min_p_value(1, 1), 1);
  EXPECT_EQ(rep::min_p_value(0, 3), 1);
}

// A document with one (backend, workload) pair whose runs have these wall times (ms) and,
// when given, these copy-up bytes.
rep::Results crafted(const std::vector<double>& wall_ms, const std::string& backend = "overlayfs",
                     const std::string& workload = "startup", int64_t copyup_bytes = -1) {
  rep::Results r;
  r.host = {{"kernel", "6.18.0"}, {"cpus", 2}, {"memory_bytes", 1 << 30}};
  r.config = {{"version", "0.1.0"}, {"image", "synth:default"}, {"repeat", wall_ms.size()}, {"cache", "warm"}, {"trace", "off"}, {"seed", 1}};
  for (size_t i = 0; i < wall_ms.size(); ++i) {
    rep::Run run;
    run.backend = backend;
    run.workload = workload;
    run.repeat = static_cast<int>(i);
    run.wall_ns = static_cast<int64_t>(wall_ms[i] * 1e6);
    run.copyup_bytes = copyup_bytes;
    r.runs.push_back(run);
  }
  return r;
}

const rep::CompareRow& row(const rep::Comparison& c, const std::string& key) {
  for (const auto& r : c.rows)
    if (r.metric->key == key) return r;
  throw std::runtime_error("no row " + key);
}

const std::vector<double> kBase5{100.0, 101.3, 99.2, 100.6, 99.8};

TEST(Compare, TwentyPercentSlowdownOverFiveRepeatsIsARegression) {
  std::vector<double> slow;
  for (double v : kBase5) slow.push_back(v * 1.2);
  rep::Comparison c = rep::compare_results(crafted(kBase5), crafted(slow), {});
  const auto& r = row(c, "wall_ns");
  EXPECT_EQ(r.verdict, Verdict::kRegression);
  EXPECT_NEAR(r.change, 0.2, 0.01);
  EXPECT_LT(r.p, 0.05);
  EXPECT_EQ(r.method, "U exact");
  EXPECT_EQ(c.count(Verdict::kRegression), 1);
  // The other way round it is an improvement, not a regression.
  EXPECT_EQ(row(rep::compare_results(crafted(slow), crafted(kBase5), {}), "wall_ns").verdict, Verdict::kImprovement);
}

TEST(Compare, NoiseWithinTheThresholdIsNot) {
  // 2 % slower: significant (every new repeat is slower) but under the 5 % threshold.
  std::vector<double> bit_slower;
  for (double v : kBase5) bit_slower.push_back(v * 1.02 + 0.5);
  EXPECT_EQ(row(rep::compare_results(crafted(kBase5), crafted(bit_slower), {}), "wall_ns").verdict, Verdict::kWithin);
  // Noisy repeats whose medians differ by 8 %: over the threshold, but the U test sees noise.
  rep::Comparison noisy = rep::compare_results(crafted({100, 131, 88, 119, 95}), crafted({108, 92, 127, 99, 136}), {});
  EXPECT_EQ(row(noisy, "wall_ns").verdict, Verdict::kNotSignificant);
  EXPECT_EQ(noisy.count(Verdict::kRegression), 0);
  // A looser threshold turns the 20 % slowdown into a pass; so does an alpha that 5 against
  // 5 repeats cannot reach (their smallest p is 2/252 = 0.0079).
  std::vector<double> slow;
  for (double v : kBase5) slow.push_back(v * 1.2);
  EXPECT_EQ(row(rep::compare_results(crafted(kBase5), crafted(slow), {.threshold = 0.25}), "wall_ns").verdict, Verdict::kWithin);
  EXPECT_EQ(row(rep::compare_results(crafted(kBase5), crafted(slow), {.alpha = 0.005}), "wall_ns").verdict,
            Verdict::kTooFewRepeats);
}

TEST(Compare, ThreeRepeatsCannotBeTestedButConstantFiguresCan) {
  // 3 against 3: the smallest reachable p is 0.1 > 0.05, so a 20 % slowdown is untestable.
  rep::Comparison c = rep::compare_results(crafted({100, 101, 99}, "overlayfs", "startup", 65536),
                                           crafted({120, 121, 119}, "overlayfs", "startup", 1 << 30), {});
  const auto& wall = row(c, "wall_ns");
  EXPECT_EQ(wall.verdict, Verdict::kTooFewRepeats);
  EXPECT_NEAR(wall.p, 0.1, 1e-12);
  // Copy-up bytes were the same in every repeat on each side: deterministic, so the change is real.
  const auto& cu = row(c, "copyup.bytes");
  EXPECT_EQ(cu.method, "constant");
  EXPECT_EQ(cu.verdict, Verdict::kRegression);
  std::string md = rep::comparison_markdown(c, "base.json", "new.json");
  EXPECT_NE(md.find("cannot be tested at alpha 0.05"), std::string::npos) << md;
  EXPECT_NE(md.find("0.100"), std::string::npos) << md;
  EXPECT_NE(md.find("--repeat 4"), std::string::npos) << md;
  // At alpha 0.1 the complete separation of 3 against 3 is significant.
  EXPECT_EQ(row(rep::compare_results(crafted({100, 101, 99}), crafted({120, 121, 119}), {.alpha = 0.11}), "wall_ns").verdict,
            Verdict::kRegression);
  // One repeat: nothing to test.
  EXPECT_EQ(row(rep::compare_results(crafted({100}), crafted({150}), {}), "wall_ns").method, "n<2");
}

TEST(Compare, NoCommonRowsIsBadInput) {
  try {
    rep::compare_results(crafted(kBase5, "overlayfs"), crafted(kBase5, "copy"), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("no common rows"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("startup on copy"), std::string::npos) << e.what();
  }
}

class CompareCli : public ::testing::Test {
 protected:
  std::string save(const rep::Results& r, const std::string& name) {
    std::string p = path_join(dir_.path(), name);
    rep::save_results(r, p);
    return p;
  }
  TempDir dir_{scratch_root(), "compare"};
};

TEST_F(CompareCli, RegressionExitsOneWithAMarkdownTable) {
  std::vector<double> slow;
  for (double v : kBase5) slow.push_back(v * 1.2);
  std::string base = save(crafted(kBase5), "base.json"), now = save(crafted(slow), "new.json");
  std::string summary = path_join(dir_.path(), "summary.md");
  Output o = run_cowbench({"compare", base, now, "--out", summary});
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("| overlayfs | startup | wall time |"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("**regression**"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("+20.0 %"), std::string::npos) << o.out;
  EXPECT_EQ(read_file(summary), o.out);
  // --threshold 25 lets it pass.
  EXPECT_EQ(run_cowbench({"compare", base, now, "--threshold", "25"}).code, 0);
}

TEST_F(CompareCli, NoiseExitsZero) {
  std::string base = save(crafted(kBase5), "base.json");
  std::string now = save(crafted({100.4, 99.6, 101.1, 100.2, 99.5}), "new.json");
  Output o = run_cowbench({"compare", base, now});
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("no regression"), std::string::npos) << o.out;
}

TEST_F(CompareCli, BadInputExitsTwoNamingIt) {
  std::string good = save(crafted(kBase5), "good.json");
  std::string other = path_join(dir_.path(), "v2.json");
  write_file_atomic(other, R"({"schema": "cowbench/v2", "runs": []})", 0644, false);
  std::string garbage = path_join(dir_.path(), "garbage.json");
  write_file_atomic(garbage, "{not json", 0644, false);
  std::string missing = path_join(dir_.path(), "missing.json");
  std::string elsewhere = save(crafted(kBase5, "copy", "metadata"), "elsewhere.json");
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> says;
  };
  for (const Case& c : std::vector<Case>{
           {{"compare", good, other}, {"new file", other, "cowbench/v2", "cowbench/v1"}},
           {{"compare", other, good}, {"base file", other, "cowbench/v2"}},
           {{"compare", missing, good}, {"base file", missing, "does not exist"}},
           {{"compare", good, dir_.path()}, {"new file", dir_.path()}},
           {{"compare", good, garbage}, {"new file", garbage, "not valid JSON"}},
           {{"compare", good, elsewhere}, {"no common rows", "metadata on copy", "startup on overlayfs"}},
           {{"compare", good, good, "--alpha", "2"}, {"--alpha"}},
           {{"compare", good}, {"NEW"}},
       }) {
    Output o = run_cowbench(c.args);
    EXPECT_EQ(o.code, 2) << c.args.back() << ": " << o.out;
    for (const auto& s : c.says) EXPECT_NE(o.out.find(s), std::string::npos) << "expected '" << s << "' in: " << o.out;
  }
}

TEST_F(CompareCli, Help) {
  Output o = run_cowbench({"compare", "--help"});
  EXPECT_EQ(o.code, 0);
  for (const char* s : {"BASE", "NEW", "--threshold", "--alpha", "--out"}) EXPECT_NE(o.out.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace cowbench::test
