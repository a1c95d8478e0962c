// Google Benchmark: prepare latency on a 10,000-file parent and the first-write (copy-up) latency curve, per registered backend.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "bench/bench_util.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/registry.h"

namespace cowbench::bench {
namespace {

std::string g_workdir = "/var/tmp/cowbench-bench";

constexpr int64_t kBlock = 4096;
constexpr int kTreeFiles = 10'000;
constexpr const char* kTreeParent = "tree-10k";

// One backend root, opened on first use and kept for every benchmark of that backend, so
// that each parent is made once.
struct Backend {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<snap::Snapshotter> sn;
  std::string target;       // where containers are mounted
  std::string unavailable;  // why not, once it failed
  std::set<std::string> parents;
  int64_t next_key = 0;
};

std::map<std::string, Backend>& backends() {
  static std::map<std::string, Backend> b;
  return b;
}

// The backend, opened if need be; nullptr after SkipWithError when it cannot run here.
Backend* open_backend(benchmark::State& state, const std::string& name) {
  Backend& b = backends()[name];
  if (!b.sn && b.unavailable.empty()) {
    try {
      const auto& spec = snap::builtin_registry().get(name);
      make_dirs(g_workdir);
      auto a = spec.probe(g_workdir);
      if (a.available) {
        b.dir = std::make_unique<TempDir>(g_workdir, "block-" + name);
        b.sn = spec.create(path_join(b.dir->path(), "root"), {});
        b.target = path_join(b.dir->path(), "mnt");
        make_dirs(b.target);
      } else {
        b.unavailable = "unavailable: " + a.reason;
      }
    } catch (const Error& e) {
      b.unavailable = e.what();
    }
  }
  if (!b.unavailable.empty()) {
    state.SkipWithError(b.unavailable.c_str());
    return nullptr;
  }
  return &b;
}

// Commits `name` (no parent) once per backend, filled by fill(mounted dir).
void ensure_parent(Backend& b, const std::string& name, const std::function<void(const std::string&)>& fill) {
  if (b.parents.count(name)) return;
  std::string key = name + "-active";
  {
    ScopedMount m(b.sn->prepare(key, ""), b.target);
    fill(b.target);
    m.close();
  }
  b.sn->commit(name, key);
  b.parents.insert(name);
}

void write_all(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_sys("write {}", what);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

// A file of `size` bytes of data (no holes), fsynced.
void make_file(const std::string& path, int64_t size) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) fail_sys("create {}", path);
  std::string chunk(static_cast<size_t>(std::min<int64_t>(size, 1 << 20)), 'P');
  for (int64_t done = 0; done < size; done += static_cast<int64_t>(chunk.size()))
    write_all(fd.get(), chunk.data(), static_cast<size_t>(std::min<int64_t>(size - done, chunk.size())), path);
  if (fsync(fd.get()) != 0) fail_sys("fsync {}", path);
}

// kTreeFiles files of 4 KiB in 100 directories.
void make_tree(const std::string& dir) {
  std::string block(kBlock, 't');
  for (int d = 0; d < 100; ++d) make_dirs(path_join(dir, fmt::format("d{:02}", d)));
  for (int i = 0; i < kTreeFiles; ++i) {
    std::string p = path_join(dir, fmt::format("d{:02}/f{:05}", i % 100, i));
    Fd fd(open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) fail_sys("create {}", p);
    write_all(fd.get(), block.data(), block.size(), p);
  }
  sync();
}

// prepare(key, parent) of a parent holding kTreeFiles files: the snapshot cost alone.
void BM_Prepare(benchmark::State& state, const std::string& backend) {
  Backend* b = open_backend(state, backend);
  if (!b) return;
  try {
    ensure_parent(*b, kTreeParent, make_tree);
    int64_t container_bytes = -1;
    for (auto _ : state) {
      std::string key = fmt::format("p{}", b->next_key++);
      b->sn->prepare(key, kTreeParent);
      state.PauseTiming();
      if (container_bytes < 0) container_bytes = b->sn->usage(key).size;
      b->sn->remove(key);
      state.ResumeTiming();
    }
    state.counters["files_in_parent"] = kTreeFiles;
    state.counters["container_bytes"] = static_cast<double>(container_bytes);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
  }
}

// The first 4 KiB write (+ fsync) into an inherited file of state.range(0) bytes, in a fresh
// container each time: open for writing (where overlayfs copies up), pwrite in the middle,
// fsync, close. container_bytes is what the container holds of its own afterwards.
void BM_FirstWrite(benchmark::State& state, const std::string& backend) {
  Backend* b = open_backend(state, backend);
  if (!b) return;
  int64_t size = state.range(0);
  std::string parent = fmt::format("file-{}", size);
  try {
    ensure_parent(*b, parent, [&](const std::string& dir) { make_file(path_join(dir, "inherited"), size); });
    std::string block(kBlock, 'w');
    int64_t container_bytes = 0;
    for (auto _ : state) {
      state.PauseTiming();
      std::string key = fmt::format("w{}", b->next_key++);
      ScopedMount m(b->sn->prepare(key, parent), b->target);
      std::string path = path_join(b->target, "inherited");
      sync();  // what prepare wrote (a full copy) is on disk before the clock starts
      state.ResumeTiming();

      Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd) fail_sys("open {}", path);
      off_t at = static_cast<off_t>((size / 2) / kBlock * kBlock);
      if (pwrite(fd.get(), block.data(), block.size(), at) != kBlock) fail_sys("pwrite {}", path);
      if (fsync(fd.get()) != 0) fail_sys("fsync {}", path);
      if (fd.close() != 0) fail_sys("close {}", path);

      state.PauseTiming();
      m.close();
      container_bytes += b->sn->usage(key).size;
      b->sn->remove(key);
      state.ResumeTiming();
    }
    state.counters["file_bytes"] = static_cast<double>(size);
    state.counters["written_bytes"] = kBlock;
    state.counters["container_bytes"] = benchmark::Counter(static_cast<double>(container_bytes),
                                                           benchmark::Counter::kAvgIterations);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace
}  // namespace cowbench::bench

int main(int argc, char** argv) {
  using namespace cowbench::bench;
  // Our own flag, taken out before Google Benchmark parses the rest.
  take_flag(argc, argv, "--workdir=", [](std::string v) { g_workdir = std::move(v); });
  // One timed operation per repetition: the median aggregate is the median latency.
  for (const auto& name : cowbench::snap::builtin_registry().names()) {
    benchmark::RegisterBenchmark(("Prepare10kFiles/" + name).c_str(), BM_Prepare, name)
        ->Iterations(1)->Repetitions(9)->DisplayAggregatesOnly()->Unit(benchmark::kMillisecond)->UseRealTime();
    for (auto [size, reps] : {std::pair<int64_t, int>{4 << 10, 15}, {1 << 20, 15}, {64 << 20, 9}, {int64_t{1} << 30, 5}})
      benchmark::RegisterBenchmark(("FirstWrite/" + name).c_str(), BM_FirstWrite, name)
          ->Arg(size)->Iterations(1)->Repetitions(reps)->DisplayAggregatesOnly()
          ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  int rc = run_benchmarks(argc, argv, "bench_block");
  if (rc == 2) return rc;
  // Close every backend (scratch file systems unmounted) before the roots are removed.
  for (auto& [name, b] : backends()) {
    try {
      if (b.sn) b.sn->close();
    } catch (const cowbench::Error& e) {
      fmt::print(stderr, "bench_block: closing {}: {}\n", name, e.what());
      rc = 1;
    }
  }
  backends().clear();
  benchmark::Shutdown();
  return rc;
}
