// Host load per measured run: the /proc/stat parser, the busy rule, results.json and the reports, and real runs with and without a CPU hog outside.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "reports/csv.h"
#include "reports/markdown.h"
#include "reports/results.h"
#include "runner/host_load.h"
#include "runner/hygiene.h"
#include "runner/run.h"
#include "snapshotters/registry.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

constexpr int64_t kTick = 10'000'000;  // USER_HZ 100

// What /proc/stat looks like on a 2-CPU guest (kernel 6.x: ten fields on each cpu line).
constexpr const char* kProcStat =
    "cpu  44086 12 4746 50235 349 3 43 19 7 0\n"
    "cpu0 21707 6 2207 25814 13 1 9 8 3 0\n"
    "cpu1 22378 6 2538 24421 335 2 33 11 4 0\n"
    "intr 1234 0 0\n"
    "ctxt 987654\n"
    "btime 1764650000\n"
    "processes 4321\n"
    "procs_running 2\n";

TEST(ProcStat, AllCpusLineAndCpuCount) {
  auto t = parse_proc_stat(kProcStat);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->busy, 44086 + 12 + 4746 + 3 + 43);  // user nice system irq softirq; guest is inside user
  EXPECT_EQ(t->idle, 50235 + 349);
  EXPECT_EQ(t->steal, 19);
  EXPECT_EQ(t->cpus, 2);
  // Older kernels' eight fields are enough; fewer, junk or no "cpu " line are not /proc/stat.
  auto old = parse_proc_stat("cpu 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->busy, 1 + 2 + 3 + 6 + 7);
  EXPECT_EQ(old->cpus, 1);
  EXPECT_FALSE(parse_proc_stat("cpu 1 2 3\n"));
  EXPECT_FALSE(parse_proc_stat("cpu a b c d e f g h\n"));
  EXPECT_FALSE(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\nintr 5\n"));
  EXPECT_FALSE(parse_proc_stat(""));
  // This host's own file parses, with as many CPUs as it has online.
  auto here = parse_proc_stat(read_file("/proc/stat"));
  ASSERT_TRUE(here);
  EXPECT_EQ(here->cpus, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
}

CpuTicks ticks(int64_t busy, int64_t steal) { return CpuTicks{busy, 0, steal, 2}; }

TEST(HostLoad, OutsideIsHostBusyMinusContainerAndCowbench) {
  // One second; the host's CPUs were busy 1.5 s, the container 0.4 s of it, cowbench 0.1 s.
  rep::HostLoad h = host_load_between(ticks(1000, 0), ticks(1150, 0), 1'000'000'000, 400'000'000, 100'000'000, kTick);
  EXPECT_EQ(h.window_ns, 1'000'000'000);
  EXPECT_EQ(h.outside_busy_ns, 1'000'000'000);
  EXPECT_DOUBLE_EQ(h.outside_cpus(), 1.0);
  EXPECT_EQ(h.resolution_ns, 3 * kTick);
  EXPECT_TRUE(h.busy);
  // The same container on a quiet host: 0.05 s of other work is not busy.
  h = host_load_between(ticks(1000, 0), ticks(1055, 0), 1'000'000'000, 400'000'000, 100'000'000, kTick);
  EXPECT_EQ(h.outside_busy_ns, 50'000'000);
  EXPECT_FALSE(h.busy);
  // Counters that advanced less than the container's own time (tick rounding): 0, not negative.
  h = host_load_between(ticks(1000, 0), ticks(1001, 0), 100'000'000, 30'000'000, 1'000'000, kTick);
  EXPECT_EQ(h.outside_busy_ns, 0);
  EXPECT_FALSE(h.busy);
}

TEST(HostLoad, BusyRuleAllowsForTheCountersResolution) {
  rep::HostLoad h;
  h.window_ns = 1'000'000'000;
  h.cpus = 2;
  h.resolution_ns = 3 * kTick;
  h.outside_busy_ns = 520'000'000;  // 0.52 CPU, but within the resolution of 0.5
  EXPECT_FALSE(rep::busy_host(h));
  h.outside_busy_ns = 540'000'000;
  EXPECT_TRUE(rep::busy_host(h));
  h.outside_busy_ns = 0;
  h.steal_ns = 220'000'000;  // 11 % of 2 CPU-seconds, 9.5 % after the resolution
  EXPECT_FALSE(rep::busy_host(h));
  h.steal_ns = 240'000'000;
  EXPECT_TRUE(rep::busy_host(h));
  // A window of 20 ms cannot tell 1.5 CPUs of other work from tick rounding.
  rep::HostLoad s = host_load_between(ticks(0, 0), ticks(5, 0), 20'000'000, 10'000'000, 0, kTick);
  EXPECT_DOUBLE_EQ(s.outside_cpus(), 2.0);
  EXPECT_FALSE(s.busy);
  h.window_ns = 0;
  EXPECT_FALSE(rep::busy_host(h));
}

rep::Run run_with(std::optional<rep::HostLoad> h, int repeat) {
  rep::Run r;
  r.backend = "overlayfs";
  r.workload = "metadata";
  r.repeat = repeat;
  r.wall_ns = 1'000'000;
  r.host_load = h;
  return r;
}

TEST(HostLoad, RecordedInResultsCsvAndReport) {
  rep::HostLoad busy = host_load_between(ticks(0, 0), ticks(130, 4), 1'000'000'000, 200'000'000, 0, kTick);
  rep::HostLoad quiet = host_load_between(ticks(0, 0), ticks(25, 0), 1'000'000'000, 200'000'000, 0, kTick);
  ASSERT_TRUE(busy.busy);
  ASSERT_FALSE(quiet.busy);
  rep::Results r;
  r.runs = {run_with(quiet, 0), run_with(busy, 1), run_with(std::nullopt, 2)};

  nlohmann::json j = rep::to_json(r);
  EXPECT_EQ(j["runs"][1]["busy"], true);
  EXPECT_EQ(j["runs"][0]["busy"], false);
  EXPECT_TRUE(j["runs"][2]["busy"].is_null());
  EXPECT_TRUE(j["runs"][2]["host_load"].is_null());
  EXPECT_EQ(j["runs"][1]["host_load"]["outside_busy_ns"], 1'100'000'000);
  EXPECT_EQ(j["runs"][1]["host_load"]["steal_ns"], 40'000'000);
  EXPECT_DOUBLE_EQ(j["runs"][1]["host_load"]["outside_cpus"].get<double>(), 1.1);
  rep::Results back = rep::results_from_json(j);
  ASSERT_TRUE(back.runs[1].host_load);
  EXPECT_TRUE(back.runs[1].host_load->busy);
  EXPECT_EQ(back.runs[1].host_load->outside_busy_ns, busy.outside_busy_ns);
  EXPECT_EQ(back.runs[1].host_load->resolution_ns, busy.resolution_ns);
  EXPECT_FALSE(back.runs[0].host_load->busy);
  EXPECT_FALSE(back.runs[2].host_load);

  // The CSV marks each run; the report says how many were busy and which.
  std::string csv = rep::render_csv(r);
  std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_NE(header.find(",busy,"), std::string::npos) << header;
  EXPECT_NE(header.find("host_load.outside_busy_ns"), std::string::npos) << header;
  EXPECT_NE(csv.find(",true,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",false,"), std::string::npos) << csv;
  std::string md = rep::render_markdown(r);
  EXPECT_NE(md.find("1 of 2 runs were taken while the host was busy"), std::string::npos) << md;
  EXPECT_NE(md.find("metadata on overlayfs #2"), std::string::npos) << md;

  // No busy run: a fact, no finding; no measured run: neither.
  r.runs = {run_with(quiet, 0)};
  md = rep::render_markdown(r);
  EXPECT_EQ(md.find("runs were taken while the host was busy"), std::string::npos) << md;
  EXPECT_NE(md.find("no run was taken while the host was busy"), std::string::npos) << md;
  r.runs = {run_with(std::nullopt, 0)};
  EXPECT_EQ(rep::render_markdown(r).find("host was busy"), std::string::npos);
}

// Processes that keep every CPU this one may use busy until they are killed.
class CpuHogs {
 public:
  explicit CpuHogs(int n) {
    for (int i = 0; i < n; ++i) {
      pid_t p = fork();
      if (p == 0) {
        volatile uint64_t x = 0;
        for (;;) x = x + 1;
      }
      if (p > 0) pids_.push_back(p);
    }
  }
  CpuHogs(const CpuHogs&) = delete;
  CpuHogs& operator=(const CpuHogs&) = delete;
  ~CpuHogs() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
  }

 private:
  std::vector<pid_t> pids_;
};

class HostLoadRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    if (!snap::builtin_registry().get("overlayfs").probe(scratch_root()).available) GTEST_SKIP() << "no overlayfs here";
    host_lock_ = hold_host_lock();
    tmp_ = std::make_unique<TempDir>(scratch_root(), "host-load");
    cfg_.workdir = path_join(tmp_->path(), "work");
    cfg_.out = path_join(tmp_->path(), "out");
    cfg_.trace = "off";
    cfg_.warmup = false;
    cfg_.repeat = 2;
    cfg_.timeout = std::chrono::seconds(60);
    cfg_.backends = {"overlayfs"};
    // A container that keeps its CPU busy for a few hundred ms: long against the counters' ticks.
    cfg_.workloads = {"exec:i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"};
    hooks_.import_image = [this](snap::Snapshotter& sn, const std::string&) {
      return import_distro_image(sn, "image-sh", tmp_->path(), true);
    };
    hooks_.progress = [](const std::string&, int, int) {};
  }

  std::unique_ptr<HostLock> host_lock_;
  std::unique_ptr<TempDir> tmp_;
  RunConfig cfg_;
  RunHooks hooks_;
  std::atomic<bool> stop_{false};
};

TEST_F(HostLoadRun, EveryRunRecordsItAndAHogOutsideMakesThemBusy) {
  rep::Results quiet = run_matrix(cfg_, hooks_, stop_);
  ASSERT_EQ(quiet.runs.size(), 2u);
  for (const auto& run : quiet.runs) {
    ASSERT_EQ(run.status, "ok") << run.error;
    ASSERT_TRUE(run.host_load) << "a container run records the host's load";
    const rep::HostLoad& h = *run.host_load;
    EXPECT_GE(h.window_ns, run.wall_ns) << "the window spans the container's life";
    EXPECT_GE(h.steal_ns, 0);
    EXPECT_GE(h.outside_busy_ns, 0);
    EXPECT_EQ(h.cpus, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
    EXPECT_GT(h.resolution_ns, 0);
    // (Whether the host was quiet is not this test's to know: other work may run here.)
  }

  // With every CPU cowbench may use kept busy by processes outside the container, other work
  // fills at least one CPU beside the container's on a 2-CPU machine.
  int cpus = static_cast<int>(allowed_cpus().size());
  if (cpus < 2) GTEST_SKIP() << "one CPU: a hog and the container share it, which may stay under half a CPU";
  rep::Results hogged;
  {
    CpuHogs hogs(cpus);
    hogged = run_matrix(cfg_, hooks_, stop_);
  }
  ASSERT_EQ(hogged.runs.size(), 2u);
  for (const auto& run : hogged.runs) {
    ASSERT_EQ(run.status, "ok") << run.error;
    ASSERT_TRUE(run.host_load);
    EXPECT_TRUE(run.host_load->busy) << "outside " << run.host_load->outside_cpus() << " CPUs over "
                                     << run.host_load->window_ns << " ns";
    EXPECT_GT(run.host_load->outside_cpus(), rep::kBusyOutsideCpus);
  }
  // results.json on disk says so too.
  rep::Results saved = rep::load_results(path_join(cfg_.out, "results.json"));
  ASSERT_EQ(saved.runs.size(), 2u);
  for (const auto& run : saved.runs) EXPECT_TRUE(run.host_load && run.host_load->busy);
  EXPECT_NE(rep::render_markdown(saved).find("2 of 2 runs were taken while the host was busy"), std::string::npos);
  if (!schema_skip_reason()) {
    EXPECT_EQ(schema_errors(path_join(cfg_.out, "results.json")), "");
  }
}

}  // namespace
}  // namespace cowbench::test
