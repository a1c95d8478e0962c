// Host checks, BPF program-type probes, the cgroup layout summary and `cowbench doctor` output.
#include "runner/host.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "ebpf/kernel_fs.h"
#include "runner/doctor.h"
#include "tests/test_util.h"
#ifdef COWBENCH_HAVE_LIBBPF
#include "ebpf/probe.h"
#endif

namespace cowbench::test {
namespace {

[[maybe_unused]] size_t open_fds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;  // includes the directory's own fd, the same in every call
}

// Where a doctor test may make its work directory: the usual scratch root, or /tmp when an
// unprivileged run cannot write there.
std::string doctor_parent() {
  try {
    std::string root = scratch_root();
    if (access(root.c_str(), W_OK) == 0) return root;
  } catch (const Error&) {
  }
  return "/tmp";
}

const HostCheck* find_check(const std::vector<HostCheck>& checks, const std::string& name) {
  for (const auto& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

TEST(HostChecks, EveryNamedRowExactlyOnceInOrder) {
  std::vector<std::string> expected{"root",           "kernel",      "lockdown",     "overlay",  "fuse",
                                    "fuse-overlayfs", "fusermount3", "unionfs-fuse", "aufs",     "mkfs.xfs",
                                    "mkfs.btrfs",     "loop",        "io_uring",     "cgroups",  "tracefs",
                                    "drop_caches",    "btf"};
#ifdef COWBENCH_HAVE_LIBBPF
  for (const char* n : {"bpf tracepoint", "bpf raw_tracepoint", "bpf tp_btf", "bpf fentry", "bpf kprobe"})
    expected.push_back(n);
#else
  expected.push_back("bpf");
#endif
  EXPECT_EQ(host_check_names(), expected);
  std::vector<HostCheck> checks = host_checks();
  std::vector<std::string> names;
  for (const auto& c : checks) names.push_back(c.name);
  EXPECT_EQ(names, expected);
  for (const auto& n : expected) EXPECT_EQ(std::count(names.begin(), names.end(), n), 1) << n;
}

TEST(HostChecks, EveryRowSaysWhatOrWhyNot) {
  for (const auto& c : host_checks()) {
    EXPECT_FALSE(c.detail.empty()) << c.name << (c.ok ? " (ok)" : " (failing)") << " has no detail";
    std::cout << "  " << c.name << ": " << (c.ok ? "ok" : "NO") << " — " << c.detail << "\n";
  }
}

TEST(HostChecks, RootRowAgreesWithTheProcess) {
  auto checks = host_checks();
  const HostCheck* root = find_check(checks, "root");
  ASSERT_NE(root, nullptr);
  // ok exactly for euid 0 with CAP_SYS_ADMIN (what root-only tests need).
  EXPECT_EQ(root->ok, geteuid() == 0 && !root_skip_reason()) << root->detail;
  const HostCheck* kernel = find_check(checks, "kernel");
  ASSERT_NE(kernel, nullptr);
  EXPECT_TRUE(kernel->ok);
  EXPECT_NE(kernel->detail.find(host_facts().kernel), std::string::npos) << kernel->detail;
}

TEST(HostFacts, AreFilledIn) {
  HostFacts f = host_facts();
  EXPECT_FALSE(f.kernel.empty());
  EXPECT_FALSE(f.arch.empty());
  EXPECT_GT(f.cpus, 0u);
  EXPECT_GT(f.memory_bytes, 64ull << 20);
  EXPECT_TRUE(f.lockdown == "none" || f.lockdown == "integrity" || f.lockdown == "confidentiality" ||
              f.lockdown == "unknown")
      << f.lockdown;
  EXPECT_FALSE(f.cgroup_layout.empty());
}

// --- cgroup layouts from fixed /proc/self/mountinfo samples --------------------------------

constexpr const char* kPureV2 =
    "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "26 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "28 26 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

// This development machine's layout: every v1 controller in its own hierarchy.
constexpr const char* kHybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// systemd's classic layout: cpu and cpuacct co-mounted, with optional fields before the dash.
constexpr const char* kPureV1 =
    "25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup "
    "rw,xattr,name=systemd\n"
    "29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory\n";

TEST(CgroupLayout, PureV2) {
  CgroupSummary s = summarize_cgroups(kPureV2, "cpuset cpu io memory hugetlb pids rdma misc");
  EXPECT_EQ(s.kind, "v2");
  EXPECT_TRUE(s.accounting);
  EXPECT_EQ(s.detail, "v2 at /sys/fs/cgroup with memory and cpu");
}

TEST(CgroupLayout, PureV2WithoutTheControllersEnabled) {
  CgroupSummary s = summarize_cgroups(kPureV2, "pids");
  EXPECT_EQ(s.kind, "v2");
  EXPECT_FALSE(s.accounting);
  EXPECT_EQ(s.detail,
            "v2 at /sys/fs/cgroup without the memory and cpu controller (cannot measure per-container memory)");
}

TEST(CgroupLayout, Hybrid) {
  CgroupSummary s = summarize_cgroups(kHybrid, "hugetlb");
  EXPECT_EQ(s.kind, "hybrid");
  EXPECT_TRUE(s.accounting);
  EXPECT_EQ(s.detail,
            "hybrid: v1 memory at /sys/fs/cgroup/memory, v1 cpuacct at /sys/fs/cgroup/cpuacct, "
            "v2 at /sys/fs/cgroup/unified without them");
}

TEST(CgroupLayout, HybridWithMemoryInV2) {
  CgroupSummary s = summarize_cgroups(kHybrid, "memory");
  EXPECT_EQ(s.kind, "hybrid");
  EXPECT_TRUE(s.accounting);
  EXPECT_EQ(s.detail, "hybrid: v2 at /sys/fs/cgroup/unified with memory; v1 cpuacct at /sys/fs/cgroup/cpuacct");
}

TEST(CgroupLayout, PureV1) {
  CgroupSummary s = summarize_cgroups(kPureV1, "");
  EXPECT_EQ(s.kind, "v1");
  EXPECT_TRUE(s.accounting);
  EXPECT_EQ(s.detail, "v1: memory at /sys/fs/cgroup/memory, cpuacct at /sys/fs/cgroup/cpu,cpuacct; no cgroup2 mount");
}

TEST(CgroupLayout, PureV1WithoutMemory) {
  std::string text = kPureV1;
  text = text.substr(0, text.find("30 25 0:27"));
  CgroupSummary s = summarize_cgroups(text, "");
  EXPECT_EQ(s.kind, "v1");
  EXPECT_FALSE(s.accounting);
  EXPECT_EQ(s.detail,
            "v1: no memory controller, cpuacct at /sys/fs/cgroup/cpu,cpuacct; no cgroup2 mount "
            "(cannot measure per-container memory)");
}

TEST(CgroupLayout, NoCgroupsAtAll) {
  CgroupSummary s = summarize_cgroups("22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n", "");
  EXPECT_EQ(s.kind, "none");
  EXPECT_FALSE(s.accounting);
}

TEST(CgroupLayout, ThisHostIsDescribed) {
  CgroupSummary s = host_cgroups();
  EXPECT_FALSE(s.kind.empty());
  EXPECT_FALSE(s.detail.empty());
}

// --- BPF probes ------------------------------------------------------------------------------

#ifdef COWBENCH_HAVE_LIBBPF

TEST(BpfProbes, TracepointLoadsAttachesAndFires) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  ebpf::Tracefs t = ebpf::find_tracefs(true);
  if (t.path.empty()) GTEST_SKIP() << "no tracefs: " << t.error;
  ebpf::ProbeResult r = ebpf::probe_tracepoint();
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_NE(r.detail.find("sys_enter_openat"), std::string::npos) << r.detail;
}

TEST(BpfProbes, RawTracepointLoadsAttachesAndFires) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  ebpf::ProbeResult r = ebpf::probe_raw_tracepoint();
  EXPECT_TRUE(r.ok) << r.detail;
}

TEST(BpfProbes, BtfIsReported) {
  ebpf::ProbeResult r = ebpf::probe_btf();
  EXPECT_FALSE(r.detail.empty());
  if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
    EXPECT_TRUE(r.ok) << r.detail;
  }
}

