// Google Benchmark: what the eBPF tracer costs (the same workloads with tracing off and on, interleaved) and how fast its ring buffer drains.
//
//   bench_trace --benchmark_filter=Overhead     # median wall time on/off for pkg-install, db-random-write
//   bench_trace --benchmark_filter=RingBuffer   # records/s through the ring buffer, and whether any were lost
//   bench_trace --benchmark_filter=SyscallCost  # ns the always-on programs add to each syscall of a watched process
// Flags of ours: --workdir=DIR (default /var/tmp/cowbench-bench), --pairs=N (off/on pairs, default 15),
// --image=REF (default synth:default), --backend=NAME (default overlayfs).
#include <benchmark/benchmark.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "bench/bench_util.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "ebpf/tracer.h"
#include "runner/cgroup.h"
#include "runner/run.h"
#include "runner/run_hooks.h"

namespace cowbench::bench {
namespace {

using ebpf::TraceCounts;
using ebpf::TraceSession;
using ebpf::TraceTarget;

std::string g_workdir = "/var/tmp/cowbench-bench";
std::string g_image = "synth:default";
std::string g_backend = "overlayfs";
int g_pairs = 15;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Hands the matrix one tracer loaded once for the whole benchmark (as one `cowbench run` does).
class SharedTracer final : public TraceSession {
 public:
  explicit SharedTracer(TraceSession* t) : t_(t) {}
  std::string mode() const override { return t_->mode(); }
  void begin(const TraceTarget& target) override { t_->begin(target); }
  TraceCounts end() override { return t_->end(); }
  nlohmann::json details() const override { return t_->details(); }

