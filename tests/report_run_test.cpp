// Reports from a real run: run_matrix on every available backend, results.json valid against docs/results.schema.json, the reports written and drawn.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "reports/reports.h"
#include "reports/results.h"
#include "runner/run.h"
#include "snapshotters/registry.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

// A small service image without a shell: binaries, libraries, config, and four 16 MiB
// database files (so that whole-file copy-up shows against 4 KiB writes).
void service_image(const std::string& root) {
  for (const char* d : {"bin", "lib", "etc", "usr", "usr/lib", "var", "var/lib", "var/lib/db", "var/log"}) create_dir(d)(root);
  for (int i = 0; i < 30; ++i) create_file("bin/svc" + std::to_string(i), std::string(40000 + 512 * i, 'b'), 0755)(root);
  for (int i = 0; i < 30; ++i) create_file("usr/lib/libsvc" + std::to_string(i) + ".so", std::string(250000 + 64 * i, 'l'))(root);
  for (int i = 0; i < 80; ++i) create_file("etc/svc" + std::to_string(i) + ".conf", "option=" + std::to_string(i) + "\n")(root);
  for (int i = 0; i < 4; ++i) create_file("var/lib/db/table" + std::to_string(i), std::string(16 << 20, 'd'))(root);
  for (int i = 0; i < 6; ++i) create_file("var/log/svc" + std::to_string(i) + ".log", std::string(2 << 20, 'g'))(root);
}

TEST(ReportRun, RealRunIsValidAndItsReportsAreDrawn) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto host_lock = hold_host_lock();
  TempDir tmp(scratch_root(), "report-run");
  RunConfig cfg;
  cfg.workdir = path_join(tmp.path(), "work");
  cfg.out = path_join(tmp.path(), "out");
  cfg.trace = "off";
  cfg.warmup = false;
  cfg.repeat = 3;
  cfg.timeout = std::chrono::seconds(120);
  cfg.workloads = {"startup", "append-log", "db-random-write", "metadata", "pkg-install", "containerd-bench", "scale-out", "exec:true"};
  cfg.scale_out = {1, 2, 4};
  cfg.image = "test:service-image";  // what the importer below makes (results.json records it)
  RunHooks hooks;
  hooks.import_image = [&](snap::Snapshotter& sn, const std::string&) {
    PreparedImage p;
    p.top = "service-image";
    auto mounts = sn.prepare("service-image-active", "");
    with_mounted(mounts, tmp.path(), service_image);
    sn.commit(p.top, "service-image-active");
    return p;
  };
  hooks.progress = [](const std::string&, int, int) {};
  std::atomic<bool> stop{false};
  rep::Results r = run_matrix(cfg, hooks, stop);
  ASSERT_FALSE(r.runs.empty());
  // Every backend of the default run ran, or results.json says why it could not.
  std::set<std::string> ran;
  for (const auto& run : r.runs) ran.insert(run.backend);
  for (const auto& name : snap::builtin_registry().names())
    if (snap::builtin_registry().get(name).in_default) {
      EXPECT_TRUE(ran.count(name) || r.config["skipped_backends"].contains(name)) << name << " neither ran nor was skipped";
    }

  // The file the runner wrote is valid against the published schema.
  std::string json_path = path_join(cfg.out, "results.json");
  if (auto why = schema_skip_reason()) {
    ADD_FAILURE() << "cannot validate the real results: " << *why;
  } else {
    EXPECT_EQ(schema_errors(json_path), "") << json_path;
  }

  // The host's noise floor was probed once before every recorded run but scale-out's.
  ASSERT_TRUE(r.host.contains("noise_floor"));
  const auto& nf = r.host["noise_floor"];
  size_t probed = 0;
  for (const auto& run : r.runs) probed += run.workload.rfind("scale-out/", 0) == 0 ? 0 : 1;
  EXPECT_EQ(nf["samples"].get<size_t>(), probed);
  EXPECT_GT(nf["median_ns"].get<int64_t>(), 0);
  EXPECT_GT(nf["cv"].get<double>(), 0.0) << "timed samples never all take the same ns";
  ASSERT_TRUE(nf.contains("kernel"));
  EXPECT_EQ(nf["kernel"]["samples"].get<size_t>(), probed);
  EXPECT_GT(nf["kernel"]["median_ns"].get<int64_t>(), 0);

  rep::write_reports(rep::load_results(json_path), cfg.out);
  for (const char* f : {"report.md", "results.csv", "report.html"}) {
    std::string text = read_file(path_join(cfg.out, f));
    EXPECT_NE(text.find("startup"), std::string::npos) << f;
  }
  // exec:true has no /bin/sh in this image: a failed run the reports must list.
  EXPECT_NE(read_file(path_join(cfg.out, "report.md")).find("## Failed runs"), std::string::npos);

  if (auto why = chromium_skip_reason()) {
    std::cout << "not rendered: " << *why << "\n";
  } else {
    Rendered page = render_in_chromium(path_join(cfg.out, "report.html"), tmp.path());
    ASSERT_GE(page.charts.size(), 8u);
    for (const auto& c : page.charts) {
      EXPECT_GT(c.width, 100) << c.label;
      EXPECT_GT(c.marks, 0) << c.label;
    }
  }
  // COWBENCH_REPORT_KEEP=DIR keeps the output (e.g. to refresh tests/golden/results.json).
  if (const char* keep = std::getenv("COWBENCH_REPORT_KEEP")) {
    std::filesystem::create_directories(keep);
    std::filesystem::copy(cfg.out, keep, std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace cowbench::test
