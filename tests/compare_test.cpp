// `cowbench compare` as a CI gate: crafted pairs (slowdowns at 3 repeats, noise, exact counters, a backend-wide slowdown), the false-alarm and detection rates of the gate on simulated runs, JSON, the CLI's exit codes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "common/error.h"
#include "common/fs.h"
#include "common/prng.h"
#include "reports/compare.h"
#include "reports/results.h"
#include "reports/rounds.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using rep::Method;
using rep::Verdict;

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

// The run documents of a simulated default matrix: 5 backends × 5 workloads × `n` repeats,
// wall times log-normal around a row's own level with a row's own spread (7–25 % as on the
// development VM), `drift` (sd of log) shifting each row once per document, `slow` multiplying
// one backend's or one row's times.
struct Sim {
  int n = 3;
  double drift = 0.03;
  double rounds = 0;  // sd of log of what every backend of one round (workload, repeat) shares
  // sd of log of a shift of every row of the document (the host from one run to the next), and
  // of one backend's rows (measured on the development VM: 6 % and 4.6 %).
  double run_drift = 0, backend_drift = 0;
  std::string slow_backend, slow_workload;  // backend "*": every backend; empty workload: every workload of it
  double factor = 1;
};
const char* kBackends[] = {"overlayfs", "fuse-overlayfs", "reflink", "btrfs", "copy"};
const char* kWorkloads[] = {"startup", "append-log", "db-random-write", "metadata", "pkg-install"};

