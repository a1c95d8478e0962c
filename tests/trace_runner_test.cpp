// The tracer inside `cowbench run`: counts equal to the runner's ground truth on every container workload (file copy-ups and block CoW), results.json, the CLI's forced modes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <map>
#include <tuple>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "ebpf/kernel_fs.h"
#include "reports/results.h"
#include "runner/run.h"
#include "runner/run_hooks.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;

class TraceRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    host_lock_ = hold_host_lock();
    tmp_ = std::make_unique<TempDir>(scratch_root(), "trace-runner");
    lower_ = path_join(tmp_->path(), "image");
    make_dirs(lower_);
    distro_image(true)(lower_);
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "a run must leave nothing mounted";
    }
  }

  rep::Results run(const std::vector<std::string>& backends, const std::vector<std::string>& workloads,
                   const std::map<std::string, snap::BackendOptions>& options = {}) {
    RunConfig cfg;
    cfg.backend_options = options;
    cfg.workdir = path_join(tmp_->path(), "work");
    cfg.out = path_join(tmp_->path(), "out");
    cfg.trace = "auto";
    cfg.warmup = false;
    cfg.repeat = 1;
    cfg.timeout = std::chrono::seconds(120);
    cfg.backends = backends;
    cfg.workloads = workloads;
    RunHooks hooks;
    hooks.import_image = [this](snap::Snapshotter& sn, const std::string&) {
      return import_distro_image(sn, "image", tmp_->path(), true);
    };
    hooks.make_tracer = make_tracer_factory();
    hooks.progress = [](const std::string&, int, int) {};
    std::atomic<bool> stop{false};
    return run_matrix(cfg, hooks, stop);
  }

  // The size of an image file, by its path inside the container (renamed files by their old name).
  int64_t lower_size(std::string path) const {
    for (const char* suffix : {".moved"})
      if (path.ends_with(suffix) && access((lower_ + path).c_str(), F_OK) != 0) path.resize(path.size() - std::strlen(suffix));
    struct stat st {};
    if (stat((lower_ + path).c_str(), &st) != 0) return -1;
    return st.st_size;
  }

  // A file copy-up run: ok, nothing lost, the tracer's copy-ups are the ground truth, file for
  // file, each event's bytes its lower file's size. Returns its copy-up events.
  int64_t expect_counts_equal_truth(const rep::Run& run) const {
    SCOPED_TRACE(run.backend + " " + run.workload);
    EXPECT_EQ(run.status, "ok") << run.error;
    EXPECT_EQ(run.copyup_events, run.truth_copyups) << "the tracer's figures: " << run.extra.dump(1);
    if (!run.extra.contains("trace")) {
      ADD_FAILURE() << "no trace";
      return 0;
    }
    const json& t = run.extra.at("trace");
    EXPECT_EQ(t.at("lost_events"), 0);
    // Bytes copied = the lower files' sizes, in the tracer and in the ground truth.
    const json& events = t.at("events");
    EXPECT_EQ(static_cast<int64_t>(events.size()), run.copyup_events);
    int64_t sum = 0;
    for (const auto& e : events) {
      int64_t want = lower_size(e.at("path").get<std::string>());
      EXPECT_EQ(e.at("bytes").get<int64_t>(), want) << e.dump();
      sum += e.at("bytes").get<int64_t>();
    }
    EXPECT_EQ(sum, run.copyup_bytes);
    EXPECT_EQ(run.copyup_bytes, run.truth_copyup_bytes);
    if (run.copyup_events > 0) {
      EXPECT_GT(run.copyup_latency.p50, 0);
    }
    return run.copyup_events;
  }

  // overlayfs with metacopy=on (and composefs, all of whose lower files are metacopy files):
  // chmod/chown/utimes copy metadata only (0 data bytes), a later
  // write copies the data; on every container workload of the catalog the tracer's copy-ups,
  // data bytes and metadata-only copy-ups equal what the upper directories show.
  void expect_metacopy_counts_equal_truth(const std::string& backend, const snap::BackendOptions& options) {
    std::vector<std::string> workloads;
    for (const auto& [name, desc] : wl::workload_catalog())
      if (name != "exec:CMD" && wl::make_workload(name)->shape() == wl::Shape::kContainer) workloads.push_back(name);
    // An append and an open for read-write (shell builtins only): data copy-ups of files whose
    // lower is a metacopy file on composefs.
    workloads.push_back("exec:echo more >> /etc/conf7; exec 3<>/etc/conf8; read x < /etc/conf9");
    rep::Results r = options.empty() ? run({backend}, workloads) : run({backend}, workloads, {{backend, options}});
    ASSERT_EQ(r.runs.size(), workloads.size());
    int64_t metadata_only = 0, data = 0;
    for (const auto& run : r.runs) {
      SCOPED_TRACE(run.workload);
      ASSERT_EQ(run.status, "ok") << run.error;
      EXPECT_EQ(run.copyup_events, run.truth_copyups) << "the tracer's figures: " << run.extra.dump(1);
      EXPECT_EQ(run.copyup_bytes, run.truth_copyup_bytes);
      EXPECT_EQ(run.copyup_metadata_only, run.truth_copyup_metadata_only);
      // Kinds: traced as the ground truth reads them (on the work directory's file system copy-ups
      // copy, unless it clones), summing to the copy-ups.
      ASSERT_TRUE(run.copyup_kinds.measured && run.truth_copyup_kinds.measured);
      for (auto [t, g, what] : {std::tuple{&run.copyup_kinds.data, &run.truth_copyup_kinds.data, "data"},
                                std::tuple{&run.copyup_kinds.cloned, &run.truth_copyup_kinds.cloned, "cloned"},
                                std::tuple{&run.copyup_kinds.metadata, &run.truth_copyup_kinds.metadata, "metadata"}}) {
        EXPECT_EQ(t->events, g->events) << what;
        EXPECT_EQ(t->bytes, g->bytes) << what;
      }
      EXPECT_EQ(run.copyup_kinds.metadata.events, run.copyup_metadata_only);
      EXPECT_EQ(run.copyup_kinds.data.events + run.copyup_kinds.cloned.events + run.copyup_kinds.metadata.events,
                run.copyup_events);
      metadata_only += run.truth_copyup_metadata_only;
      data += run.truth_copyup_kinds.data.events;
      if (run.workload == "metadata") {
        // Only chmod/chown/utimes: every copy-up is metadata-only, no data is copied.
        EXPECT_GT(run.copyup_events, 0);
        EXPECT_EQ(run.copyup_metadata_only, run.copyup_events);
        EXPECT_EQ(run.copyup_bytes, 0);
      }
    }
    EXPECT_GT(metadata_only, 0) << "the metadata workload copies up metadata only";
    EXPECT_GT(data, 0) << "the writing workloads copy data up (from the objects, on composefs)";
  }

  std::unique_ptr<HostLock> host_lock_;  // the matrix measures: one measurement on this host at a time
  std::unique_ptr<TempDir> tmp_;
  std::string lower_;
};

