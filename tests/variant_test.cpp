// Variants end to end: a backend with an option set as a row of its own on a real synthetic image, and options the kernel refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "reports/compare.h"
#include "reports/reports.h"
#include "reports/results.h"
#include "runner/rows.h"
#include "runner/run.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class Variants : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    if (auto a = snap::builtin_registry().get("overlayfs").probe(scratch_root()); !a.available)
      GTEST_SKIP() << "overlayfs unavailable: " << a.reason;
    host_lock_ = hold_host_lock();  // the matrix measures; a `cowbench run` started here borrows it
    tmp_ = std::make_unique<TempDir>(scratch_root(), "variant");
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "");
    }
  }

  std::unique_ptr<HostLock> host_lock_;
  std::unique_ptr<TempDir> tmp_;
};

// overlayfs and ovl-meta (overlayfs with metacopy=on) in one interleaved matrix: two rows, each
// in its own directory, by name in results.json and every report; the metadata workload copies
// up metadata only on the variant (its upper files carry trusted.overlay.metacopy, read by the
// ground truth) and whole files on the plain backend.
TEST_F(Variants, VariantIsARowOfItsOwn) {
  RunConfig cfg;
  cfg.workdir = path_join(tmp_->path(), "work");
  cfg.out = path_join(tmp_->path(), "out");
  cfg.image = "synth:tiny@21";
  cfg.backends = {"overlayfs", "ovl-meta"};
  cfg.variants = {parse_variant("ovl-meta=overlayfs:metacopy=on")};
  cfg.workloads = {"metadata", "startup"};
  cfg.repeat = 2;  // the rotation puts each row first once
  cfg.warmup = false;
  cfg.trace = "auto";
  cfg.timeout = std::chrono::seconds(60);
  rep::Results r = run_matrix_quietly(cfg);
  rep::write_reports(r, cfg.out);

  std::map<std::string, std::vector<const rep::Run*>> by_row;  // "row workload" → runs
  std::vector<std::string> order;
  for (const auto& run : r.runs) {
    ASSERT_EQ(run.status, "ok") << run.backend << " " << run.workload << ": " << run.error;
    EXPECT_EQ(run.backend_kind, "overlayfs") << run.backend;
    by_row[run.backend + " " + run.workload].push_back(&run);
    if (run.workload == "metadata") order.push_back(run.backend);
  }
  ASSERT_EQ(r.runs.size(), 8u);
  EXPECT_EQ(order, (std::vector<std::string>{"overlayfs", "ovl-meta", "ovl-meta", "overlayfs"})) << "interleaved, rotated";

  // The variant's definition and its own directory, image and host facts.
  EXPECT_EQ(r.config["variants"], nlohmann::json::parse(R"({"ovl-meta": {"backend": "overlayfs", "options": {"metacopy": "on"}}})"));
  EXPECT_EQ(r.config["backends"], nlohmann::json::parse(R"(["overlayfs", "ovl-meta"])"));
  for (const char* row : {"overlayfs", "ovl-meta"}) {
    SCOPED_TRACE(row);
    EXPECT_TRUE(std::filesystem::is_directory(path_join(cfg.workdir, std::string(row) + "/snapshots")));
    EXPECT_FALSE(r.config["images"][row]["top"].get<std::string>().empty());
    EXPECT_FALSE(r.config["images"][row]["cached"].get<bool>()) << "each row imports the image into its own store";
    EXPECT_TRUE(r.host["storage"].contains(row));
    EXPECT_TRUE(r.host["filesystems"].contains(row));
  }

  // metacopy, as the ground truth read it from each container's upper directory.
  const rep::Run& plain = *by_row["overlayfs metadata"].front();
  for (const rep::Run* meta : by_row["ovl-meta metadata"]) {
    EXPECT_GT(meta->truth_copyups, 0);
    EXPECT_EQ(meta->truth_copyup_metadata_only, meta->truth_copyups) << "chmod/chown/utimes copy metadata only";
    EXPECT_EQ(meta->truth_copyup_bytes, 0);
    EXPECT_EQ(meta->truth_copyups, plain.truth_copyups) << "the same files copied up, as metadata";
    EXPECT_LT(meta->upper_bytes * 4, plain.upper_bytes) << "the variant's upper holds no file data";
    if (r.trace_mode != "off") {
      EXPECT_EQ(meta->copyup_metadata_only, meta->copyup_events) << "traced per row too";
      EXPECT_EQ(meta->copyup_bytes, 0);
    }
  }
  for (const rep::Run* run : by_row["overlayfs metadata"]) {
    EXPECT_EQ(run->truth_copyup_metadata_only, 0) << "no trusted.overlay.metacopy in plain overlayfs's upper";
    EXPECT_GT(run->truth_copyup_bytes, 0);
    if (r.trace_mode != "off") {
      EXPECT_EQ(run->copyup_metadata_only, 0);
      EXPECT_GT(run->copyup_bytes, 0);
    }
  }

  // On disk: valid against the schema, the variant by name in every report.
  std::string json_path = path_join(cfg.out, "results.json");
  if (auto why = schema_skip_reason()) {
    ADD_FAILURE() << "cannot validate the real results: " << *why;
  } else {
    EXPECT_EQ(schema_errors(json_path), "") << json_path;
  }
  nlohmann::json doc = nlohmann::json::parse(read_file(json_path));
  for (const auto& run : doc["runs"]) EXPECT_EQ(run["backend_kind"], "overlayfs") << run.dump();
  std::string md = read_file(path_join(cfg.out, "report.md"));
  EXPECT_NE(md.find("| ovl-meta |"), std::string::npos) << md;
  EXPECT_NE(md.find("| overlayfs |"), std::string::npos) << md;
  EXPECT_NE(md.find("ovl-meta = overlayfs metacopy=on"), std::string::npos) << "the report says what the variant is";
  // results.csv: a backend_kind column after the row's name, since one row is a variant.
  EXPECT_NE(read_file(path_join(cfg.out, "results.csv")).find("backend,backend_kind,workload,"), std::string::npos);
  EXPECT_NE(read_file(path_join(cfg.out, "results.csv")).find("\novl-meta,overlayfs,metadata,"), std::string::npos);
  EXPECT_NE(read_file(path_join(cfg.out, "report.html")).find("ovl-meta"), std::string::npos);

  // The variant's directory records its definition: the same name with other options is
  // refused before anything is opened (its layers were made for metacopy=on).
  EXPECT_EQ(nlohmann::json::parse(read_file(path_join(cfg.workdir, "ovl-meta/variant.json"))),
            nlohmann::json::parse(R"({"backend": "overlayfs", "options": {"metacopy": "on"}})"));
  RunConfig redefined_cfg = cfg;
  redefined_cfg.variants = {parse_variant("ovl-meta=overlayfs:index=on")};
  redefined_cfg.out = path_join(tmp_->path(), "out2");
  try {
    run_matrix_quietly(redefined_cfg);
    ADD_FAILURE() << "ovl-meta redefined on the same directory was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(path_join(cfg.workdir, "ovl-meta")), std::string::npos) << e.what();
  }

  // compare matches rows by name, and says when a name ran other options.
  rep::Results saved = rep::load_results(json_path);
  rep::Comparison same = rep::compare_results(saved, saved, {});
  EXPECT_TRUE(same.redefined.empty());
  bool compared = false;
  for (const auto& row : same.rows) compared = compared || row.backend == "ovl-meta";
  EXPECT_TRUE(compared);
  rep::Results other = saved;
  other.config["variants"]["ovl-meta"]["options"]["metacopy"] = "off";
  rep::Comparison redefined = rep::compare_results(saved, other, {});
  ASSERT_EQ(redefined.redefined.size(), 1u);
  EXPECT_NE(redefined.redefined[0].find("ovl-meta"), std::string::npos) << redefined.redefined[0];
}

