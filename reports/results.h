// The results model of schema "cowbench/v1": runs, summaries, and their JSON form.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/copyup_kinds.h"

namespace cowbench::rep {

inline constexpr const char* kSchema = "cowbench/v1";

// Latency quantiles of a set of operations, in ns; all -1 when there were none.
struct Quantiles {
  int64_t p50 = -1, p90 = -1, p99 = -1, max = -1;
  // The distribution at fixed fractions (kCdfFractions): (fraction, ns) pairs, ascending; empty
  // when there were no operations or the file predates it. Reports draw latency CDFs from it.
  std::vector<std::pair<double, int64_t>> cdf;
};
// The fractions at which quantiles() samples the CDF: 0 (the minimum) to 1 (the maximum).
inline constexpr double kCdfFractions[] = {0,    0.01, 0.05, 0.1,  0.2,  0.3,  0.4,   0.5, 0.6,
                                           0.7,  0.8,  0.9,  0.95, 0.98, 0.99, 0.999, 1};
// Quantiles by nearest rank; the input is sorted in place.
Quantiles quantiles(std::vector<int64_t>& values);

// The median of the values that are not negative (-1: none).
int64_t median_of(std::vector<int64_t> v);
// Mean, sample standard deviation and coefficient of variation (sd / mean) of at least two
// values; cv is -1 when there are fewer or the mean is not positive.
struct Spread {
  double mean = 0, sd = 0, cv = -1;
};
Spread spread(const std::vector<int64_t>& v);

// What other work took from the host while one run was measured (sampled by runner/host_load.h):
// CPU time from /proc/stat over the run's window (the container's whole life, all CPUs).
struct HostLoad {
  int64_t window_ns = 0;        // how long the sampled window was
  int cpus = 0;                 // online CPUs (the cpuN lines of /proc/stat)
  int64_t steal_ns = 0;         // CPU time the hypervisor gave to others, all CPUs together
  int64_t outside_busy_ns = 0;  // busy CPU time of the host minus the container's cgroup and
                                // cowbench's own, all CPUs together (clamped at 0)
  int64_t resolution_ns = 0;    // how far the tick-counted figures can be off: one tick per CPU, plus one
  bool busy = false;            // busy_host() when it was measured
  // How many CPUs other work kept busy on average: outside_busy_ns / window_ns.
  double outside_cpus() const {
    return window_ns > 0 ? static_cast<double>(outside_busy_ns) / static_cast<double>(window_ns) : 0;
  }
};
// A run is taken "while the host was busy" when, beyond the counters' resolution, other work
// kept more than half a CPU busy on average (on the 2-4 CPU machines CI runs on, that is work
// competing for the container's CPU, its caches and the disk for a good part of the run), or
// the hypervisor stole more than 10 % of the CPUs' time (a guest that loses a tenth of its
// time stretches a CPU-bound run about as much as the 5 % regressions compare looks for).
inline constexpr double kBusyOutsideCpus = 0.5;
inline constexpr double kBusyStealShare = 0.10;
// outside_busy_ns - resolution_ns > kBusyOutsideCpus * window_ns, or steal_ns - resolution_ns >
// kBusyStealShare * cpus * window_ns. Pure.
bool busy_host(const HostLoad& h);

// One measured run of one workload on one backend. Every size in bytes, every time in ns;
// -1 means "not measured" (e.g. copy-up events with tracing off) and is written as null.
struct Run {
  std::string backend;       // the row's name: a backend's, or a variant's (--variant NAME=...)
  // The registered backend the row ran on: `backend` itself for a plain backend, a variant's
  // backend (its options: config.variants). Empty = the same as `backend` (files written before it).
  std::string backend_kind;
  std::string workload;
  int repeat = 0;
  std::string cache = "warm";  // warm | cold
  std::string status = "ok";   // ok | failed
  std::string error;           // why it failed
  int exit_code = 0;           // exec: workloads
  std::string stderr_tail;     // exec: workloads, last lines
  int64_t wall_ns = -1;        // the workload alone, inside the container
  int64_t setup_ns = -1;       // prepare + mount + pivot_root
  int64_t ops_count = 0;
  Quantiles op_latency;
  int64_t copyup_events = -1, copyup_bytes = -1;
  Quantiles copyup_latency;
  int64_t cow_extents = -1, cow_bytes = -1;
  int64_t upper_bytes = -1, shared_bytes = -1;
  int64_t page_cache_bytes = -1;
  int64_t cpu_user_ns = -1, cpu_sys_ns = -1;
  int64_t truth_copyups = -1, truth_copyup_bytes = -1;
  std::string digest;          // what the container saw and did, identical across backends
  // Of the copy-ups (traced / ground truth): files copied up metadata-only (overlay metacopy=on),
  // whose data was not copied; -1: not measured.
  int64_t copyup_metadata_only = -1, truth_copyup_metadata_only = -1;
  // The copy-ups by how each file's data reached the writable layer (data copied, cloned,
  // metadata only; see common/copyup_kinds.h), traced and from the ground truth (FIEMAP of each
  // upper file against its lower, the metacopy xattr); measured = false: not measured.
  CopyupKinds copyup_kinds, truth_copyup_kinds;
  // Of the ground-truth copy-ups, lower files copied up and then deleted (fuse-overlayfs copies a
  // file up to delete it): gone from the writable layer; -1: not measured.
  int64_t truth_copyups_dropped = -1;
  int64_t lost_events = -1;    // ring-buffer records the tracer lost in this run (-1: not traced);
                               // written as extra.trace.lost_events with the tracer's other figures
  nlohmann::json extra = nlohmann::json::object();  // workload-specific figures
  // Block CoW (reflink, btrfs): cow_extents / cow_bytes above are the inherited data the
  // container rewrote (shared with the parent, now its own); this is what it wrote into
  // inherited files beyond their inherited end or into their holes (new blocks, not CoW).
  int64_t cow_new_bytes = -1;
  // Ground truth of the same from FIEMAP: the container's files against what they inherited.
  int64_t truth_cow_extents = -1, truth_cow_bytes = -1, truth_new_bytes = -1;
  // The system calls the container entered during its trace window, by name ("fsync" → 7):
  // deterministic counters. Empty = not measured (tracing off, or not countable here).
  std::map<std::string, int64_t> syscalls;
  // The testbed (host) it was measured on, in a document merged from several hosts
  // (Results::testbeds); empty in a single host's document.
  std::string testbed;
  // Other work on the host during the run; nullopt when not measured (files written before it
  // existed, a run whose container CPU time could not be read).
  std::optional<HostLoad> host_load;
};

// One (backend, workload) row: medians over its ok runs.
struct SummaryRow {
  std::string backend, workload;
  std::string testbed;  // a merged document's testbed (rows are per testbed); "" for one host
  int n = 0;
  int64_t median_wall_ns = -1;
  int64_t ci95_ns = -1;  // half-width of an approximate 95 % interval for the median
  double cv = -1;        // coefficient of variation of wall time
  int64_t median_setup_ns = -1;
  int64_t median_copyup_events = -1, median_copyup_bytes = -1;
  int64_t median_upper_bytes = -1, median_shared_bytes = -1;
  int64_t median_page_cache_bytes = -1;
  int64_t median_cpu_user_ns = -1, median_cpu_sys_ns = -1;
  int64_t median_truth_copyups = -1;
  int64_t median_truth_copyup_bytes = -1;
  int64_t median_truth_copyups_dropped = -1;  // not written to results.json's summary
  // Per kind, the medians over the ok runs that measured kinds (measured = false: none did);
  // not written to results.json's summary (the reports show them).
  CopyupKinds median_copyup_kinds, median_truth_copyup_kinds;
  int64_t median_cow_extents = -1, median_cow_bytes = -1, median_cow_new_bytes = -1;
  int64_t median_truth_cow_extents = -1, median_truth_cow_bytes = -1, median_truth_new_bytes = -1;
  // Per syscall name, the median over the ok runs that counted them; empty when none did.
  std::map<std::string, int64_t> median_syscalls;
};

// One row per (testbed, backend, workload), in the order the triples first appear in `runs`.
std::vector<SummaryRow> summarize(const std::vector<Run>& runs);

// One host of a document merged from several (`cowbench merge --allow-mixed-hosts`).
struct Testbed {
  std::string name;  // what runs[].testbed says
  nlohmann::json host = nlohmann::json::object();  // that host's `host` object
};

struct Results {
  nlohmann::json host = nlohmann::json::object();    // kernel, cpus, memory, filesystems
  nlohmann::json config = nlohmann::json::object();  // the full run configuration, tool version
  std::string trace_mode = "off";
  int64_t lost_events = 0;
  nlohmann::json trace_extra = nlohmann::json::object();
  std::vector<Run> runs;
  bool interrupted = false;
  // Empty for one host. Merged from several: every host, each run naming its own; `host`
  // above is then the first testbed's.
  std::vector<Testbed> testbeds;
};

nlohmann::json to_json(const Run& r);
Run run_from_json(const nlohmann::json& j);
// The whole document, summary included (recomputed from runs).
nlohmann::json to_json(const Results& r);
// Parses a document; throws kInvalidInput naming what is wrong (another schema, missing field).
Results results_from_json(const nlohmann::json& j);
Results load_results(const std::string& path);
// Writes atomically (temp + rename), so a reader never sees half a file.
void save_results(const Results& r, const std::string& path);

}  // namespace cowbench::rep