// On overlayfs the tracer's copy-ups are the runner's ground truth, file for file, on every
// workload of the catalog that runs in a container.
TEST_F(TraceRunner, CountsEqualGroundTruthOnEveryWorkload) {
  std::vector<std::string> workloads;
  for (const auto& [name, desc] : wl::workload_catalog()) {
    if (name == "exec:CMD") continue;
    if (wl::make_workload(name)->shape() == wl::Shape::kContainer) workloads.push_back(name);
  }
  // Shell builtins only (the image has no coreutils): an append, an open for read-write, a read.
  workloads.push_back("exec:echo more >> /etc/conf7; exec 3<>/etc/conf8; read x < /etc/conf9");
  rep::Results r = run({"overlayfs"}, workloads);
  std::string lockdown = ebpf::read_lockdown().mode;
  bool locked = lockdown == "integrity" || lockdown == "confidentiality";
  if (locked) {
    EXPECT_EQ(r.trace_mode, "tracepoint");
  } else {
    EXPECT_NE(r.trace_mode, "off");
  }
  EXPECT_EQ(r.lost_events, 0);
  ASSERT_EQ(r.runs.size(), workloads.size());
  int64_t all_events = 0;
  for (const auto& run : r.runs) all_events += expect_counts_equal_truth(run);
  EXPECT_GT(all_events, 0) << "the catalog's writing workloads copy up: the comparisons above compared something";
  // results.json carries the mode, lost events and why the better modes lost.
  rep::Results saved = rep::load_results(path_join(tmp_->path(), "out/results.json"));
  EXPECT_EQ(saved.trace_mode, r.trace_mode);
  EXPECT_EQ(saved.lost_events, 0);
  EXPECT_TRUE(saved.trace_extra.contains("programs"));
  if (locked) {
    ASSERT_TRUE(saved.trace_extra.contains("why_not")) << saved.trace_extra.dump(1);
    EXPECT_TRUE(saved.trace_extra.at("why_not").contains("fentry"));
    EXPECT_TRUE(saved.trace_extra.at("why_not").contains("kprobe"));
  }
}

