// Reports from a fixed results.json: golden Markdown and CSV, units and ticks, findings, schema validation, Google Benchmark input, `cowbench report`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "reports/csv.h"
#include "reports/family.h"
#include "reports/gbench.h"
#include "reports/html.h"
#include "reports/markdown.h"
#include "reports/reports.h"
#include "reports/results.h"
#include "reports/units.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

std::string golden(const std::string& name) { return source_path("tests/golden/" + name); }

// Compares `actual` with tests/golden/NAME, naming the first line that differs; with
// COWBENCH_UPDATE_GOLDEN=1 in the environment it rewrites the golden file instead.
void expect_golden(const std::string& name, const std::string& actual) {
  if (std::getenv("COWBENCH_UPDATE_GOLDEN")) {
    write_file_atomic(golden(name), actual, 0644, false);
    return;
  }
  std::string want = read_file(golden(name));
  if (want == actual) return;
  std::istringstream w(want), a(actual);
  std::string lw, la;
  for (int line = 1;; ++line) {
    bool more_w = static_cast<bool>(std::getline(w, lw)), more_a = static_cast<bool>(std::getline(a, la));
    if (!more_w && !more_a) break;
    if (lw != la || more_w != more_a) {
      ADD_FAILURE() << "tests/golden/" << name << " line " << line << " differs (COWBENCH_UPDATE_GOLDEN=1 rewrites it)\n  want: "
                    << (more_w ? lw : "<end>") << "\n  got:  " << (more_a ? la : "<end>");
      return;
    }
  }
  ADD_FAILURE() << "tests/golden/" << name << " differs in line ends";
}

rep::Results fixture() { return rep::load_results(golden("results.json")); }

TEST(Units, HumanNumbers) {
  EXPECT_EQ(rep::format_ns(812), "812 ns");
  EXPECT_EQ(rep::format_ns(12345), "12.3 µs");
  EXPECT_EQ(rep::format_ns(4.56e6), "4.56 ms");
  EXPECT_EQ(rep::format_ns(1.234e9), "1.23 s");
  EXPECT_EQ(rep::format_ns(999.7e3), "1 ms");  // not "1000 µs"
  EXPECT_EQ(rep::format_ns(0), "0 ns");
  EXPECT_EQ(rep::format_bytes(512), "512 B");
  EXPECT_EQ(rep::format_bytes(65536), "64 KiB");
  EXPECT_EQ(rep::format_bytes(1 << 30), "1 GiB");
  EXPECT_EQ(rep::format_bytes(1.5 * (1 << 30)), "1.5 GiB");
  EXPECT_EQ(rep::format_bytes(-2048), "-2 KiB");
  EXPECT_EQ(rep::format_count(1234567), "1,234,567");
  EXPECT_EQ(rep::format_count(7), "7");
  EXPECT_EQ(rep::format_change(0.2), "+20.0 %");
  EXPECT_EQ(rep::format_change(-0.041), "-4.1 %");
  EXPECT_EQ(rep::format_change(0), "0.0 %");
  EXPECT_EQ(rep::format_change(INFINITY), "+∞");
  EXPECT_EQ(rep::format_ratio(5.214), "5.21×");
  EXPECT_EQ(rep::format_ratio(16384), "16,384×");
  EXPECT_EQ(rep::format_value(rep::Unit::kFraction, 0.25), "25 %");
  EXPECT_EQ(rep::format_ns(NAN), "—");
}

TEST(Units, NiceTicks) {
  rep::Ticks t = rep::linear_ticks(rep::Unit::kNs, 64.1e6);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "20 ms", "40 ms", "60 ms", "80 ms"}));
  EXPECT_DOUBLE_EQ(t.values.back(), 80e6);
  t = rep::linear_ticks(rep::Unit::kBytes, 1.5 * (1 << 30));
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "0.5 GiB", "1 GiB", "1.5 GiB"}));
  t = rep::linear_ticks(rep::Unit::kBytes, 300 << 10);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "100 KiB", "200 KiB", "300 KiB"}));
  t = rep::linear_ticks(rep::Unit::kCount, 3);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "1", "2", "3"}));
  t = rep::linear_ticks(rep::Unit::kFraction, 1);
  EXPECT_EQ(t.labels.back(), "100 %");
  t = rep::linear_ticks(rep::Unit::kBytes, 0);  // nothing measured: still an axis
  EXPECT_GE(t.values.size(), 2u);
  t = rep::log_ticks(rep::Unit::kNs, 3000, 2e6);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"1 µs", "10 µs", "100 µs", "1 ms", "10 ms"}));
}

