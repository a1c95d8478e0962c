// The container's system calls counted by the tracer: exact counts per name in real containers, isolation from the host, results.json and its reports.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "ebpf/tracer.h"
#include "reports/csv.h"
#include "reports/results.h"
#include "runner/cgroup.h"
#include "runner/run.h"
#include "runner/run_hooks.h"
#include "runner/sandbox.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;

// What the container does, by raw syscall numbers (no libc wrapper picks another call):
// calls the sandbox's own set-up never makes, each a known number of times.
constexpr int kFsync = 7, kFdatasync = 3, kRenameat = 4, kUnlinkat = 5, kGetppid = 11;

json container_calls(int fsyncs) {
  json errors = json::array();
  auto check = [&](long rc, const std::string& what) {
    if (rc < 0) errors.push_back(what + ": " + std::strerror(errno));
  };
  Fd fd(static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/data/log", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)));
  check(fd.get(), "open /data/log");
  for (int i = 0; i < fsyncs; ++i) check(syscall(SYS_fsync, fd.get()), "fsync");
  if (fsyncs == kFsync) {
    for (int i = 0; i < kFdatasync; ++i) check(syscall(SYS_fdatasync, fd.get()), "fdatasync");
    for (int i = 0; i < kUnlinkat; ++i) {
      std::string p = fmt::format("/data/u{}", i);
      Fd f(static_cast<int>(syscall(SYS_openat, AT_FDCWD, p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)));
      check(f.get(), "create " + p);
      if (i < kRenameat) {
        std::string q = p + ".moved";
        check(syscall(SYS_renameat, AT_FDCWD, p.c_str(), AT_FDCWD, q.c_str()), "rename " + p);
        p = q;
      }
      check(syscall(SYS_unlinkat, AT_FDCWD, p.c_str(), 0), "unlink " + p);
    }
    for (int i = 0; i < kGetppid; ++i) syscall(SYS_getppid);
  }
  return errors;
}

int64_t calls(const std::map<std::string, int64_t>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

class TraceSyscalls : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    try {
      static std::unique_ptr<ebpf::TraceSession> shared = ebpf::open_tracer("tracepoint");
      tracer_ = shared.get();
    } catch (const Error& e) {
      FAIL() << "the tracepoint mode must load on this kernel: " << e.what();
    }
    if (!tracer_->details().at("programs").at("cb_sys_enter").at("status").get<std::string>().starts_with("attached"))
      FAIL() << "sys_enter is a stable tracepoint: " << tracer_->details().at("programs").dump();
    layout_ = detect_cgroup_layout();
    if (layout_.v2_root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy: the tracer filters by cgroup v2 id";
    tmp_ = std::make_unique<TempDir>(scratch_root(), "trace-syscalls");
    const auto& spec = snap::builtin_registry().get(GetParam());
    if (auto a = spec.probe(tmp_->path()); !a.available) GTEST_SKIP() << GetParam() << " unavailable: " << a.reason;
    sn_ = spec.create(path_join(tmp_->path(), "sn"), {});
    with_mounted(sn_->prepare("base-active", ""), tmp_->path(), apply_all({create_dir("data"), create_file("data/old", "old")}));
    sn_->commit("base", "base-active");
    rootfs_ = path_join(tmp_->path(), "rootfs");
    make_dirs(rootfs_);
  }
  void TearDown() override {
    sn_.reset();
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "");
    }
  }

  // One container on a fresh snapshot doing container_calls(fsyncs), watched; while it runs
  // this process (outside its cgroup) makes the same calls.
  ebpf::TraceCounts watched(const std::string& key, int fsyncs) {
    auto mounts = sn_->prepare(key, "base");
    Cgroup cg(layout_, fmt::format("syscalls-{}-{}", getpid(), key));
    ebpf::TraceTarget t;
    t.cgroup_id = cg.id();
    t.backend = GetParam();
    t.cow = snap::builtin_registry().get(GetParam()).caps.cow_granularity;
    t.mounts = mounts;
    tracer_->begin(t);
    std::atomic<bool> done{false};
    std::thread host([&] {
      Fd fd(open(path_join(tmp_->path(), "host-file").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      while (!done) {
        syscall(SYS_fsync, fd.get());
        syscall(SYS_getppid);
      }
    });
    SandboxOptions so;
    so.mounts = mounts;
    so.rootfs = rootfs_;
    so.cgroup = &cg;
    so.timeout = std::chrono::seconds(60);
    SandboxResult r = run_in_sandbox(so, [fsyncs] { return container_calls(fsyncs); });
    done = true;
    host.join();
    ebpf::TraceCounts c = tracer_->end();
    cg.close();
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.result, json::array()) << "the container's calls failed";
    return c;
  }

  ebpf::TraceSession* tracer_ = nullptr;
  CgroupLayout layout_;
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<snap::Snapshotter> sn_;
  std::string rootfs_;
};