// erofs is overlayfs over EROFS lower layers: its copy-ups land in the overlay upper as on
// overlayfs, and the tracer's count is the ground truth on every container workload.
TEST_F(TraceRunner, ErofsCountsEqualGroundTruthOnEveryWorkload) {
  auto a = snap::builtin_registry().get("erofs").probe(tmp_->path());
  if (!a.available) GTEST_SKIP() << "erofs unavailable: " << a.reason;
  std::vector<std::string> workloads;
  for (const auto& [name, desc] : wl::workload_catalog()) {
    if (name == "exec:CMD") continue;
    if (wl::make_workload(name)->shape() == wl::Shape::kContainer) workloads.push_back(name);
  }
  rep::Results r = run({"erofs"}, workloads);
  EXPECT_EQ(r.lost_events, 0);
  ASSERT_EQ(r.runs.size(), workloads.size());
  int64_t all_events = 0;
  for (const auto& run : r.runs) all_events += expect_counts_equal_truth(run);
  EXPECT_GT(all_events, 0) << "the catalog's writing workloads copy up out of the EROFS layers";
}

// unionfs-fuse's daemon creates each copy at its own path in the writable branch (and the
// container's new files too): on every container workload of the catalog its copy-ups are
// the ground truth, renamed copies (pkg-install) included, and deletes copy nothing.
TEST_F(TraceRunner, UnionfsFuseCountsEqualGroundTruthOnEveryWorkload) {
  if (auto a = snap::builtin_registry().get("unionfs-fuse").probe(tmp_->path()); !a.available)
    GTEST_SKIP() << "unionfs-fuse unavailable: " << a.reason;
  std::vector<std::string> workloads;
  for (const auto& [name, desc] : wl::workload_catalog())
    if (name != "exec:CMD" && wl::make_workload(name)->shape() == wl::Shape::kContainer) workloads.push_back(name);
  rep::Results r = run({"unionfs-fuse"}, workloads);
  EXPECT_EQ(r.lost_events, 0);
  ASSERT_EQ(r.runs.size(), workloads.size());
  int64_t all_events = 0;
  for (const auto& run : r.runs) {
    all_events += expect_counts_equal_truth(run);
    EXPECT_EQ(run.truth_copyups_dropped, 0) << run.workload << ": unionfs-fuse whiteouts a deleted file, copies nothing";
    if (run.workload == "pkg-install") {
      // 50 renamed lower files: each copied up, then renamed (the ground truth finds them by
      // their whiteout and mtime); its 1000 new files are not copy-ups.
      EXPECT_EQ(run.copyup_events, 50) << run.extra.at("trace").dump(1);
      EXPECT_GE(run.extra.at("trace").value("fuse_new_files_ignored", 0), 1000);
    }
  }
  EXPECT_GT(all_events, 0);
}