TEST(Reports, GoldenMarkdownAndCsv) {
  rep::Results r = fixture();
  expect_golden("report.md", rep::render_markdown(r));
  expect_golden("results.csv", rep::render_csv(r));
  // The same input gives the same bytes (no clock, no hash order).
  EXPECT_EQ(rep::render_markdown(r), rep::render_markdown(fixture()));
  EXPECT_EQ(rep::render_html(r), rep::render_html(fixture()));
}

TEST(Reports, FixtureIsValidAgainstTheSchemaAndBrokenDocumentsAreNot) {
  if (auto why = schema_skip_reason()) GTEST_SKIP() << *why;
  EXPECT_EQ(schema_errors(golden("results.json")), "");
  // What the writer produces for a hand-made document is valid too.
  TempDir dir(scratch_root(), "schema");
  rep::Results r = fixture();
  r.runs.resize(3);
  r.runs[1].status = "failed";
  r.runs[1].error = "container 1 of 1: boom";
  std::string ok = path_join(dir.path(), "ok.json");
  rep::save_results(r, ok);
  EXPECT_EQ(schema_errors(ok), "");
  // The validator does validate: a string for a time, a missing field, a failed run without its error.
  nlohmann::json j = rep::to_json(r);
  j["runs"][0]["wall_ns"] = "12 ms";
  j["runs"][2].erase("disk");
  j["runs"][1].erase("error");
  std::string bad = path_join(dir.path(), "bad.json");
  write_file_atomic(bad, j.dump(), 0644, false);
  std::string errors = schema_errors(bad);
  EXPECT_NE(errors.find("/runs/0/wall_ns"), std::string::npos) << errors;
  EXPECT_NE(errors.find("'disk' is a required property"), std::string::npos) << errors;
  EXPECT_NE(errors.find("'error' is a required property"), std::string::npos) << errors;
}

// Files from before disk.exclusive_bytes was dropped (the runner always wrote upper_bytes into
// it) still load and make the same reports; written again, they leave it out.
TEST(Reports, OldFilesWithExclusiveBytesStillLoad) {
  nlohmann::json j = nlohmann::json::parse(read_file(golden("results.json")));
  ASSERT_FALSE(j.at("runs").empty());
  for (auto& run : j["runs"]) run["disk"]["exclusive_bytes"] = run["disk"]["upper_bytes"];
  for (auto& row : j["summary"]) row["median_exclusive_bytes"] = row["median_upper_bytes"];
  rep::Results old = rep::results_from_json(j);
  ASSERT_EQ(old.runs.size(), j["runs"].size());
  EXPECT_EQ(rep::render_markdown(old), rep::render_markdown(fixture()));
  EXPECT_EQ(rep::render_csv(old), rep::render_csv(fixture()));
  EXPECT_EQ(rep::to_json(old), rep::to_json(fixture()));
  EXPECT_EQ(rep::to_json(old).dump().find("exclusive"), std::string::npos);
}

TEST(Reports, CsvHasOneRowPerRunAndQuotes) {
  rep::Results r = fixture();
  std::string csv = rep::render_csv(r);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), r.runs.size() + 1);
  EXPECT_EQ(csv.substr(0, csv.find('\n')).find("backend,workload,repeat,cache,status,error,exit_code,wall_ns,setup_ns"), 0u);
  rep::Results q;
  rep::Run run;
  run.backend = "overlayfs";
  run.workload = "exec:echo \"a,b\"\nexit 1";
  q.runs.push_back(run);
  csv = rep::render_csv(q);
  EXPECT_NE(csv.find("\"exec:echo \"\"a,b\"\"\nexit 1\""), std::string::npos) << csv;
}

