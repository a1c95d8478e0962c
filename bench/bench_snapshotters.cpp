// Google Benchmark: snapshot operation latency per registered backend (prepare, mount, commit, remove).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "bench/bench_util.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/registry.h"

namespace cowbench::bench {
namespace {

std::string g_workdir = "/var/tmp/cowbench-bench";

// A committed base layer of `files` small files (4 KiB) in 10 directories.
void make_base(snap::Snapshotter& sn, const std::string& scratch, int files) {
  auto mounts = sn.prepare("base-active", "");
  TempDir target(scratch, "mnt");
  ScopedMount m(mounts, target.path());
  std::string block(4096, 'x');
  for (int d = 0; d < 10; ++d) make_dirs(path_join(target.path(), "d" + std::to_string(d)));
  for (int i = 0; i < files; ++i) {
    std::string p = path_join(target.path(), "d" + std::to_string(i % 10) + "/f" + std::to_string(i));
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) fail_sys("write {}", p);
    close(fd);
  }
  m.close();
  sn.commit("base", "base-active");
}

struct Fixture {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<snap::Snapshotter> sn;
};

// Opens a fresh backend root with a base of `files` files, or skips with the reason.
bool open_backend(benchmark::State& state, const std::string& backend, int files, Fixture& fx) {
  const auto& spec = snap::builtin_registry().get(backend);
  make_dirs(g_workdir);
  auto a = spec.probe(g_workdir);
  if (!a.available) {
    state.SkipWithError(("unavailable: " + a.reason).c_str());
    return false;
  }
  fx.dir = std::make_unique<TempDir>(g_workdir, "bench-" + backend);
  fx.sn = spec.create(path_join(fx.dir->path(), "root"), {});
  make_base(*fx.sn, fx.dir->path(), files);
  return true;
}

// The container lifecycle a runtime goes through: prepare + mount + unmount + remove.
void BM_Lifecycle(benchmark::State& state, const std::string& backend) {
  Fixture fx;
  if (!open_backend(state, backend, static_cast<int>(state.range(0)), fx)) return;
  TempDir target(fx.dir->path(), "target");
  int64_t n = 0;
  for (auto _ : state) {
    std::string key = "c" + std::to_string(n++);
    auto mounts = fx.sn->prepare(key, "base");
    ScopedMount m(mounts, target.path());
    m.close();
    fx.sn->remove(key);
  }
  state.counters["files_in_parent"] = static_cast<double>(state.range(0));
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

// prepare alone (no mount): the snapshot cost apart from the mount cost.
void BM_Prepare(benchmark::State& state, const std::string& backend) {
  Fixture fx;
  if (!open_backend(state, backend, static_cast<int>(state.range(0)), fx)) return;
  int64_t n = 0;
  for (auto _ : state) {
    std::string key = "c" + std::to_string(n++);
    fx.sn->prepare(key, "base");
    state.PauseTiming();
    fx.sn->remove(key);
    state.ResumeTiming();
  }
  state.counters["files_in_parent"] = static_cast<double>(state.range(0));
}

// commit of an active snapshot holding one new file, then a child of it (layer building).
void BM_CommitLayer(benchmark::State& state, const std::string& backend) {
  Fixture fx;
  if (!open_backend(state, backend, 100, fx)) return;
  int64_t n = 0;
  for (auto _ : state) {
    std::string key = "a" + std::to_string(n), name = "l" + std::to_string(n);
    ++n;
    fx.sn->prepare(key, "base");
    fx.sn->commit(name, key);
    state.PauseTiming();
    fx.sn->remove(name);
    state.ResumeTiming();
  }
}

}  // namespace
}  // namespace cowbench::bench

int main(int argc, char** argv) {
  using namespace cowbench::bench;
  // Our own flag, taken out before Google Benchmark parses the rest.
  take_flag(argc, argv, "--workdir=", [](std::string v) { g_workdir = std::move(v); });
  for (const auto& name : cowbench::snap::builtin_registry().names()) {
    benchmark::RegisterBenchmark(("Lifecycle/" + name).c_str(), BM_Lifecycle, name)
        ->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("Prepare/" + name).c_str(), BM_Prepare, name)
        ->Arg(1000)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark(("CommitLayer/" + name).c_str(), BM_CommitLayer, name)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  if (int rc = run_benchmarks(argc, argv, "bench_snapshotters")) return rc;
  benchmark::Shutdown();
  return 0;
}