TEST(BpfProbes, LockdownRefusesFentryAndKprobe) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  ebpf::Lockdown l = ebpf::read_lockdown();
  if (l.mode != "integrity" && l.mode != "confidentiality")
    GTEST_SKIP() << "lockdown is '" << l.mode << "' (" << l.how << "), not integrity or confidentiality";
  ebpf::ProbeResult fentry = ebpf::probe_fentry();
  EXPECT_FALSE(fentry.ok) << fentry.detail;
  EXPECT_NE(fentry.detail.find("lockdown=" + l.mode), std::string::npos) << fentry.detail;
  EXPECT_NE(fentry.detail.find("EPERM"), std::string::npos) << fentry.detail;

  ebpf::ProbeResult kprobe = ebpf::probe_kprobe("vfs_read");
  EXPECT_FALSE(kprobe.ok) << kprobe.detail;
  bool named =
      kprobe.detail.find("lockdown") != std::string::npos || kprobe.detail.find("no kprobe PMU") != std::string::npos;
  EXPECT_TRUE(named) << kprobe.detail;
}

TEST(BpfProbes, FentryNamesTheFunctionItUsed) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  ebpf::ProbeResult r = ebpf::probe_fentry({"cowbench_no_such_function"});
  EXPECT_NE(r.detail.find("vfs_read"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("cowbench_no_such_function"), std::string::npos) << r.detail;
  r = ebpf::probe_fentry();
  bool named = false;
  for (const auto& f : ebpf::overlay_copy_up_functions()) named = named || r.detail.find(f) != std::string::npos;
  EXPECT_TRUE(named || r.detail.find("vfs_read") != std::string::npos) << r.detail;
}

