// The tracer inside `cowbench run`: counts equal to the runner's ground truth on every container workload, results.json, the CLI's forced modes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <cstdio>
#include <map>

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

// A small image: a real /bin/sh (for exec: workloads), binaries, libraries, config files
// and a few multi-MiB database files (what every catalog workload needs).
Applier test_image() {
  return [](const std::string& root) {
    for (const char* d : {"bin", "lib", "lib64", "etc", "usr", "usr/lib", "var", "var/db", "proc", "dev"})
      create_dir(d)(root);
    for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"/bin/dash", "bin/sh"}, {"/lib/x86_64-linux-gnu/libc.so.6", "lib/libc.so.6"},
             {"/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"}})
      if (access(from.c_str(), R_OK) == 0) create_file(to, read_file(from), 0755)(root);
    make_dirs(root + "/lib/x86_64-linux-gnu");
    symlink("/lib/libc.so.6", (root + "/lib/x86_64-linux-gnu/libc.so.6").c_str());
    for (int i = 0; i < 40; ++i) create_file("bin/tool" + std::to_string(i), std::string(20000 + i * 100, 'b'), 0755)(root);
    for (int i = 0; i < 40; ++i) create_file("usr/lib/lib" + std::to_string(i) + ".so", std::string(300000 + i, 'l'))(root);
    for (int i = 0; i < 60; ++i) create_file("etc/conf" + std::to_string(i), "key=value " + std::to_string(i) + "\n")(root);
    for (int i = 0; i < 4; ++i) create_file("var/db/table" + std::to_string(i), std::string((2 + i) << 20, 'd'))(root);
  };
}

class TraceRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "trace-runner");
    lower_ = path_join(tmp_->path(), "image");
    make_dirs(lower_);
    test_image()(lower_);
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "a run must leave nothing mounted";
    }
  }

  rep::Results run(const std::vector<std::string>& backends, const std::vector<std::string>& workloads) {
    RunConfig cfg;
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
      PreparedImage p;
      p.top = "image";
      try {
        sn.stat(p.top);
        p.cached = true;
        return p;
      } catch (const Error&) {
      }
      with_mounted(sn.prepare("image-active", ""), tmp_->path(), test_image());
      sn.commit(p.top, "image-active");
      return p;
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
  for (const auto& run : r.runs) {
    SCOPED_TRACE(run.workload);
    ASSERT_EQ(run.status, "ok") << run.error;
    EXPECT_EQ(run.copyup_events, run.truth_copyups);
    ASSERT_TRUE(run.extra.contains("trace"));
    const json& t = run.extra.at("trace");
    EXPECT_EQ(t.at("lost_events"), 0);
    // Bytes copied = the lower files' sizes; the ground truth counts the files' sizes at the
    // end, which differ only where the workload grew them (append-log, exec's >>).
    const json& events = t.at("events");
    ASSERT_EQ(static_cast<int64_t>(events.size()), run.copyup_events);
    int64_t sum = 0;
    for (const auto& e : events) {
      int64_t want = lower_size(e.at("path").get<std::string>());
      EXPECT_EQ(e.at("bytes").get<int64_t>(), want) << e.dump();
      sum += e.at("bytes").get<int64_t>();
    }
    EXPECT_EQ(sum, run.copyup_bytes);
    bool grows = run.workload == "append-log" || run.workload.starts_with("exec:");
    if (grows)
      EXPECT_LT(run.copyup_bytes, run.truth_copyup_bytes);
    else
      EXPECT_EQ(run.copyup_bytes, run.truth_copyup_bytes);
    if (run.copyup_events > 0) {
      EXPECT_GT(run.copyup_latency.p50, 0);
    }
  }
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

struct Cli {
  int code = -1;
  std::string out;
};

Cli cowbench(const std::string& args) {
  Cli r;
  FILE* p = popen((std::string(COWBENCH_BIN) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `--trace fentry` / `--trace kprobe` where the kernel refuses them: exit 2 naming why, before any work.
TEST_F(TraceRunner, CliForcedModeThatCannotWorkExitsTwo) {
  std::string work = path_join(tmp_->path(), "cli-work"), out = path_join(tmp_->path(), "cli-out");
  for (const char* mode : {"fentry", "kprobe"}) {
    Cli r = cowbench(fmt::format("run --backends overlayfs --workloads startup --repeat 1 --trace {} --workdir {} --out {}",
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
  Cli bad = cowbench(fmt::format("run --trace sometimes --workdir {} --out {}", work, out));
  EXPECT_EQ(bad.code, 2) << bad.out;
}

}  // namespace
}  // namespace cowbench::test