// The registered backends that copy on write by extent (reflink, btrfs), by capability.
std::vector<std::string> extent_backends() {
  std::vector<std::string> out;
  for (const auto& name : snap::builtin_registry().names())
    if (snap::builtin_registry().get(name).caps.cow_granularity == snap::Granularity::kExtent) out.push_back(name);
  return out;
}

// On the block CoW backends the tracer's CoW and new data are the runner's ground truth (FIEMAP
// of the container's lower files before and after) within one extent per written file, on
// every container workload of the catalog; nothing is a copy-up.
TEST_F(TraceRunner, BlockCowEqualsGroundTruthOnEveryWorkload) {
  std::vector<std::string> workloads;
  for (const auto& [name, desc] : wl::workload_catalog()) {
    if (name == "exec:CMD") continue;
    if (wl::make_workload(name)->shape() == wl::Shape::kContainer) workloads.push_back(name);
  }
  // An append to a small file and to a large one, and an overwrite inside one, with shell builtins only.
  workloads.push_back("exec:echo more >> /etc/conf7; echo tail >> /usr/lib/lib3.so; exec 3<>/etc/conf8; echo x >&3");
  std::vector<std::string> backends = extent_backends();
  ASSERT_FALSE(backends.empty());
  rep::Results r = run(backends, workloads);
  if (r.runs.empty()) GTEST_SKIP() << "no extent-granular backend is available here";
  EXPECT_EQ(r.lost_events, 0);
  std::set<std::string> seen;
  for (const auto& run : r.runs) {
    SCOPED_TRACE(run.backend + " " + run.workload);
    ASSERT_EQ(run.status, "ok") << run.error;
    seen.insert(run.backend);
    EXPECT_EQ(run.copyup_events, 0) << "block CoW copies no file up";
    EXPECT_EQ(run.copyup_bytes, 0);
    EXPECT_EQ(run.truth_copyups, 0);
    EXPECT_EQ(run.truth_copyup_bytes, 0);
    ASSERT_GE(run.cow_extents, 0) << "traced: " << run.extra.dump(1);
    ASSERT_GE(run.truth_cow_extents, 0);
    // "Within one extent per written file": the lower files the plan modifies (at least one).
    int64_t files = 1;
    const auto& plans = r.config.value("plans", json::object());
    if (plans.contains(run.workload)) files = std::max<int64_t>(files, plans[run.workload].value("modified_lower_files", 0));
    const json& t = run.extra.at("trace");
    EXPECT_LE(std::abs(run.cow_extents - run.truth_cow_extents), files) << t.dump(1);
    EXPECT_LE(std::abs(run.cow_bytes - run.truth_cow_bytes), files * 4096) << t.dump(1);
    EXPECT_LE(std::abs(run.cow_new_bytes - run.truth_new_bytes), files * 4096) << t.dump(1);
    if (run.workload == "append-log") {
      EXPECT_GT(run.cow_new_bytes, 0) << "appends add new data";
      EXPECT_LT(run.cow_bytes, run.cow_new_bytes) << "an append rewrites at most the inherited partial block of a file";
    } else if (run.workload == "db-random-write") {
      EXPECT_GT(run.cow_bytes, 0);
      EXPECT_EQ(run.cow_new_bytes, 0) << "writes inside the files add no new data";
    } else if (run.workload == "startup" || run.workload == "metadata") {
      EXPECT_EQ(run.cow_bytes, 0);
      EXPECT_EQ(run.cow_new_bytes, 0);
    }
  }
  for (const auto& b : backends) EXPECT_TRUE(seen.count(b)) << b << " did not run";
  // results.json carries the new figures and reads back.
  rep::Results saved = rep::load_results(path_join(tmp_->path(), "out/results.json"));
  ASSERT_EQ(saved.runs.size(), r.runs.size());
  for (size_t i = 0; i < r.runs.size(); ++i) {
    EXPECT_EQ(saved.runs[i].cow_new_bytes, r.runs[i].cow_new_bytes);
    EXPECT_EQ(saved.runs[i].truth_cow_bytes, r.runs[i].truth_cow_bytes);
    EXPECT_EQ(saved.runs[i].truth_new_bytes, r.runs[i].truth_new_bytes);
  }
}