// image-family: medians per K, growth per added image, expected and measured sharing, in the
// Markdown table, the findings and two HTML charts; a failed run is left out.
TEST(Reports, ImageFamilySharing) {
  rep::Results r;
  struct B {
    const char* name;
    const char* share;
    double disk0, disk_step, cache0, cache_step;
  };
  const int64_t mb = 1 << 20;
  for (const B& b : {B{"overlayfs", "layer", 40, 6, 36, 8}, B{"copy", "none", 80, 40, 36, 36}})
    for (int k : {1, 2, 4})
      for (int rep = 0; rep < 3; ++rep) {
        rep::Run run;
        run.backend = b.name;
        run.workload = fmt::format("image-family/{}", k);
        run.repeat = rep;
        run.wall_ns = 100'000'000;
        run.page_cache_bytes = static_cast<int64_t>((b.cache0 + b.cache_step * (k - 1)) * mb) + rep;
        run.extra = {{"images", k},
                     {"disk_bytes", static_cast<int64_t>((b.disk0 + b.disk_step * (k - 1)) * mb)},
                     {"image_bytes", 30 * mb},
                     {"container_bytes", 0},
                     {"read_bytes", 36 * mb * k},
                     {"sharing", {{"disk", b.share}, {"page_cache", b.share}}}};
        r.runs.push_back(run);
      }
  rep::Run failed = r.runs.front();
  failed.status = "failed";
  failed.page_cache_bytes = 999 * mb;
  r.runs.push_back(failed);
  rep::Grouped g(r);
  ASSERT_TRUE(rep::is_image_family("image-family", g));
  auto rows = rep::family_rows("image-family", g);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].backend, "overlayfs");
  ASSERT_EQ(rows[0].points.size(), 3u);
  EXPECT_NEAR(rows[0].disk_per_image, 6.0 * mb, 1);
  EXPECT_NEAR(rows[0].cache_per_image, 8.0 * mb, 1);
  EXPECT_NEAR(rows[0].read_per_image, 36.0 * mb, 1);
  EXPECT_NEAR(rows[0].cache_shared, 1 - 8.0 / 36, 1e-6);
  EXPECT_NEAR(rows[1].cache_shared, 0, 1e-6);
  EXPECT_NEAR(rows[0].points[0].cache, 36.0 * mb + 1, 1) << "the failed run is not in the median";
  std::string md = rep::render_markdown(r, {});
  EXPECT_NE(md.find("layer / layer"), std::string::npos) << md;
  EXPECT_NE(md.find("78 % already cached"), std::string::npos) << md;
  EXPECT_LT(md.find("image-family overlayfs: each added image"), md.find("image-family copy: each added image"))
      << "ranked by page-cache growth per added image";
  std::string html = rep::render_html(r, {});
  EXPECT_NE(html.find("image-family: disk used by the images and their containers"), std::string::npos);
  EXPECT_NE(html.find("image-family: page cache after the reads"), std::string::npos);
  rep::Results plain = fixture();
  rep::Grouped pg(plain);
  for (const auto& f : pg.scale_families()) EXPECT_FALSE(rep::is_image_family(f, pg)) << f;
}

// A document with the tracer on: traced copy-up figures, bytes written, a '|' in an error.
rep::Results traced() {
  rep::Results r;
  r.trace_mode = "tracepoint";
  r.lost_events = 3;
  for (int rep = 0; rep < 3; ++rep)
    for (auto [backend, wall, copyup] : {std::tuple{"overlayfs", 40e6, int64_t{1} << 30}, {"reflink", 10e6, int64_t{0}}}) {
      rep::Run run;
      run.backend = backend;
      run.workload = "db-random-write";
      run.repeat = rep;
      run.wall_ns = static_cast<int64_t>(wall) + rep * 100000;
      run.copyup_events = copyup > 0 ? 4 : 0;
      run.copyup_bytes = copyup;
      run.extra["bytes_written"] = 65536;
      r.runs.push_back(run);
    }
  rep::Run failed;
  failed.backend = "copy";
  failed.workload = "db-random-write";
  failed.status = "failed";
  failed.error = "exit 3 | stderr: disk full";
  r.runs.push_back(failed);
  return r;
}

TEST(Reports, FindingsSayWhatTheNumbersShow) {
  std::string md = rep::render_markdown(traced());
  for (const char* want : {"overlayfs copied up 1 GiB for 64 KiB of writes in db-random-write (16,384× the bytes written).",
                           "reflink copied nothing up in db-random-write.",
                           "db-random-write: reflink was fastest (10.1 ms); overlayfs took 3.97× as long (40.1 ms).",
                           "The tracer lost 3 events", "1 run failed: db-random-write on copy; see",
                           "| overlayfs | 40.1 ms | ± 142 µs | 3.97× | 4 | 1 GiB |", "| copy | failed |",
                           "exit 3 \\| stderr: disk full"})
    EXPECT_NE(md.find(want), std::string::npos) << "missing: " << want << "\n" << md;
  EXPECT_EQ(md.find("†"), std::string::npos) << "traced figures are not ground truth";
}

