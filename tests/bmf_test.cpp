// Bencher Metric Format: structure and values against the golden results, and `cowbench report --format bmf`.
#include <gtest/gtest.h>

#include <set>

#include "common/fs.h"
#include "reports/bmf.h"
#include "reports/metrics.h"
#include "reports/results.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;

std::string fixture_path() { return source_path("tests/golden/results.json"); }

// The structure of https://bencher.dev/bmf.json: benchmark → measure → {value, lower_value?,
// upper_value?}, numbers, nothing else; and lower ≤ value ≤ upper.
void expect_bmf_shape(const json& bmf) {
  ASSERT_TRUE(bmf.is_object());
  for (const auto& [name, measures] : bmf.items()) {
    EXPECT_FALSE(name.empty());
    ASSERT_TRUE(measures.is_object()) << name;
    EXPECT_FALSE(measures.empty()) << name;
    for (const auto& [measure, m] : measures.items()) {
      EXPECT_LE(measure.size(), 64u) << "a Bencher measure slug has at most 64 characters: " << measure;
      ASSERT_TRUE(m.is_object()) << name << " " << measure;
      ASSERT_TRUE(m.contains("value") && m["value"].is_number()) << name << " " << measure;
      for (const auto& [k, v] : m.items()) {
        EXPECT_TRUE(k == "value" || k == "lower_value" || k == "upper_value") << k;
        EXPECT_TRUE(v.is_number()) << name << " " << measure << " " << k;
      }
      EXPECT_EQ(m.contains("lower_value"), m.contains("upper_value")) << name << " " << measure;
      if (m.contains("lower_value")) {
        EXPECT_LE(m["lower_value"].get<double>(), m["value"].get<double>()) << name;
        EXPECT_GE(m["upper_value"].get<double>(), m["value"].get<double>()) << name;
      }
    }
  }
}

TEST(Bmf, OneBenchmarkPerRowWithItsMedians) {
  rep::Results r = rep::load_results(fixture_path());
  json bmf = rep::to_bmf(r);
  expect_bmf_shape(bmf);
  std::set<std::string> want;
  for (const auto& s : rep::summarize(r.runs)) {
    std::string name = s.backend + "/" + s.workload;
    if (s.n == 0) {
      EXPECT_FALSE(bmf.contains(name)) << name << " has no ok run";
      continue;
    }
    want.insert(name);
    ASSERT_TRUE(bmf.contains(name)) << name;
    const json& b = bmf[name];
    if (s.median_wall_ns >= 0) {
      EXPECT_EQ(b["latency"]["value"].get<int64_t>(), s.median_wall_ns) << name;
      if (s.ci95_ns >= 0) {
        EXPECT_EQ(b["latency"]["lower_value"].get<int64_t>(), std::max<int64_t>(0, s.median_wall_ns - s.ci95_ns)) << name;
        EXPECT_EQ(b["latency"]["upper_value"].get<int64_t>(), s.median_wall_ns + s.ci95_ns) << name;
      } else {
        EXPECT_FALSE(b["latency"].contains("lower_value")) << name << ": one run has no interval";
      }
    } else {
      EXPECT_FALSE(b.contains("latency")) << name << ": no wall time (exec failed, or not measured)";
    }
    auto value_only = [&](const char* measure, int64_t v) {
      if (v < 0) {
        EXPECT_FALSE(b.contains(measure)) << name << " " << measure << " was not measured";
        return;
      }
      ASSERT_TRUE(b.contains(measure)) << name << " " << measure;
      EXPECT_EQ(b[measure]["value"].get<int64_t>(), v) << name << " " << measure;
      EXPECT_EQ(b[measure].size(), 1u) << name << " " << measure << ": value only";
    };
    value_only("copy-ups", rep::copyup_events(s).value);
    value_only("copy-up-bytes", rep::copyup_bytes(s).value);
    value_only("cow-bytes", rep::cow_bytes(s).value);
    value_only("upper-bytes", s.median_upper_bytes);
    value_only("page-cache-bytes", s.median_page_cache_bytes);
  }
  EXPECT_EQ(bmf.size(), want.size());
  // The fixture has the workload shapes CI tracks: container, scale-out points, containerd-bench.
  EXPECT_TRUE(bmf.contains("overlayfs/append-log"));
  EXPECT_TRUE(bmf.contains("overlayfs/scale-out/4"));
  EXPECT_TRUE(bmf.contains("overlayfs/containerd-bench"));
}

TEST(Bmf, RowsWhoseRunsAllFailedAreLeftOut) {
  rep::Results r;
  rep::Run ok;
  ok.backend = "copy";
  ok.workload = "metadata";
  ok.wall_ns = 5000;
  ok.upper_bytes = 4096;
  rep::Run bad = ok;
  bad.backend = "overlayfs";
  bad.status = "failed";
  bad.error = "boom";
  r.runs = {ok, bad};
  json bmf = rep::to_bmf(r);
  EXPECT_EQ(bmf, json::parse(R"({"copy/metadata": {"latency": {"value": 5000}, "upper-bytes": {"value": 4096}}})"));
  EXPECT_EQ(rep::to_bmf(rep::Results{}), json::object());
}

TEST(Bmf, ReportCliWritesIt) {
  TempDir tmp(scratch_root(), "bmf");
  std::string out = path_join(tmp.path(), "bmf.json");
  Output o = run_cowbench({"report", fixture_path(), "--format", "bmf", "--out", out});
  ASSERT_EQ(o.code, 0) << o.out;
  json written = json::parse(read_file(out));
  EXPECT_EQ(written, rep::to_bmf(rep::load_results(fixture_path())));
  Output printed = run_cowbench({"report", fixture_path(), "--format", "bmf"});
  ASSERT_EQ(printed.code, 0);
  EXPECT_EQ(json::parse(printed.out), written);
  Output bad = run_cowbench({"report", fixture_path(), "--format", "bmf", "--gbench", source_path("tests/golden/gbench.json")});
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("bmf"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace cowbench::test