// fuse-overlayfs copies a lower file up before it deletes it (its daemon sendfile()s the file
// into its workdir, then renames it over a whiteout): the tracer sees one copy-up per deleted
// lower file on top of those that stay in the writable layer (the ground truth).
TEST_F(TraceRunner, FuseOverlayfsCopiesUpBeforeDeleting) {
  rep::Results r;
  try {
    r = run({"fuse-overlayfs"}, {"pkg-install", "metadata"});
  } catch (const Error& e) {
    if (e.code() != Errc::kUnsupported) throw;
    GTEST_SKIP() << e.what();
  }
  if (r.runs.empty()) GTEST_SKIP() << "fuse-overlayfs is not available here";
  for (const auto& run : r.runs) {
    SCOPED_TRACE(run.workload);
    ASSERT_EQ(run.status, "ok") << run.error;
    ASSERT_GE(run.truth_copyups, 0);
    int64_t on_unlink = 0;
    for (const auto& e : run.extra.at("trace").at("events"))
      if (e.value("fuse_op", "") == "FUSE_UNLINK") ++on_unlink;
    if (run.workload == "pkg-install") {
      EXPECT_GT(on_unlink, 0) << "pkg-install deletes lower files";
    } else {
      EXPECT_EQ(on_unlink, 0) << "metadata deletes nothing";
    }
    // The ground truth sees them too: the deleted lower files, hidden by whiteouts.
    EXPECT_EQ(run.truth_copyups_dropped, on_unlink);
    EXPECT_EQ(run.copyup_events, run.truth_copyups) << "the tracer's figures: " << run.extra.dump(1);
    EXPECT_EQ(run.copyup_bytes, run.truth_copyup_bytes);
  }
}