// Exactly the container's calls, whatever the host does meanwhile; the sandbox's own set-up
// (pivot_root once) is part of the window; a second window starts from zero.
TEST_P(TraceSyscalls, ExactCountsOfTheContainersCalls) {
  ebpf::TraceCounts c = watched("first", kFsync);
  const auto& s = c.syscalls;
  ASSERT_FALSE(s.empty()) << c.extra.dump(1);
  EXPECT_EQ(calls(s, "fsync"), kFsync);
  EXPECT_EQ(calls(s, "fdatasync"), kFdatasync);
  EXPECT_EQ(calls(s, "renameat"), kRenameat);
  EXPECT_EQ(calls(s, "unlinkat"), kUnlinkat);
  EXPECT_EQ(calls(s, "getppid"), kGetppid);
  EXPECT_EQ(calls(s, "pivot_root"), 1);  // the sandbox, once
  EXPECT_GE(calls(s, "openat"), 1 + kUnlinkat);
  EXPECT_GE(calls(s, "exit_group"), 1);  // never returns: counted at entry
  for (const auto& [name, n] : s) {
    EXPECT_GT(n, 0) << name;
    EXPECT_FALSE(name.starts_with("syscall ")) << "a number without a name: " << name;
  }
  EXPECT_FALSE(c.extra.contains("syscalls_why_not"));

  ebpf::TraceCounts again = watched("second", 2);
  EXPECT_EQ(calls(again.syscalls, "fsync"), 2);
  EXPECT_EQ(calls(again.syscalls, "renameat"), 0);
  EXPECT_EQ(calls(again.syscalls, "pivot_root"), 1);
}

// overlayfs (a copy-up window) and copy (a window with nothing to copy up): no FUSE daemon,
// whose own calls (an fsync it forwards, for one) would be in the container's cgroup too.
INSTANTIATE_TEST_SUITE_P(Backends, TraceSyscalls, ::testing::Values("overlayfs", "copy"));

// Through `cowbench run`'s engine: each run carries its counts, which follow the workload's plan
// (metadata: one lchown, one utimensat and one lstat per planned file); null with tracing off.
TEST(TraceSyscallsRunner, RunsCarryTheirCountsAndNullWhenUntraced) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir tmp(scratch_root(), "trace-syscalls-run");
  auto run = [&](const std::string& trace) {
    RunConfig cfg;
    cfg.workdir = path_join(tmp.path(), "work");
    cfg.out = path_join(tmp.path(), "out-" + trace);
    cfg.image = "synth:tiny";
    cfg.trace = trace;
    cfg.warmup = false;
    cfg.repeat = 1;
    cfg.backends = {"overlayfs"};
    cfg.workloads = {"metadata"};
    return run_matrix_quietly(cfg);
  };
  rep::Results on = run("tracepoint");
  ASSERT_EQ(on.runs.size(), 1u);
  const rep::Run& r = on.runs[0];
  ASSERT_EQ(r.status, "ok") << r.error;
  int64_t files = on.config.at("plans").at("metadata").at("modified_lower_files").get<int64_t>();
  ASSERT_GT(files, 0);
  EXPECT_EQ(calls(r.syscalls, "lchown"), files);
  EXPECT_EQ(calls(r.syscalls, "utimensat"), files);
  EXPECT_EQ(calls(r.syscalls, "newfstatat"), files);
  EXPECT_GE(calls(r.syscalls, "chmod"), files);  // and /dev's nodes, made by the sandbox
  json saved = json::parse(read_file(path_join(tmp.path(), "out-tracepoint/results.json")));
  EXPECT_EQ(saved.at("runs")[0].at("syscalls").at("lchown"), files);
  EXPECT_EQ(saved.at("summary")[0].at("median_syscalls").at("lchown"), files);

  rep::Results off = run("off");
  ASSERT_EQ(off.runs.size(), 1u);
  EXPECT_TRUE(off.runs[0].syscalls.empty());
  json untraced = json::parse(read_file(path_join(tmp.path(), "out-off/results.json")));
  EXPECT_TRUE(untraced.at("runs")[0].at("syscalls").is_null());
  EXPECT_TRUE(untraced.at("summary")[0].at("median_syscalls").is_null());
  EXPECT_EQ(left_behind(tmp.path()), "");
}

// --- the results model (pure) --------------------------------------------------------------

rep::Run counted(int repeat, std::map<std::string, int64_t> s) {
  rep::Run r;
  r.backend = "overlayfs";
  r.workload = "w";
  r.repeat = repeat;
  r.wall_ns = 100 + repeat;
  r.syscalls = std::move(s);
  return r;
}

// Counts survive results.json; the summary's median takes a call a counting run did not make
// as 0 there and ignores runs that did not count; the CSV has a column per name.
TEST(SyscallResults, JsonSummaryAndCsv) {
  rep::Results r;
  r.runs = {counted(0, {{"fsync", 3}, {"openat", 10}}), counted(1, {{"fsync", 5}}), counted(2, {{"fsync", 4}, {"openat", 20}}),
            counted(3, {})};
  rep::Results back = rep::results_from_json(rep::to_json(r));
  ASSERT_EQ(back.runs.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(back.runs[i].syscalls, r.runs[i].syscalls) << i;
  auto rows = rep::summarize(back.runs);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].median_syscalls.at("fsync"), 4);
  EXPECT_EQ(rows[0].median_syscalls.at("openat"), 10);  // 0, 10, 20
  std::string csv = rep::render_csv(back);
  std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_NE(header.find(",syscalls.fsync,syscalls.openat,"), std::string::npos) << header;
  EXPECT_NE(csv.find(",5,0,"), std::string::npos) << "counted but not made: 0\n" << csv;
  EXPECT_TRUE(rep::to_json(r).at("runs")[3].at("syscalls").is_null());
}

}  // namespace
}  // namespace cowbench::test