TEST(BpfProbes, LeaveNoFdsOrKprobeEventsBehind) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  // Warm up once: the first calls may mount tracefs and read files, which is fine.
  (void)ebpf::probe_tracepoint();
  size_t before = open_fds();
  std::vector<ebpf::ProbeResult> results{
      ebpf::probe_btf(),    ebpf::probe_tracepoint(), ebpf::probe_raw_tracepoint(),
      ebpf::probe_tp_btf(), ebpf::probe_fentry(),     ebpf::probe_kprobe("vfs_read")};
  EXPECT_EQ(open_fds(), before);
  (void)host_checks();
  EXPECT_EQ(open_fds(), before);
  ebpf::Tracefs t = ebpf::find_tracefs(false);
  if (!t.path.empty()) {
    std::string events;
    try {
      events = read_file(path_join(t.path, "kprobe_events"));
    } catch (const Error&) {
    }
    EXPECT_EQ(events.find("cowbench"), std::string::npos) << events;
  }
}

TEST(BpfProbes, SayNeedsRootWhenNotRoot) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why << " (drops privileges in a child)";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(10);
    int bad = 0;
    for (const auto& r : {ebpf::probe_tracepoint(), ebpf::probe_raw_tracepoint(), ebpf::probe_tp_btf(),
                          ebpf::probe_fentry(), ebpf::probe_kprobe("vfs_read")})
      if (r.ok || r.detail.rfind("needs root", 0) != 0) ++bad;
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "probes that did not say 'needs root' (10 = could not drop privileges)";
}

#endif  // COWBENCH_HAVE_LIBBPF

// --- doctor ----------------------------------------------------------------------------------

