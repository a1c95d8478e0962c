// Google Benchmark: the latency of the first 4 KiB write into an inherited lower file, by the file's size, per backend (overlayfs on the work directory, on XFS and on btrfs; reflink; btrfs).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/prng.h"
#include "snapshotters/registry.h"

namespace cowbench::bench {
namespace {

std::string g_workdir = "/var/tmp/cowbench-bench";
bool g_cold = false;  // --cache=cold: sync and drop the page cache before each first write
int g_repeats = 5;

// The rows: a backend with its options, named as in the conformance suite.
struct Row {
  std::string label, backend;
  snap::BackendOptions options;
};
const std::vector<Row>& rows() {
  static const std::vector<Row> r{
      {"overlayfs", "overlayfs", {}},
      {"overlayfs[fs=xfs]", "overlayfs", {{"fs", "xfs"}}},
      {"overlayfs[fs=btrfs]", "overlayfs", {{"fs", "btrfs"}}},
      {"reflink", "reflink", {}},
      {"btrfs", "btrfs", {}},
  };
  return r;
}

constexpr int64_t kWrite = 4096;
const std::vector<int64_t> kSizes{4 << 10, 1 << 20, 64 << 20, int64_t{1} << 30};

// A backend opened once for the whole program, with a committed one-file base per size made on
// first use (a 1 GiB base is written once, not once per repetition).
struct Opened {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<snap::Snapshotter> sn;
  std::map<int64_t, std::string> bases;  // size → committed base holding /f of that size
  std::string unavailable;               // why not, once it failed to open
  int64_t next = 0;                      // container keys
};
std::map<std::string, Opened>& opened() {
  static std::map<std::string, Opened> o;
  return o;
}

// Writes `size` bytes of non-repeating data to `path` and syncs it.
void write_lower(const std::string& path, int64_t size) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) fail_sys("create {}", path);
  Prng rng(static_cast<uint64_t>(size));
  std::vector<uint64_t> chunk((1 << 20) / sizeof(uint64_t));
  for (int64_t done = 0; done < size;) {
    for (auto& w : chunk) w = rng.next();
    size_t n = static_cast<size_t>(std::min<int64_t>(size - done, 1 << 20));
    if (write(fd.get(), chunk.data(), n) != static_cast<ssize_t>(n)) fail_sys("write {}", path);
    done += static_cast<int64_t>(n);
  }
  if (fsync(fd.get()) != 0) fail_sys("fsync {}", path);
}

// The row's backend with a base of `size`, or null with the reason it cannot run here.
Opened* backend_with_base(const Row& row, int64_t size, std::string* why) {
  Opened& o = opened()[row.label];
  if (!o.unavailable.empty()) {
    *why = o.unavailable;
    return nullptr;
  }
  if (!o.sn) {
    const auto& spec = snap::builtin_registry().get(row.backend);
    make_dirs(g_workdir);
    auto a = spec.probe(g_workdir);
    if (!a.available) {
      *why = o.unavailable = "unavailable: " + a.reason;
      return nullptr;
    }
    std::string name = row.label;
    for (char& c : name)
      if (c == '[' || c == ']' || c == '=') c = '-';
    o.dir = std::make_unique<TempDir>(g_workdir, "first-write-" + name);
    try {
      o.sn = spec.create(path_join(o.dir->path(), "root"), row.options);
    } catch (const Error& e) {
      if (e.code() != Errc::kUnsupported) throw;
      *why = o.unavailable = std::string("unavailable: ") + e.what();
      o.dir.reset();
      return nullptr;
    }
  }
  if (!o.bases.count(size)) {
    std::string base = "base-" + std::to_string(size), key = base + "-active";
    auto mounts = o.sn->prepare(key, "");
    TempDir target(o.dir->path(), "mnt");
    {
      ScopedMount m(mounts, target.path());
      write_lower(path_join(target.path(), "f"), size);
      m.close();
    }
    o.sn->commit(base, key);
    o.bases[size] = base;
  }
  return &o;
}

// Reads the whole file (so that its pages are cached as the container sees it).
void read_all(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail_sys("open {}", path);
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) fail_sys("read {}", path);
    if (n == 0) break;
  }
}