double gauss(Prng& rng) {
  double u1 = (static_cast<double>(rng.next() >> 11) + 0.5) / 9007199254740992.0;
  double u2 = (static_cast<double>(rng.next() >> 11) + 0.5) / 9007199254740992.0;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

rep::Results simulated(const Sim& s, Prng& rng) {
  rep::Results r;
  Prng fixed(99);  // the rows' levels and spreads: the same in every document
  std::map<std::pair<std::string, int>, double> round_shift;
  for (const char* w : kWorkloads)
    for (int i = 0; i < s.n; ++i) round_shift[{w, i}] = s.rounds > 0 ? s.rounds * gauss(rng) : 0;
  double run_shift = s.run_drift * gauss(rng);
  for (const char* b : kBackends) {
    double backend_shift = run_shift + s.backend_drift * gauss(rng);
    for (const char* w : kWorkloads) {
      double level = 5e6 * std::exp(4 * static_cast<double>(fixed.below(1000)) / 1000);
      double sd = 0.07 + 0.18 * static_cast<double>(fixed.below(1000)) / 1000;
      double shift = backend_shift + s.drift * gauss(rng);
      bool slow = (s.slow_backend == "*" || b == s.slow_backend) && (s.slow_workload.empty() || w == s.slow_workload);
      for (int i = 0; i < s.n; ++i) {
        rep::Run run;
        run.backend = b;
        run.workload = w;
        run.repeat = i;
        run.wall_ns = static_cast<int64_t>(level * std::exp(shift + round_shift[{w, i}] + sd * gauss(rng)) * (slow ? s.factor : 1));
        run.copyup_events = 16;
        r.runs.push_back(run);
      }
    }
  }
  return r;
}

// How often the gate fails over `pairs` simulated comparisons.
double failure_rate(const Sim& base, const Sim& now, int pairs, uint64_t seed, const rep::CompareOptions& o = {}) {
  Prng rng(seed);
  int failed = 0;
  for (int i = 0; i < pairs; ++i) failed += rep::compare_results(simulated(base, rng), simulated(now, rng), o).regressed();
  return static_cast<double>(failed) / pairs;
}

const rep::CompareRow& row(const rep::Comparison& c, const std::string& key, const std::string& workload) {
  for (const auto& r : c.rows)
    if (r.metric->key == key && r.workload == workload) return r;
  throw std::runtime_error("no row " + key + " " + workload);
}

TEST(Compare, TwentyPercentSlowdownOverThreeRepeatsIsARegression) {
  rep::Comparison c = rep::compare_results(crafted({100, 101.3, 99.2}), crafted({120, 121.6, 119}), {});
  const auto& r = row(c, "wall_ns");
  EXPECT_EQ(r.verdict, Verdict::kRegression);
  EXPECT_NEAR(r.change, 0.2, 0.01);
  EXPECT_LT(r.q, 0.05);
  EXPECT_EQ(r.method, Method::kT);
  EXPECT_TRUE(c.regressed());
  // The other way round it is an improvement, not a regression.
  rep::Comparison back = rep::compare_results(crafted({120, 121.6, 119}), crafted({100, 101.3, 99.2}), {});
  EXPECT_EQ(row(back, "wall_ns").verdict, Verdict::kImprovement);
  EXPECT_FALSE(back.regressed());
}

TEST(Compare, NoiseWithinTheThresholdIsNot) {
  // 2 % slower: significant (every new repeat is slower) but under the 5 % threshold.
  std::vector<double> bit_slower;
  for (double v : kBase5) bit_slower.push_back(v * 1.02 + 0.5);
  EXPECT_EQ(row(rep::compare_results(crafted(kBase5), crafted(bit_slower), {}), "wall_ns").verdict, Verdict::kWithin);
  // Noisy repeats whose means differ by 8 %: over the threshold, but within the noise.
  rep::Comparison noisy = rep::compare_results(crafted({100, 131, 88, 119, 95}), crafted({108, 92, 127, 99, 136}), {});
  EXPECT_EQ(row(noisy, "wall_ns").verdict, Verdict::kNotSignificant);
  EXPECT_FALSE(noisy.regressed());
  // A looser threshold turns a 20 % slowdown into a pass.
  std::vector<double> slow;
  for (double v : kBase5) slow.push_back(v * 1.2);
  EXPECT_EQ(row(rep::compare_results(crafted(kBase5), crafted(slow), {.threshold = 0.25}), "wall_ns").verdict, Verdict::kWithin);
}

TEST(Compare, WritableLayerBlocksWithinTheAllocationSlackAreTheSame) {
  // Identical work ends a block or two apart in the writable layer between runs (seen on ext4):
  // not a change; 16 blocks and more are.
  auto upper = [](int64_t bytes) {
    rep::Results r = crafted({100, 101, 99});
    for (auto& run : r.runs) run.upper_bytes = bytes;
    return r;
  };
  const int64_t base = 240463872;
  const rep::Comparison two_blocks = rep::compare_results(upper(base), upper(base + 2 * 4096), {});
  const auto& blocks = row(two_blocks, "disk.upper_bytes");
  EXPECT_EQ(blocks.method, Method::kExact);
  EXPECT_EQ(blocks.verdict, Verdict::kSame);
  EXPECT_EQ(row(rep::compare_results(upper(base), upper(base + 17 * 4096), {}), "disk.upper_bytes").verdict, Verdict::kRegression);
  EXPECT_EQ(row(rep::compare_results(upper(base), upper(base - 17 * 4096), {}), "disk.upper_bytes").verdict, Verdict::kImprovement);
}

TEST(Compare, CountersAreComparedExactly) {
  rep::Comparison c = rep::compare_results(crafted({100, 101, 99}, "overlayfs", "startup", 65536),
                                           crafted({100, 99, 101}, "overlayfs", "startup", 65537), {});
  const auto& cu = row(c, "copyup.bytes");
  EXPECT_EQ(cu.method, Method::kExact);
  EXPECT_EQ(cu.verdict, Verdict::kRegression) << "one byte more, every repeat: real, and no threshold applies";
  EXPECT_TRUE(std::isnan(cu.min_detectable_change));
  EXPECT_TRUE(c.regressed());
  rep::Comparison same = rep::compare_results(crafted({100, 101, 99}, "overlayfs", "startup", 65536),
                                              crafted({100, 99, 101}, "overlayfs", "startup", 65536), {});
  EXPECT_EQ(row(same, "copyup.bytes").verdict, Verdict::kSame);
  EXPECT_FALSE(same.regressed());
  // A counter that varies between repeats is a measurement: tested, not compared exactly.
  rep::Results varying = crafted({100, 101, 99});
  for (size_t i = 0; i < varying.runs.size(); ++i) varying.runs[i].copyup_bytes = 1000 + static_cast<int64_t>(i);
  EXPECT_EQ(row(rep::compare_results(varying, varying, {}), "copyup.bytes").method, Method::kT);
  // The system calls the work decides are counters: twice the fsyncs is a regression on any
  // machine; calls that follow timing (futex) are not compared.
  auto with_calls = [](int64_t fsyncs, int64_t futexes) {
    rep::Results r = crafted({100, 101, 99});
    for (auto& run : r.runs) run.syscalls = {{"fsync", fsyncs}, {"futex", futexes++}, {"openat", 40}};
    return r;
  };
  rep::Comparison calls = rep::compare_results(with_calls(7, 10), with_calls(14, 30), {});
  const auto& fsync = row(calls, "syscalls.fsync");
  EXPECT_EQ(fsync.method, Method::kExact);
  EXPECT_EQ(fsync.verdict, Verdict::kRegression);
  EXPECT_NEAR(fsync.change, 1.0, 1e-12);
  EXPECT_THROW(row(calls, "syscalls.futex"), std::runtime_error);
  EXPECT_TRUE(calls.regressed());
  EXPECT_EQ(row(rep::compare_results(with_calls(7, 10), with_calls(7, 90), {}), "syscalls.fsync").verdict, Verdict::kSame);
  // Wall time is never exact, even when every repeat gave one value.
  EXPECT_EQ(row(rep::compare_results(crafted({100, 100, 100}), crafted({100, 100, 100}), {}), "wall_ns").method, Method::kT);
}

// Every tested row states its resolution: at least the threshold, smaller with more repeats,
// larger with more noise.
TEST(Compare, EveryTestedRowStatesWhatItCouldDetect) {
  auto mdc = [](const std::vector<double>& a, const std::vector<double>& b) {
    return row(rep::compare_results(crafted(a), crafted(b), {}), "wall_ns").min_detectable_change;
  };
  double three = mdc({100, 110, 95}, {104, 96, 108}), five = mdc({100, 110, 95, 104, 97}, {104, 96, 108, 99, 103});
  double noisy = mdc({100, 150, 70}, {120, 80, 140});
  EXPECT_GE(three, 0.05);
  EXPECT_LT(five, three);
  EXPECT_GT(noisy, three);
  std::string md = rep::comparison_markdown(rep::compare_results(crafted({100, 110, 95}), crafted({104, 96, 108}), {}), "b", "n");
  EXPECT_NE(md.find("wall time could be resolved to"), std::string::npos) << md;
  EXPECT_NE(md.find("| detectable |"), std::string::npos) << md;
}

// A slowdown of one backend spread over all its workloads, too small for any one row: the
// backend's combined wall-time row catches it.
TEST(Compare, ABackendWideSlowdownAddsUp) {
  Prng rng(3);
  rep::Results base = simulated({.n = 9}, rng), now = simulated({.n = 9, .slow_backend = "reflink", .factor = 1.3}, rng);
  rep::Comparison c = rep::compare_results(base, now, {});
  const auto& all = row(c, "wall_ns", "*");
  ASSERT_EQ(all.backend, "overlayfs");  // the first combined row
  bool found = false;
  for (const auto& r : c.rows)
    if (r.method == Method::kCombined && r.backend == "reflink") {
      found = true;
      EXPECT_EQ(r.verdict, Verdict::kRegression) << "q " << r.q;
      EXPECT_NEAR(r.change, 0.3, 0.15);
      for (const auto& w : c.rows)
        if (w.method == Method::kT && w.backend == "reflink" && w.metric == r.metric) {
          EXPECT_LT(r.q, w.q) << w.workload;
        }
    } else if (r.method == Method::kCombined) {
      EXPECT_NE(r.verdict, Verdict::kRegression) << r.backend;
    }
  EXPECT_TRUE(found);
  EXPECT_TRUE(c.regressed());
}

// The gate's error rates on simulated runs of the default matrix (7–25 % noise per row, 3 %
// drift between runs): identical builds fail at most about alpha of the time at any number of
// repeats; a 2× slowdown of one row is caught most of the time at 5 repeats, nearly always at
// 9. One backend slowed over all its workloads is caught less often than that (measured: 40 %
// at 1.3× and 77 % at 1.5× with 5 repeats, 72 % at 1.3× with 9): it is tested against the other
// backends, and its five slowed rows widen the drift estimated from all rows. That is the price
// of passing identical runs of a host that drifts as a whole (the next test).
TEST(Compare, FalseAlarmsAndDetectionOnSimulatedRuns) {
  for (int n : {3, 5}) EXPECT_LE(failure_rate({.n = n}, {.n = n}, 200, 1), 0.08) << n;
  EXPECT_GE(failure_rate({.n = 5}, {.n = 5, .slow_backend = "overlayfs", .slow_workload = "append-log", .factor = 2}, 100, 2), 0.7);
  EXPECT_GE(failure_rate({.n = 5}, {.n = 5, .slow_backend = "btrfs", .factor = 1.3}, 100, 3), 0.3);
  EXPECT_GE(failure_rate({.n = 5}, {.n = 5, .slow_backend = "btrfs", .factor = 1.5}, 100, 3), 0.65);
  EXPECT_GE(failure_rate({.n = 9}, {.n = 9, .slow_backend = "overlayfs", .slow_workload = "append-log", .factor = 2}, 100, 2), 0.9);
  EXPECT_GE(failure_rate({.n = 9}, {.n = 9, .slow_backend = "btrfs", .factor = 1.3}, 100, 3), 0.6);
  // Drift between runs 3× the modelled one is estimated and added to the errors, not raised as alarms.
  EXPECT_LE(failure_rate({.drift = 0.1}, {.drift = 0.1}, 100, 4), 0.1);
  // Every backend 30 % slower (a kernel that slows everything) is not mistaken for drift: it is
  // the shared shift, which fails the gate with --gate all.
  EXPECT_GE(failure_rate({.n = 5}, {.n = 5, .slow_backend = "*", .factor = 1.3}, 50, 5, {.gate_all = true}), 0.9);
}

// Runs of one host drift as a whole and per backend (measured on the development VM over 55
// pairs of identical default runs: every backend's combined time together by sd 6 %, each
// backend on its own by 4.6 % more). The combined rows are taken against what every backend
// shares, so identical runs pass; a uniform 30 % slowdown of one backend is still caught; the
// shared shift is a row of its own that does not fail the gate by default.
TEST(Compare, WholeRunDriftIsTheSharedShiftNotARegression) {
  const Sim same{.n = 4, .run_drift = 0.06, .backend_drift = 0.046};
  Sim slow = same;
  slow.slow_backend = "btrfs";
  slow.factor = 1.3;
  EXPECT_LE(failure_rate(same, same, 200, 11), 0.08);
  EXPECT_GE(failure_rate(same, slow, 100, 12), 0.15);
  slow.factor = 1.5;
  EXPECT_GE(failure_rate(same, slow, 100, 12), 0.35);
  Prng rng(13);
  rep::Results base = simulated({.n = 9}, rng), now = simulated({.n = 9, .slow_backend = "*", .factor = 1.2}, rng);
  rep::Comparison c = rep::compare_results(base, now, {});
  int shared_rows = 0;
  for (const auto& r : c.rows) {
    if (r.method == Method::kShared) {
      ++shared_rows;
      EXPECT_EQ(r.backend, "*");
      EXPECT_NEAR(r.change, 0.2, 0.06);
      EXPECT_EQ(r.verdict, Verdict::kRegression) << "p " << r.p;
      EXPECT_FALSE(r.gates);
    } else if (r.method == Method::kCombined) {
      EXPECT_NEAR(r.change, 0, 0.1) << r.backend << ": the shared 20 % is taken out";
      EXPECT_NE(r.verdict, Verdict::kRegression) << r.backend;
    }
  }
  EXPECT_EQ(shared_rows, 1);
  EXPECT_NE(rep::comparison_markdown(c, "b", "n").find("every backend moved"), std::string::npos);
  rep::CompareOptions all;
  all.gate_all = true;
  EXPECT_TRUE(rep::compare_results(base, now, all).regressed());
}

// What the backends of one round share (the host at that moment: 11–13 % between rounds in
// default runs on the development VM) is taken out before the rows are tested: a uniform 30 %
// slowdown of one backend at the default 4 repeats is caught more often than with the rounds'
// spread counted as noise, the more so the more the rounds share, and identical runs still pass.
TEST(Compare, RoundsSharedByTheBackendsAreTakenOut) {
  const rep::CompareOptions across{.within_rounds = false};
  const Sim base{.n = 4, .rounds = 0.15}, slow{.n = 4, .rounds = 0.15, .slow_backend = "btrfs", .factor = 1.3};
  double within_rate = failure_rate(base, slow, 200, 6), across_rate = failure_rate(base, slow, 200, 6, across);
  const Sim base25{.n = 4, .rounds = 0.25}, slow25{.n = 4, .rounds = 0.25, .slow_backend = "btrfs", .factor = 1.3};
  double within25 = failure_rate(base25, slow25, 200, 6), across25 = failure_rate(base25, slow25, 200, 6, across);
  // (measured: 0.44 against 0.40 at 15 %, 0.36 against 0.22 at 25 %; identical runs fail 5 %)
  EXPECT_GE(within_rate, across_rate);
  EXPECT_GE(within25, across25 + 0.08);
  EXPECT_LE(failure_rate(base, base, 200, 7), 0.08);
  EXPECT_LE(failure_rate(base25, base25, 200, 7), 0.08);
  // The model sees the rounds' shared spread (0.15² = 0.0225) and none where there is none.
  Prng rng(8);
  const rep::Metric& wall = rep::run_metrics().front();
  rep::RoundModel shared = rep::fit_rounds(simulated({.n = 9, .rounds = 0.15}, rng).runs, wall);
  EXPECT_EQ(shared.rounds, 45);
  EXPECT_NEAR(shared.shared_var, 0.0225, 0.012);
  EXPECT_FALSE(shared.correction.empty());
  EXPECT_LT(rep::fit_rounds(simulated({.n = 9}, rng).runs, wall).shared_var, 0.004);
}

TEST(Compare, JsonHasEveryRowsVerdict) {
  rep::Comparison c = rep::compare_results(crafted({100, 101.3, 99.2}), crafted({120, 121.6, 119}), {});
  nlohmann::json j = rep::comparison_json(c, "b.json", "n.json");
  EXPECT_EQ(j["regressions"], 1);
  ASSERT_FALSE(j["rows"].empty());
  bool wall = false;
  for (const auto& r : j["rows"]) {
    for (const char* k : {"metric", "backend", "workload", "base", "new", "change", "p", "test", "min_detectable_change", "verdict"})
      EXPECT_TRUE(r.contains(k)) << k;
    if (r["metric"] == "wall_ns") {
      wall = true;
      EXPECT_EQ(r["verdict"], "regression");
      EXPECT_EQ(r["test"], "moderated t");
      EXPECT_GT(r["min_detectable_change"].get<double>(), 0);
    }
  }
  EXPECT_TRUE(wall);
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
  Output j = run_cowbench({"compare", base, now, "--format", "json"});
  EXPECT_EQ(j.code, 1) << j.out;
  EXPECT_EQ(nlohmann::json::parse(j.out)["regressions"], 1) << j.out;
  EXPECT_EQ(read_file(summary), o.out);
  // --threshold 25 lets it pass.
  EXPECT_EQ(run_cowbench({"compare", base, now, "--threshold", "25"}).code, 0);
}

// In GitHub Actions: the Markdown goes into the job summary and each regression becomes an
// error annotation; a pass writes the summary and no annotation.
TEST_F(CompareCli, GithubStepSummaryAndAnnotations) {
  std::string base = save(crafted({100, 101.3, 99.2}), "base.json"), now = save(crafted({120, 121.6, 119}), "new.json");
  std::string summary = path_join(dir_.path(), "step-summary.md");
  Output o, pass;
  {
    ScopedEnv env("GITHUB_STEP_SUMMARY", summary.c_str());
    o = run_cowbench({"compare", base, now});
    pass = run_cowbench({"compare", base, base});
  }
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("::error title=cowbench regression%3A overlayfs startup::wall time: +20"), std::string::npos) << o.out;
  EXPECT_EQ(pass.code, 0) << pass.out;
  EXPECT_EQ(pass.out.find("::error"), std::string::npos) << pass.out;
  std::string written = read_file(summary);
  EXPECT_EQ(std::count(written.begin(), written.end(), '#') >= 4, true) << written;
  EXPECT_NE(written.find("**1 regression**"), std::string::npos) << written;
  EXPECT_NE(written.find("**no regression**"), std::string::npos) << "the two steps add up:\n" << written;
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
           {{"compare", good, good, "--format", "xml"}, {"--format"}},
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
  for (const char* s : {"BASE", "NEW", "--threshold", "--alpha", "--power", "--format", "--gate", "--out"})
    EXPECT_NE(o.out.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace cowbench::test