// Copy-ups the writable layer does not keep (fuse-overlayfs copies a file up before deleting
// it) are named; without them nothing is said.
TEST(Reports, CopiesThatDidNotStayAreAFinding) {
  for (int64_t dropped : {0, 3}) {
    rep::Results r = traced();
    for (auto& run : r.runs)
      if (run.backend == "overlayfs") {
        run.truth_copyups = 4;
        run.truth_copyups_dropped = dropped;
      }
    std::string md = rep::render_markdown(r);
    bool said = md.find("overlayfs copied up 3 files in db-random-write only to delete them: it copies a lower file "
                        "into the writable layer before it hides it (1 of 4 copy-ups stay).") != std::string::npos;
    EXPECT_EQ(said, dropped == 3) << md;
    EXPECT_EQ(md.find("only to delete them") != std::string::npos, dropped == 3) << md;
  }
}

// Block CoW (reflink, btrfs) has columns of its own, apart from file copy-ups, and the report
// says which backend does which.
TEST(Reports, BlockCowIsNotCopyUp) {
  rep::Results r = traced();
  for (auto& run : r.runs)
    if (run.backend == "reflink") {
      run.cow_extents = 16;
      run.cow_bytes = 65536;
      run.cow_new_bytes = 8192;
    } else if (run.backend == "overlayfs") {
      run.cow_extents = run.cow_bytes = run.cow_new_bytes = 0;
    }
  std::string md = rep::render_markdown(r);
  for (const char* want : {"| backend | median wall time | 95 % CI | vs fastest | file copy-ups | copy-up bytes | block CoW | new data |",
                           "| reflink | 10.1 ms | ± 142 µs | 1.00× | 0 | 0 B | 64 KiB | 8 KiB |",
                           "| overlayfs | 40.1 ms | ± 142 µs | 3.97× | 4 | 1 GiB | 0 B | 0 B |",
                           "reflink rewrote 64 KiB of shared blocks (block CoW) for 64 KiB of writes in db-random-write",
                           "“Block CoW” is what reflink and btrfs do instead"})
    EXPECT_NE(md.find(want), std::string::npos) << "missing: " << want << "\n" << md;
  std::string html = rep::render_html(r);
  EXPECT_NE(html.find("Block CoW bytes per backend"), std::string::npos);
  EXPECT_NE(html.find("<th class=\"num\">block CoW</th>"), std::string::npos);
}

// Files written before the block CoW fields existed still load: the fields read as not
// measured; files with them read them back.
TEST(Reports, ResultsWithoutTheBlockCowFieldsStillLoad) {
  rep::Results r = fixture();
  bool old_run = false, new_run = false;
  for (const auto& run : r.runs) {
    if (run.backend == "overlayfs" && run.workload == "startup") {
      old_run = true;
      EXPECT_EQ(run.cow_new_bytes, -1);
      EXPECT_EQ(run.truth_cow_extents, -1);
      EXPECT_EQ(run.truth_cow_bytes, -1);
      EXPECT_EQ(run.truth_new_bytes, -1);
    }
    if (run.backend == "reflink" && run.workload == "append-log") {
      new_run = true;
      EXPECT_EQ(run.truth_copyups, 0);
      EXPECT_EQ(run.truth_cow_bytes, 0);
      EXPECT_EQ(run.truth_new_bytes, 294912);
    }
  }
  EXPECT_TRUE(old_run && new_run);
  rep::Run run;
  run.backend = "btrfs";
  run.workload = "w";
  run.cow_extents = 3;
  run.cow_bytes = 12288;
  run.cow_new_bytes = 4096;
  run.truth_cow_extents = 3;
  run.truth_cow_bytes = 12288;
  run.truth_new_bytes = 4096;
  nlohmann::json j = rep::to_json(run);
  EXPECT_EQ(j["cow"]["new_bytes"], 4096);
  EXPECT_EQ(j["ground_truth"]["cow_extents"], 3);
  rep::Run back = rep::run_from_json(j);
  EXPECT_EQ(back.cow_new_bytes, 4096);
  EXPECT_EQ(back.truth_cow_extents, 3);
  EXPECT_EQ(back.truth_cow_bytes, 12288);
  EXPECT_EQ(back.truth_new_bytes, 4096);
  // The summary has their medians.
  rep::Results one;
  one.runs = {run};
  nlohmann::json s = rep::to_json(one)["summary"][0];
  EXPECT_EQ(s["median_cow_new_bytes"], 4096);
  EXPECT_EQ(s["median_truth_cow_bytes"], 12288);
}

