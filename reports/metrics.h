// The measured figures of a run as one table (JSON path, label, unit, accessor), shared by the CSV writer, compare and the reports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reports/results.h"
#include "reports/units.h"

namespace cowbench::rep {

// One figure of a Run. Adding a field to Run means adding one row to run_metrics(): the CSV
// gains a column and compare a row.
struct Metric {
  const char* key;    // the JSON path inside a run, e.g. "copyup.bytes"
  const char* label;  // for people, e.g. "copy-up bytes"
  Unit unit;
  int64_t (*get)(const Run&);  // -1 = not measured
  bool compared;               // one of the metrics `cowbench compare` tests
  // A count the work itself fixes (copy-ups, bytes written to the writable layer): the same in
  // every repeat of the same plan, so compare takes a change in it as real, without statistics.
  // Times, CPU and page cache are measurements: never compared exactly.
  bool counter = false;
  // The figure's resolution, added before compare takes logarithms so that a value at the
  // resolution's edge (0 against one tick) is not a change of orders of magnitude: 1 for
  // exact figures, a USER_HZ tick (10 ms) for CPU times from cpuacct.stat.
  double resolution = 1;
  // Counters that are allocations (the writable layer's blocks): identical work can end a block
  // or two apart between runs (directory and metadata blocks; seen: copy db-random-write's upper
  // took 240,459,776–240,472,064 bytes over 9 runs of one build). Compare takes a difference of at
  // most this many bytes as the same value.
  int64_t slack = 0;
};

// Every numeric figure of a run, in the order of results.json.
const std::vector<Metric>& run_metrics();

// The system calls whose number the work itself decides — file-system changes and syncs
// (fsync, fdatasync, unlink(at), rename(at/2), mkdir(at), rmdir, link(at), symlink(at),
// chmod/chown families, utimensat, truncate, fallocate, setxattr families) — so that two runs
// of the same plan make them equally often; `compare` compares them exactly. Calls that follow
// timing (futex, io_uring_enter, mmap, brk, read …) are left out.
const std::vector<std::string>& workload_syscalls();
// The metric of runs[].syscalls[name] ("syscalls.fsync", label "fsync calls", a counter); the
// same object for the same name. Its `get` is null: the values come from Run::syscalls.
const Metric& syscall_metric(const std::string& name);

// The measured (>= 0) values of `m` over `runs`, in order.
std::vector<double> measured(const std::vector<const Run*>& runs, const Metric& m);
// The median of `v` (NaN when empty); `v` is taken by value and sorted.
double median(std::vector<double> v);

// Scale-out runs are named "<family>/<containers>" and carry extra.containers (image-family
// runs "<family>/<images>" and extra.images); this gives (family, containers) for them and
// nullopt for every other run.
std::optional<std::pair<std::string, int>> scale_out_point(const Run& r);

// A copy-up figure and where it came from: the tracer, or (tracing off) the ground truth read
// from the writable layer afterwards.
struct Sourced {
  int64_t value = -1;  // -1: neither was measured
  bool ground_truth = false;
};
Sourced copyup_events(const SummaryRow& s);
Sourced copyup_bytes(const SummaryRow& s);
// Block CoW the same way: bytes of inherited data rewritten, and new data beyond the inherited
// end or in holes.
Sourced cow_bytes(const SummaryRow& s);
Sourced new_bytes(const SummaryRow& s);

}  // namespace cowbench::rep