void drop_caches() {
  sync();
  Fd fd(open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), "3", 1) != 1) fail_sys("drop caches (/proc/sys/vm/drop_caches)");
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// One iteration: a fresh container on the base of `size`, its file's pages cached (warm) or
// dropped (cold), then timed: open(O_WRONLY) + pwrite of 4 KiB at offset 0 — on overlayfs the
// copy-up of the whole file (copied, or cloned on XFS/btrfs) and the write, on reflink and
// btrfs the write into a clone (its CoW comes at writeback) — and apart from it the fsync that
// follows (counter fsync_ms).
void BM_FirstWrite(benchmark::State& state, const Row& row, int64_t size) {
  std::string why;
  Opened* o = backend_with_base(row, size, &why);
  if (!o) {
    state.SkipWithError(why.c_str());
    return;
  }
  TempDir target(o->dir->path(), "target");
  std::string file = path_join(target.path(), "f");
  std::string block(kWrite, 'w');
  double fsync_s = 0;
  for (auto _ : state) {
    std::string key = "c" + std::to_string(o->next++);
    auto mounts = o->sn->prepare(key, o->bases[size]);
    {
      ScopedMount m(mounts, target.path());
      if (g_cold) {
        drop_caches();
      } else {
        read_all(file);
      }
      sync();
      o->sn->quiesce();
      auto t0 = std::chrono::steady_clock::now();
      Fd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd) fail_sys("open {} for write", file);
      if (pwrite(fd.get(), block.data(), block.size(), 0) != kWrite) fail_sys("write {}", file);
      state.SetIterationTime(seconds_since(t0));
      auto t1 = std::chrono::steady_clock::now();
      if (fsync(fd.get()) != 0) fail_sys("fsync {}", file);
      fsync_s += seconds_since(t1);
      fd.reset();
      m.close();
    }
    o->sn->remove(key);
  }
  state.counters["lower_bytes"] = static_cast<double>(size);
  state.counters["fsync_ms"] = benchmark::Counter(fsync_s * 1e3, benchmark::Counter::kAvgIterations);
}

void close_all() {
  for (auto& [label, o] : opened()) {
    try {
      if (o.sn) o.sn->close();
    } catch (const std::exception& e) {
      fmt::print(stderr, "bench_first_write: closing {}: {}\n", label, e.what());
    }
    o.sn.reset();
    o.dir.reset();
  }
}

std::string size_name(int64_t s) {
  if (s >= (int64_t{1} << 30)) return std::to_string(s >> 30) + "GiB";
  if (s >= (1 << 20)) return std::to_string(s >> 20) + "MiB";
  return std::to_string(s >> 10) + "KiB";
}

}  // namespace
}  // namespace cowbench::bench

int main(int argc, char** argv) {
  using namespace cowbench::bench;
  // Our own flags, taken out before Google Benchmark parses the rest.
  take_flag(argc, argv, "--workdir=", [](std::string v) { g_workdir = std::move(v); });
  bool bad = false;
  take_flag(argc, argv, "--cache=", [&](const std::string& v) {
    if (v != "warm" && v != "cold") bad = true;
    g_cold = v == "cold";
  });
  take_flag(argc, argv, "--repeats=", [&](const std::string& v) {
    g_repeats = std::atoi(v.c_str());
    if (g_repeats < 1) bad = true;
  });
  if (bad) {
    fmt::print(stderr, "bench_first_write: --cache takes warm|cold, --repeats a positive number\n");
    return 2;
  }
  auto min = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  auto max = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  // Sizes outer, backends inner: the backends of one size run one after the other.
  for (int64_t size : kSizes)
    for (const Row& row : rows())
      benchmark::RegisterBenchmark(("FirstWrite/" + row.label + "/" + size_name(size)).c_str(), BM_FirstWrite, row, size)
          ->Iterations(1)
          ->Repetitions(g_repeats)
          ->ComputeStatistics("min", min)
          ->ComputeStatistics("max", max)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
  int rc = run_benchmarks(argc, argv, "bench_first_write");
  close_all();
  benchmark::Shutdown();
  return rc;
}