// containerd-bench builds layers in the runner itself: each layer's apply is a trace window,
// and the windows add up to the copy-ups its plan implies, on every backend (each must be
// available: the list is explicit), by its copy-on-write granularity.
TEST_F(TraceRunner, ContainerdBenchLayersAreTraced) {
  std::string cgroup_before = read_file("/proc/self/cgroup");
  const std::vector<std::string> backends = snap::builtin_registry().names();
  rep::Results r = run(backends, {"containerd-bench"});
  EXPECT_EQ(read_file("/proc/self/cgroup"), cgroup_before) << "the runner joins a cgroup for the run, then leaves it";
  EXPECT_EQ(r.lost_events, 0);
  ASSERT_FALSE(r.runs.empty());
  std::set<std::string> seen;
  for (const auto& run : r.runs) {
    SCOPED_TRACE(run.backend);
    ASSERT_EQ(run.status, "ok") << run.error;
    seen.insert(run.backend);
    ASSERT_TRUE(run.extra.contains("trace"));
    EXPECT_EQ(run.extra.at("trace").at("windows"), 16);
    const int64_t updated = run.extra.at("lower_files_updated").get<int64_t>();
    const int64_t removed = run.extra.at("lower_files_removed").get<int64_t>();
    const int64_t file_size = run.extra.at("file_size").get<int64_t>();
    ASSERT_GT(updated, 10);
    ASSERT_GT(removed, 5);
    switch (snap::builtin_registry().get(run.backend).caps.cow_granularity) {
      case snap::Granularity::kFile: {
        // One whole-file copy-up per updated lower file. fuse-overlayfs also copies a lower
        // file up before it whiteouts it (strace of the daemon: sendfile of the whole file into
        // its workdir, then renameat2 RENAME_WHITEOUT): one more copy-up per removed file,
        // which the upper layer no longer shows.
        const int64_t dropped = snap::builtin_registry().get(run.backend).caps.copies_up_before_delete ? removed : 0;
        const int64_t copied = updated + dropped;
        EXPECT_EQ(run.truth_copyups, copied);
        EXPECT_EQ(run.truth_copyups_dropped, dropped);
        EXPECT_EQ(run.copyup_events, copied);
        EXPECT_EQ(run.copyup_bytes, copied * file_size);
        break;
      }
      case snap::Granularity::kTree:
        EXPECT_EQ(run.truth_copyups, 0);
        EXPECT_EQ(run.copyup_events, 0);
        EXPECT_EQ(run.cow_extents, run.truth_cow_extents);
        EXPECT_EQ(run.cow_extents, 0);
        break;
      case snap::Granularity::kExtent:
        // Block CoW: each 4-byte update rewrites the one inherited block it falls in (the
        // ground truth from the plan), not the 1 MiB file; no copy-up, no new data.
        EXPECT_EQ(run.copyup_events, 0);
        EXPECT_EQ(run.truth_copyups, 0);
        EXPECT_EQ(run.truth_cow_extents, updated);
        EXPECT_EQ(run.truth_cow_bytes, updated * 4096);
        EXPECT_LE(std::abs(run.cow_extents - run.truth_cow_extents), updated) << run.extra.at("trace").dump(1);
        EXPECT_EQ(run.cow_bytes, run.truth_cow_bytes) << run.extra.at("trace").dump(1);
        EXPECT_EQ(run.cow_new_bytes, run.truth_new_bytes);
        break;
    }
  }
  for (const auto& b : backends) EXPECT_TRUE(seen.count(b)) << b << " did not run";
}

CliResult cowbench(const std::string& args) { return run_cli(COWBENCH_BIN, args); }

// `--trace fentry` / `--trace kprobe` where the kernel refuses them: exit 2 naming why, before any work.
TEST_F(TraceRunner, CliForcedModeThatCannotWorkExitsTwo) {
  std::string work = path_join(tmp_->path(), "cli-work"), out = path_join(tmp_->path(), "cli-out");
  for (const char* mode : {"fentry", "kprobe"}) {
    CliResult r = cowbench(fmt::format("run --backends overlayfs --workloads startup --repeat 1 --trace {} --workdir {} --out {}",
                                 mode, work, out));
    if (r.code == 0) continue;  // a kernel that allows it
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(std::string("--trace ") + mode), std::string::npos) << r.out;
    std::string lockdown = ebpf::read_lockdown().mode;
    if (lockdown == "integrity" || lockdown == "confidentiality") {
      EXPECT_NE(r.out.find("lockdown"), std::string::npos) << r.out;
    }
    EXPECT_NE(access(path_join(work, "overlayfs").c_str(), F_OK), 0) << "no work before the usage error";
  }
  CliResult bad = cowbench(fmt::format("run --trace sometimes --workdir {} --out {}", work, out));
  EXPECT_EQ(bad.code, 2) << bad.out;
}

TEST_F(TraceRunner, MetacopyCountsEqualGroundTruth) { expect_metacopy_counts_equal_truth("overlayfs", {{"metacopy", "on"}}); }

// composefs: every lower file is a metacopy stub whose data is an object in a data-only layer;
// the first write copies the object's data up (a data copy-up of a metacopy file), chmod and
// friends copy metadata only: the tracer's figures equal the upper's, as on overlayfs.
TEST_F(TraceRunner, ComposefsCountsEqualGroundTruth) {
  if (auto a = snap::builtin_registry().get("composefs").probe(tmp_->path()); !a.available)
    GTEST_SKIP() << "composefs unavailable: " << a.reason;
  expect_metacopy_counts_equal_truth("composefs", {});
}

}  // namespace
}  // namespace cowbench::test