 private:
  TraceSession* t_;
};

// One container run of `workload` through the runner; its wall time (the workload alone, in
// the container) in ns, or -1 with state skipped.
int64_t one_run(benchmark::State& state, const std::string& workload, TraceSession* tracer, int64_t* copyups) {
  RunConfig cfg;
  cfg.backends = {g_backend};
  cfg.workloads = {workload};
  cfg.image = g_image;
  cfg.repeat = 1;
  cfg.warmup = false;
  cfg.trace = tracer ? "tracepoint" : "off";
  cfg.workdir = path_join(g_workdir, "trace");
  cfg.out = path_join(g_workdir, "trace-out");
  RunHooks hooks;
  hooks.import_image = make_image_importer(cfg);
  hooks.make_tracer = [tracer](const std::string&) -> std::unique_ptr<TraceSession> {
    return tracer ? std::make_unique<SharedTracer>(tracer) : nullptr;
  };
  hooks.progress = [](const std::string&, int, int) {};
  std::atomic<bool> stop{false};
  rep::Results r = run_matrix(cfg, hooks, stop);
  if (r.runs.size() != 1 || r.runs[0].status != "ok") {
    state.SkipWithError(("run failed: " + (r.runs.empty() ? std::string("no run") : r.runs[0].error)).c_str());
    return -1;
  }
  if (copyups) *copyups = r.runs[0].copyup_events;
  return r.runs[0].wall_ns;
}

// The same workload with tracing off and on, in pairs whose order alternates (off-on, on-off,
// ...) so that drift hits both alike; the ratio of the medians is the tracer's cost. "Off" is
// `--trace off` (no program loaded at all); "on" loads the tracer afresh for the run, as
// `cowbench run --trace tracepoint` does (loading is not in the measured wall time).
void BM_Overhead(benchmark::State& state, const std::string& workload) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  auto load = [&]() -> std::unique_ptr<TraceSession> {
    try {
      return ebpf::open_tracer("tracepoint");
    } catch (const Error& e) {
      state.SkipWithError(e.what());
      return nullptr;
    }
  };
  std::vector<double> off, on;
  int64_t copyups = -1;
  for (auto _ : state) {
    // One unrecorded pair first: image import, cold caches.
    {
      auto tracer = load();
      if (!tracer || one_run(state, workload, nullptr, nullptr) < 0 || one_run(state, workload, tracer.get(), nullptr) < 0)
        return;
    }
    for (int i = 0; i < g_pairs; ++i) {
      bool on_first = i % 2 == 1;
      for (int k = 0; k < 2; ++k) {
        bool traced = (k == 0) == on_first;
        std::unique_ptr<TraceSession> tracer;
        if (traced && !(tracer = load())) return;
        int64_t ns = one_run(state, workload, tracer.get(), traced ? &copyups : nullptr);
        if (ns < 0) return;
        (traced ? on : off).push_back(static_cast<double>(ns));
      }
    }
    state.SetIterationTime(median(on) / 1e9);
  }
  state.counters["pairs"] = static_cast<double>(on.size());
  state.counters["off_median_ms"] = median(off) / 1e6;
  state.counters["on_median_ms"] = median(on) / 1e6;
  state.counters["ratio"] = median(off) > 0 ? median(on) / median(off) : 0;
  // Drift-robust too: the median of each pair's own ratio.
  std::vector<double> pair_ratio;
  for (size_t i = 0; i < on.size() && i < off.size(); ++i) pair_ratio.push_back(on[i] / off[i]);
  state.counters["pair_ratio_median"] = median(pair_ratio);
  state.counters["copyups"] = static_cast<double>(copyups);
}

// Runs `syscalls` getppid() calls (at `rate` per second; 0 = as fast as possible) in a child
// in a fresh cgroup, inside a tracer window on that cgroup when tracer is set; returns the
// child's run time in ns and the window's counts.
int64_t syscall_child(TraceSession* tracer, int64_t syscalls, int64_t rate, TraceCounts* counts) {
  CgroupLayout layout = detect_cgroup_layout();
  Cgroup cg(layout, fmt::format("bench-trace-{}", getpid()));
  int go[2];
  if (pipe(go) != 0) fail_sys("pipe");
  pid_t child = fork();
  if (child < 0) fail_sys("fork");
  if (child == 0) {
    char c;
    close(go[1]);
    if (read(go[0], &c, 1) != 1) _exit(1);
    int64_t t0 = monotonic_ns();
    for (int64_t i = 0; i < syscalls; ++i) {
      syscall(SYS_getppid);
      if (rate > 0 && i % 64 == 0)
        while (monotonic_ns() - t0 < i * 1'000'000'000 / rate) {
        }
    }
    _exit(0);
  }
  close(go[0]);
  cg.add(child);
  if (tracer) {
    TraceTarget t;
    t.cgroup_id = cg.id();
    t.cow = snap::Granularity::kTree;
    tracer->begin(t);
  }
  int64_t t0 = monotonic_ns();
  if (write(go[1], "g", 1) != 1) fail_sys("start the child");
  close(go[1]);
  int status = 0;
  waitpid(child, &status, 0);
  int64_t ns = monotonic_ns() - t0;
  if (tracer) *counts = tracer->end();
  cg.close();
  return ns;
}

// Every syscall exit of a process in a watched cgroup becomes a ring buffer record (344
// bytes, the size of a copy-up record); the process makes `syscalls` cheap syscalls as fast
// as it can (or at `rate` per second). Reports records/s read and records lost.
void BM_RingBuffer(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  size_t ring = static_cast<size_t>(state.range(0)) << 20;
  ebpf::TracerOptions o;
  o.ringbuf_bytes = ring;
  o.record_syscalls = true;
  std::unique_ptr<TraceSession> tracer;
  try {
    tracer = ebpf::open_tracer("tracepoint", o);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  int64_t read_total = 0, lost_total = 0, emitted_total = 0, ns_total = 0;
  for (auto _ : state) {
    TraceCounts c;
    int64_t ns = syscall_child(tracer.get(), state.range(1), state.range(2), &c);
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
    read_total += c.extra["syscall_records"]["read"].get<int64_t>();
    emitted_total += c.extra["syscall_records"]["emitted"].get<int64_t>();
    lost_total += c.lost_events;
    ns_total += ns;
  }
  state.counters["records_per_s"] = ns_total ? static_cast<double>(read_total) * 1e9 / static_cast<double>(ns_total) : 0;
  state.counters["lost"] = static_cast<double>(lost_total);
  state.counters["emitted"] = static_cast<double>(emitted_total);
  state.counters["read"] = static_cast<double>(read_total);
  state.counters["ring_MiB"] = static_cast<double>(ring >> 20);
}

// What the programs cost per syscall: getppid() in a loop with no tracer loaded ("off"), with
// the tracer loaded but no window ("idle": every process pays this), and in a watched window
// ("on": sys_exit runs for every syscall, nothing is recorded). Alternating, medians.
void BM_SyscallCost(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root");
    return;
  }
  constexpr int64_t kCalls = 2'000'000;
  std::vector<double> off, idle, on;
  for (auto _ : state) {
    TraceCounts c;
    off.push_back(static_cast<double>(syscall_child(nullptr, kCalls, 0, &c)) / kCalls);
    std::unique_ptr<TraceSession> tracer;
    try {
      tracer = ebpf::open_tracer("tracepoint");
    } catch (const Error& e) {
      state.SkipWithError(e.what());
      return;
    }
    idle.push_back(static_cast<double>(syscall_child(nullptr, kCalls, 0, &c)) / kCalls);
    on.push_back(static_cast<double>(syscall_child(tracer.get(), kCalls, 0, &c)) / kCalls);
    state.SetIterationTime(on.back() * kCalls / 1e9);
  }
  state.counters["off_ns_per_syscall"] = median(off);
  state.counters["idle_ns_per_syscall"] = median(idle);
  state.counters["on_ns_per_syscall"] = median(on);
}

}  // namespace
}  // namespace cowbench::bench

int main(int argc, char** argv) {
  using namespace cowbench::bench;
  take_flag(argc, argv, "--workdir=", [](std::string v) { g_workdir = std::move(v); });
  take_flag(argc, argv, "--image=", [](std::string v) { g_image = std::move(v); });
  take_flag(argc, argv, "--backend=", [](std::string v) { g_backend = std::move(v); });
  take_flag(argc, argv, "--pairs=", [](std::string v) { g_pairs = std::stoi(v); });
  cowbench::log::set_level(cowbench::log::Level::kWarn);
  for (std::string w : {"pkg-install", "db-random-write"})
    benchmark::RegisterBenchmark(("Overhead/" + w).c_str(), BM_Overhead, w)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  // ring MiB, syscalls, rate (0 = unlimited)
  benchmark::RegisterBenchmark("RingBuffer", BM_RingBuffer)
      ->Args({4, 2'000'000, 0})
      ->Args({16, 2'000'000, 0})
      ->Args({4, 1'000'000, 250'000})
      ->Iterations(3)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("SyscallCost", BM_SyscallCost)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
