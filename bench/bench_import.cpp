// Google Benchmark: image import throughput (MB/s of uncompressed layer data) — the applier, snapshot imports, and GNU tar -x as the peer.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "common/error.h"
#include "common/fs.h"
#include "images/apply.h"
#include "images/image.h"
#include "images/import.h"
#include "snapshotters/registry.h"

namespace cowbench::bench {
namespace {

std::string g_workdir = "/var/tmp/cowbench-bench";
std::string g_image = "synth:default";

// Wall seconds per iteration of each benchmark that ran, for the ratio printed at the end.
std::map<std::string, double> g_seconds;

const img::Image& image() {
  static const img::Image im = [] {
    make_dirs(g_workdir);
    return img::open_image(img::parse_ref(g_image), path_join(g_workdir, "images"));
  }();
  return im;
}

// Uncompressed bytes of all layers (the figure MB/s is computed from), measured once.
uint64_t layer_bytes() {
  static const uint64_t n = [] {
    uint64_t total = 0;
    for (const auto& s : img::summarize_layers(image())) total += s.uncompressed_size;
    return total;
  }();
  return n;
}

// Trees of every iteration stay until the program ends: deleting between iterations would
// make the next one pay for ext4's reuse of freshly deleted inodes (see bench_copy.cpp).
TempDir& trash() {
  static TempDir dir(g_workdir, "import-dst");
  return dir;
}

std::string fresh_dir() {
  static int n = 0;
  std::string p = path_join(trash().path(), std::to_string(++n));
  make_dirs(p);
  return p;
}

// Times `body` per iteration (setup outside timing), sets MB/s and CPU counters, records the
// mean for the ratio. `body` returns false to stop with the error it set.
template <typename Setup, typename Body>
void measure(benchmark::State& state, const std::string& name, Setup setup, Body body) {
  try {
    uint64_t bytes = layer_bytes();
    double wall = 0, cpu = 0;
    for (auto _ : state) {
      state.PauseTiming();
      auto ctx = setup();
      sync();
      double c0 = cpu_seconds();
      auto t0 = std::chrono::steady_clock::now();
      state.ResumeTiming();
      bool ok = body(ctx);
      state.PauseTiming();
      wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      cpu += cpu_seconds() - c0;
      if (!ok) return;
      state.ResumeTiming();
    }
    double it = static_cast<double>(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
    state.counters["MB"] = static_cast<double>(bytes) / 1e6;
    state.counters["cpu_s"] = cpu / it;
    g_seconds[name] = wall / it;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// cowbench's reader + safe applier, every layer in order into one plain directory.
void bm_apply_dir(benchmark::State& state) {
  measure(state, "apply", fresh_dir, [](const std::string& dir) {
    for (size_t i = 0; i < image().layers.size(); ++i) img::apply_layer(*image().read_layer(i), dir);
    return true;
  });
}

// GNU tar -x of the same blobs into one directory (a gzip child decompresses). tar knows
// nothing of whiteouts (it writes the .wh. files as they are): slightly less work.
void bm_tar_x(benchmark::State& state) {
  measure(state, "tar", fresh_dir, [&](const std::string& dir) {
    for (const auto& l : image().layers) {
      std::vector<std::string> argv = {"tar", "-x", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*"};
      if (l.compression == img::Compression::kGzip) argv.push_back("-z");
      if (l.compression == img::Compression::kZstd) argv.push_back("--zstd");
      for (const char* a : {"-f", l.source.c_str(), "-C", dir.c_str()}) argv.emplace_back(a);
      if (int rc = run_command(argv); rc != 0) {
        state.SkipWithError(("tar -x exited with " + std::to_string(rc)).c_str());
        return false;
      }
    }
    return true;
  });
}

// import_image into a fresh snapshotter root of `backend` (prepare, mount, apply, commit per layer).
void bm_import(benchmark::State& state, const std::string& backend) {
  const auto& spec = snap::builtin_registry().get(backend);
  make_dirs(g_workdir);
  auto a = spec.probe(g_workdir);
  if (!a.available) {
    state.SkipWithError(("unavailable: " + a.reason).c_str());
    return;
  }
  std::vector<std::unique_ptr<snap::Snapshotter>> keep;
  measure(
      state, "import/" + backend,
      [&] {
        keep.push_back(spec.create(path_join(fresh_dir(), "root"), {}));
        return keep.back().get();
      },
      [&](snap::Snapshotter* sn) {
        img::ImportOptions o;
        o.scratch_dir = trash().path();
        img::import_image(image(), *sn, o);
        return true;
      });
  for (auto& sn : keep) sn->close();
}

}  // namespace
}  // namespace cowbench::bench

int main(int argc, char** argv) {
  using namespace cowbench::bench;
  take_flag(argc, argv, "--workdir=", [](std::string v) { g_workdir = std::move(v); });
  take_flag(argc, argv, "--image=", [](std::string v) { g_image = std::move(v); });
  auto reg = [](benchmark::internal::Benchmark* b) { b->UseRealTime()->Iterations(3)->Unit(benchmark::kMillisecond); };
  reg(benchmark::RegisterBenchmark("Import/apply-dir", bm_apply_dir));
  reg(benchmark::RegisterBenchmark("Import/tar-x", bm_tar_x));
  for (const char* backend : {"overlayfs", "copy"})
    reg(benchmark::RegisterBenchmark((std::string("Import/snapshot/") + backend).c_str(), bm_import, std::string(backend)));
  if (int rc = run_benchmarks(argc, argv, "bench_import")) return rc;
  benchmark::Shutdown();
  // The comparison the benchmark exists for: cowbench's import against tar -x, same blobs, same run.
  if (g_seconds.count("tar")) {
    double mb = static_cast<double>(layer_bytes()) / 1e6, tar = g_seconds["tar"];
    fmt::print("\ntar -x: {:.1f} MB/s ({:.0f} MB of layers in {:.2f} s)\n", mb / tar, mb, tar);
    for (const auto& [name, secs] : g_seconds)
      if (name != "tar")
        fmt::print("{}: {:.1f} MB/s, ratio to tar -x {:.2f} (above 1: faster than tar)\n", name, mb / secs, tar / secs);
  }
  return 0;
}