// Options the kernel refuses: exit 2 before the matrix starts, naming the variant, the option
// and the kernel's reason; nothing mounted, the work directory and results not even made.
TEST_F(Variants, OptionsTheKernelRefusesExitTwo) {
  std::string dirs = fmt::format(" --image synth:tiny@21 --repeat 1 --trace off --workdir {}/work/here --out {}/out",
                                 tmp_->path(), tmp_->path());
  for (auto [args, named] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"run --backends overlayfs,ovl-bad --variant ovl-bad=overlayfs:metacopy=maybe",
            {"variant ovl-bad", "metacopy=maybe", "kernel"}},
           {"run --backends overlayfs --variant ovl-both=overlayfs:metacopy=on,redirect_dir=off",
            {"variant ovl-both", "together", "redirect_dir=off"}},
           {"run --backends overlayfs --backend-opt overlayfs:index=sometimes", {"overlayfs", "index=sometimes"}}}) {
    CliResult r = run_cli(COWBENCH_BIN, args + dirs + " 2>&1");
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << args << ": one line, got " << r.out;
    for (const auto& n : named) EXPECT_NE(r.out.find(n), std::string::npos) << args << " must name " << n << ": " << r.out;
    EXPECT_FALSE(std::filesystem::exists(path_join(tmp_->path(), "work"))) << args;
    EXPECT_FALSE(std::filesystem::exists(path_join(tmp_->path(), "out"))) << args;
  }
}

}  // namespace
}  // namespace cowbench::test
