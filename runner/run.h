// `cowbench run`: the backend × workload × repeat matrix, interleaved, measured, written as it goes (runner/scheduler.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reports/results.h"
#include "ebpf/trace_session.h"
#include "runner/rows.h"
#include "runner/shard.h"
#include "snapshotters/registry.h"
#include "workloads/exec.h"
#include "workloads/workload.h"

namespace cowbench {

struct RunConfig {
  std::string version = "unknown";     // the tool's version for results.json (the CLI sets it)
  // Rows by name: backends and variants (empty: every backend available here, then every variant).
  std::vector<std::string> backends;
  std::map<std::string, snap::BackendOptions> backend_options;  // options of the plain backends' rows
  // --variant: backends with option sets, each a row of its own (rows.h); a variant that
  // `backends` does not name runs too, after the rows it names.
  std::vector<Variant> variants;
  std::vector<std::string> workloads;  // empty: wl::default_workloads()
  // The exec workloads of --exec (and exec:CMD turned into specs by the CLI); `workloads` lists
  // each by its display name (wl::exec_display_name), which picks it out of here.
  std::vector<wl::ExecSpec> execs;
  std::string image = "synth:default";
  std::string platform;                // os/arch[/variant] to pick from an index; "" = this host
  int repeat = 4;
  bool warmup = true;                  // one unrecorded round first: each container workload once per backend
  std::string cache = "warm";          // warm | cold (drop caches before each run)
  // Write back and drop the caches once before anything else (drop_caches() in hygiene.h): a
  // run then starts from the same state whatever ran before it, and outside the wake of an
  // earlier run's deleted containers. The CLI turns it on unless --keep-caches.
  bool drop_caches_at_start = false;
  std::string trace = "auto";          // auto | fentry | kprobe | tracepoint | off
  std::string workdir = "./cowbench-work";
  std::string out = "./cowbench-out";
  uint64_t seed = 1;
  std::chrono::seconds timeout{300};   // per container
  bool fresh = false;                  // ignore cached image layers
  // Device nodes in the image's layers (img::DevicePolicy): "refuse" the image, "skip" them
  // (counted in config.images, said once on stderr) or "allow" them (mknod).
  std::string devices = "skip";
  std::vector<int> scale_out;          // container counts for scale-out (empty: the plan's)
  std::vector<int> family_sizes;       // image counts for image-family (empty: the plan's)
  // The CPU each container's workload runs on, while cowbench itself and what it starts (FUSE
  // daemons, the tracer's reader) keep off it: "none" (not pinned), "last" (the last CPU
  // cowbench may use, when it may use two or more) or a CPU number; meant for a CPU kept free
  // of other work (isolcpus=). Scale-out containers are not pinned.
  std::string cpu = "none";
  // > 0: after `repeat` rounds, more interleaved rounds (up to max_repeat in all) of each
  // workload while one of its rows' 95 % interval of the median is wider than this fraction of
  // the median, on either side (for noisy hosts: a steadier median, not a steadier run).
  double until_ci = 0;
  int max_repeat = 20;
  // --shard I/N: only this shard's workloads (shard_workloads() of the workload list), every
  // backend; recorded as config.shard.
  std::optional<Shard> shard;
  // > 0: the --ci profile. Repeats are chosen from the host's noise measured at the start (at
  // least `repeat`), then a workload gets more rounds while one of its wall-time rows could not
  // yet resolve a change of this fraction (wall_resolution in until_ci.h), up to max_repeat.
  double ci_target = 0;
  // > 0: no round is started that is expected to end past this much time from the run's start
  // (after two recorded rounds, which always run); results.json says when it cut the run short.
  std::chrono::seconds budget{0};
};

// An image made ready in one backend: the committed snapshot containers start from.
struct PreparedImage {
  std::string top;         // committed snapshot name (chain id)
  int64_t import_ns = 0;   // 0 when it came from the cache
  bool cached = false;
  std::string devices;              // the device policy it was imported under
  uint64_t skipped_devices = 0;     // device nodes that policy left out
  nlohmann::json info = nlohmann::json::object();  // layers, sizes
};

struct RunHooks {
  // Imports cfg.image into a backend (reusing its cache unless cfg.fresh). Required.
  std::function<PreparedImage(snap::Snapshotter& sn, const std::string& backend)> import_image;
  // Makes the tracer for cfg.trace; null (or returning null) means tracing off. Throws
  // kUsage when a forced mode cannot work here.
  std::function<std::unique_ptr<ebpf::TraceSession>(const std::string& mode)> make_tracer;
  // Told about progress (one line per event); default: a bar on a terminal, lines otherwise.
  std::function<void(const std::string& line, int done, int total)> progress;
};

// Runs the matrix and returns the results; after every finished run OUT/results.json is
// rewritten, so an interruption (the `stop` flag, e.g. set by SIGINT) keeps what finished.
// A failing run is recorded as failed and the matrix goes on.
rep::Results run_matrix(const RunConfig& cfg, const RunHooks& hooks, const std::atomic<bool>& stop);

}  // namespace cowbench