TEST(Reports, EmptyResultsStillMakeReports) {
  rep::Results r;
  EXPECT_NE(rep::render_markdown(r).find("No run produced a result."), std::string::npos);
  EXPECT_EQ(rep::render_csv(r).find('\n'), rep::render_csv(r).size() - 1);
  EXPECT_NE(rep::render_html(r).find("</html>"), std::string::npos);
}

TEST(Reports, LatencyCdfSurvivesTheRoundTrip) {
  std::vector<int64_t> lat;
  for (int i = 1; i <= 1000; ++i) lat.push_back(i * 1000);
  rep::Quantiles q = rep::quantiles(lat);
  ASSERT_EQ(q.cdf.size(), std::size(rep::kCdfFractions));
  EXPECT_EQ(q.cdf.front(), (std::pair<double, int64_t>{0, 1000}));
  EXPECT_EQ(q.cdf.back(), (std::pair<double, int64_t>{1, 1000000}));
  rep::Run run;
  run.backend = "b";
  run.workload = "w";
  run.op_latency = q;
  EXPECT_EQ(rep::run_from_json(rep::to_json(run)).op_latency.cdf, q.cdf);
}

TEST(Gbench, FoldsRepetitionsAndKeepsSkips) {
  rep::GbenchFile f = rep::load_gbench(golden("gbench.json"));
  ASSERT_EQ(f.rows.size(), 3u);
  EXPECT_EQ(f.rows[0].name, "BM_A/8");
  EXPECT_EQ(f.rows[0].family, "BM_A");
  EXPECT_EQ(f.rows[0].instance, "8");
  EXPECT_EQ(f.rows[0].repetitions, 2);
  EXPECT_NEAR(f.rows[0].real_ns, 18.763648030192762, 1e-9);  // the "median" aggregate
  EXPECT_EQ(f.rows[0].counters.at("bytes"), 8);
  EXPECT_EQ(f.rows[2].error, "unavailable: no btrfs");
  std::string md = rep::render_markdown(fixture(), {f});
  EXPECT_NE(md.find("## Microbenchmarks"), std::string::npos);
  EXPECT_NE(md.find("| BM_A/8 | 18.8 ns |"), std::string::npos) << md;
  EXPECT_THROW(rep::load_gbench(golden("results.json")), Error);  // not benchmark output
}

TEST(ReportCli, FormatsAndOut) {
  TempDir dir(scratch_root(), "report-cli");
  Output md = run_cowbench({"report", golden("results.json")});
  EXPECT_EQ(md.code, 0) << md.out;
  EXPECT_EQ(md.out, read_file(golden("report.md")));
  std::string csv = path_join(dir.path(), "r.csv");
  EXPECT_EQ(run_cowbench({"report", golden("results.json"), "--format", "csv", "--out", csv}).code, 0);
  EXPECT_EQ(read_file(csv), read_file(golden("results.csv")));
  std::string html = path_join(dir.path(), "r.html");
  Output h = run_cowbench({"report", golden("results.json"), "--format", "html", "--out", html, "--gbench", golden("gbench.json")});
  EXPECT_EQ(h.code, 0) << h.out;
  EXPECT_NE(read_file(html).find("Microbenchmarks"), std::string::npos);
  rep::write_reports(fixture(), path_join(dir.path(), "out"));
  for (const char* f : {"report.md", "results.csv", "report.html"})
    EXPECT_TRUE(std::filesystem::is_regular_file(path_join(path_join(dir.path(), "out"), f))) << f;
}

TEST(ReportCli, BadInputExitsTwo) {
  TempDir dir(scratch_root(), "report-cli");
  std::string missing = path_join(dir.path(), "nope.json");
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"report", missing}, missing},
           {{"report", golden("results.json"), "--format", "pdf"}, "pdf"},
           {{"report", golden("results.json"), "--gbench", missing}, missing},
           {{"report", golden("gbench.json")}, "schema"},
           {{"report", golden("results.json"), "--format", "csv", "--gbench", golden("gbench.json")}, "csv"},
           {{"report"}, "RESULTS"},
       }) {
    Output o = run_cowbench(args);
    EXPECT_EQ(o.code, 2) << o.out;
    EXPECT_NE(o.out.find(says), std::string::npos) << "expected '" << says << "' in: " << o.out;
  }
  Output help = run_cowbench({"report", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--gbench"), std::string::npos);
}

}  // namespace
}  // namespace cowbench::test