TEST(Doctor, JsonHasChecksAndBackends) {
  TempDir work(doctor_parent(), "doctor");
  std::ostringstream out;
  ASSERT_EQ(run_doctor(out, path_join(work.path(), "w"), true), 0);
  nlohmann::json doc = nlohmann::json::parse(out.str());  // throws if not JSON
  ASSERT_TRUE(doc.contains("checks")) << out.str();
  ASSERT_TRUE(doc.contains("backends")) << out.str();
  ASSERT_TRUE(doc["checks"].is_array());
  ASSERT_TRUE(doc["backends"].is_array());
  // The host checks, then the doctor's own row for the real tracer.
  ASSERT_EQ(doc["checks"].size(), host_check_names().size() + 1);
  for (size_t i = 0; i < host_check_names().size(); ++i) EXPECT_EQ(doc["checks"][i]["name"], host_check_names()[i]);
  EXPECT_EQ(doc["checks"].back()["name"], "tracer");
  for (const auto& c : doc["checks"]) {
    EXPECT_TRUE(c["ok"].is_boolean());
    EXPECT_FALSE(c["detail"].get<std::string>().empty()) << c.dump();
  }
  std::vector<std::string> backends;
  for (const auto& b : doc["backends"]) {
    backends.push_back(b["name"].get<std::string>());
    EXPECT_TRUE(b["available"].is_boolean());
    EXPECT_TRUE(b.contains("cow_granularity"));
    if (!b["available"].get<bool>()) {
      EXPECT_FALSE(b["reason"].get<std::string>().empty()) << b.dump();
    }
  }
  EXPECT_NE(std::find(backends.begin(), backends.end(), "copy"), backends.end());
  EXPECT_NE(std::find(backends.begin(), backends.end(), "overlayfs"), backends.end());
}

TEST(Doctor, TableListsChecksAndBackends) {
  TempDir work(doctor_parent(), "doctor");
  std::ostringstream out;
  ASSERT_EQ(run_doctor(out, work.path(), false), 0);
  std::string text = out.str();
  EXPECT_NE(text.find("host checks"), std::string::npos) << text;
  EXPECT_NE(text.find("backends"), std::string::npos) << text;
  for (const auto& n : host_check_names()) EXPECT_NE(text.find("  " + n + " "), std::string::npos) << n;
}

TEST(Doctor, ThrowsWhenTheWorkdirCannotBeCreated) {
  std::ostringstream out;
  EXPECT_THROW(run_doctor(out, "/proc/self/cowbench-cannot-be-here", false), Error);
}

// A real ext4 on a loop device, made without and with a journal: only the first is a caveat.
TEST(WorkdirCaveats, Ext4WithoutAJournalIsNamed) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  if (system("command -v mkfs.ext4 >/dev/null 2>&1") != 0) GTEST_SKIP() << "mkfs.ext4 is not installed";
  TempDir tmp(scratch_root(), "ext4");
  std::string image = path_join(tmp.path(), "ext4.img"), dir = path_join(tmp.path(), "mnt");
  make_dirs(dir);
  for (bool journal : {false, true}) {
    std::string mkfs = fmt::format("truncate -s 64M {0} && mkfs.ext4 -q -F {1} {0}", image, journal ? "" : "-O ^has_journal");
    ASSERT_EQ(system(mkfs.c_str()), 0) << mkfs;
    LoopDevice loop(image);
    ScopedMount m({Mount{"ext4", loop.path(), {}}}, dir);
    auto caveats = workdir_caveats(dir);
    if (journal) {
      EXPECT_TRUE(caveats.empty()) << caveats.front();
    } else {
      ASSERT_EQ(caveats.size(), 1u);
      EXPECT_NE(caveats[0].find("without a journal"), std::string::npos) << caveats[0];
      EXPECT_NE(caveats[0].find(loop.path()), std::string::npos) << caveats[0];
    }
    m.close();
    loop.close();
    unlink(image.c_str());
  }
  EXPECT_TRUE(workdir_caveats("/proc").empty()) << "not ext4: nothing to say";
}

}  // namespace
}  // namespace cowbench::test
