// The container sandbox on real snapshots: namespaces, pivot_root, /proc, /dev, cgroups, timeouts, no leaks.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "runner/cgroup.h"
#include "runner/hygiene.h"
#include "runner/run.h"
#include "runner/sandbox.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class Sandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "sandbox");
    const auto& spec = snap::builtin_registry().get("overlayfs");
    auto a = spec.probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << "overlayfs unavailable: " << a.reason;
    sn_ = spec.create(path_join(tmp_->path(), "root"), {});
    with_mounted(sn_->prepare("b", ""), tmp_->path(),
                 apply_all({create_file("hello", "from the image"), create_dir("etc"), create_file("etc/os-release", "ID=test\n")}));
    sn_->commit("base", "b");
    rootfs_ = path_join(tmp_->path(), "rootfs");
    make_dirs(rootfs_);
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "the sandbox must leave nothing mounted";
    }
  }

  SandboxOptions options(const std::string& key) {
    SandboxOptions o;
    o.mounts = sn_->prepare(key, "base");
    o.rootfs = rootfs_;
    return o;
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<snap::Snapshotter> sn_;
  std::string rootfs_;
};

TEST_F(Sandbox, RunsAsPidOneInsideTheSnapshot) {
  auto r = run_in_sandbox(options("c1"), [] {
    char host[64] = {};
    gethostname(host, sizeof host);
    struct stat st {};
    nlohmann::json j;
    j["pid"] = getpid();
    j["hostname"] = host;
    j["hello"] = read_file("/hello");
    j["proc_self"] = access("/proc/self/status", R_OK) == 0;
    int fd = open("/dev/null", O_WRONLY);
    j["dev_null"] = fd >= 0 && write(fd, "x", 1) == 1;
    if (fd >= 0) close(fd);
    j["dev_is_chr"] = stat("/dev/zero", &st) == 0 && S_ISCHR(st.st_mode);
    j["host_root_hidden"] = access("/var/tmp/cowbench-test", F_OK) != 0;
    write_file_atomic("/written-inside", "container data");
    return j;
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result["pid"], 1);
  EXPECT_EQ(r.result["hostname"], "cowbench");
  EXPECT_EQ(r.result["hello"], "from the image");
  EXPECT_TRUE(r.result["proc_self"].get<bool>());
  EXPECT_TRUE(r.result["dev_null"].get<bool>());
  EXPECT_TRUE(r.result["dev_is_chr"].get<bool>());
  EXPECT_TRUE(r.result["host_root_hidden"].get<bool>());
  EXPECT_GT(r.setup_ns, 0);
  EXPECT_GT(r.run_ns, 0);
  // What the container wrote is in its snapshot.
  std::string seen;
  with_mounted(sn_->mounts("c1"), tmp_->path(), [&](const std::string& d) { seen = read_file(d + "/written-inside"); });
  EXPECT_EQ(seen, "container data");
}

TEST_F(Sandbox, ErrorsInsideAreReported) {
  auto r = run_in_sandbox(options("c2"), []() -> nlohmann::json { fail(Errc::kFailure, "workload broke on purpose"); });
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("broke on purpose"), std::string::npos) << r.error;
}

TEST_F(Sandbox, BrokenMountsFailSetupCleanly) {
  SandboxOptions o = options("c3");
  o.mounts = {Mount{"overlay", "overlay", {"lowerdir=/nonexistent-layer"}}};
  auto r = run_in_sandbox(o, [] { return nlohmann::json(); });
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("nonexistent-layer"), std::string::npos) << r.error;
}

TEST_F(Sandbox, TimeoutKillsTheContainer) {
  SandboxOptions o = options("c4");
  o.timeout = std::chrono::milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_in_sandbox(o, [] {
    // A child that would outlive pid 1 if the namespace did not take it along.
    if (fork() == 0) {
      sleep(30);
      _exit(0);
    }
    sleep(30);
    return nlohmann::json();
  });
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok);
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(Sandbox, CgroupCountsTheContainer) {
  CgroupLayout layout = detect_cgroup_layout();
  Cgroup cg(layout, "test-" + std::to_string(getpid()));
  SandboxOptions o = options("c5");
  o.cgroup = &cg;
  auto r = run_in_sandbox(o, [] {
    // Burn CPU and fill page cache with a 4 MiB file.
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 50'000'000; ++i) x = x + i;
    write_file_atomic("/cachefill", std::string(4 << 20, 'c'), 0644, false);
    return nlohmann::json{{"x", static_cast<uint64_t>(x) > 0}};
  });
  ASSERT_TRUE(r.ok) << r.error;
  CgroupStats s = cg.stats();
  EXPECT_GT(s.user_ns, 1'000'000) << layout.describe();
  EXPECT_GE(s.page_cache_bytes, 4 << 20) << layout.describe();
  if (!layout.v2_root.empty()) {
    EXPECT_GT(cg.id(), 0u);
  }
  cg.close();
}

// --cpu: the workload runs on its CPU alone (the set-up before it is not pinned).
TEST_F(Sandbox, PinsTheWorkloadToItsCpu) {
  int cpu = choose_container_cpu("last");
  if (cpu < 0) GTEST_SKIP() << "this process may use one CPU only: nothing to pin to";
  SandboxOptions o = options("c6");
  o.cpu = cpu;
  auto r = run_in_sandbox(o, [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    return nlohmann::json{{"cpus", cpus}, {"on", sched_getcpu()}};
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result["cpus"], nlohmann::json::array({cpu}));
  EXPECT_EQ(r.result["on"], cpu);
}

TEST(ContainerCpu, ChoiceAndBadInput) {
  EXPECT_EQ(choose_container_cpu("none"), -1);
  int last = choose_container_cpu("last");
  if (last >= 0) {
    EXPECT_EQ(choose_container_cpu(std::to_string(last)), last);
  }
  for (const char* bad : {"auto-ish", "-1", "1x", "", "100000"}) {
    try {
      choose_container_cpu(bad);
      ADD_FAILURE() << "accepted --cpu '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
      EXPECT_NE(std::string(e.what()).find("--cpu"), std::string::npos) << e.what();
    }
  }
}

TEST(CgroupLayout, ParsesHybridV2AndV1) {
  const char* hybrid =
      "30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
      "33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
      "34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n";
  CgroupLayout h = parse_cgroup_layout(hybrid, "hugetlb");
  EXPECT_EQ(h.v2_root, "/sys/fs/cgroup/unified");
  EXPECT_FALSE(h.v2_memory);
  EXPECT_EQ(h.v1_memory, "/sys/fs/cgroup/memory");
  EXPECT_EQ(h.v1_cpuacct, "/sys/fs/cgroup/cpu,cpuacct");

  const char* v2 = "25 23 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
  CgroupLayout p = parse_cgroup_layout(v2, "cpuset cpu io memory hugetlb pids");
  EXPECT_EQ(p.v2_root, "/sys/fs/cgroup");
  EXPECT_TRUE(p.v2_memory);
  EXPECT_TRUE(p.v2_cpu);
  EXPECT_TRUE(p.v1_memory.empty());

  const char* v1 = "33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                   "34 30 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n";
  CgroupLayout o = parse_cgroup_layout(v1, "");
  EXPECT_TRUE(o.v2_root.empty());
  EXPECT_EQ(o.v1_cpuacct, "/sys/fs/cgroup/cpuacct");
}

}  // namespace
}  // namespace cowbench::test
