// A run's figures from what it left: the finished snapshot (disk, ground truth) and the workload's outcome.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/mount.h"
#include "reports/results.h"
#include "runner/ground_truth.h"
#include "snapshotters/snapshotter.h"
#include "workloads/workload.h"

namespace cowbench {

// What a finished snapshot holds.
struct SnapshotMeasure {
  int64_t upper_bytes = -1;   // usage(key).size: the snapshot's own bytes
  int64_t shared_bytes = -1;  // usage(key).shared: bytes still shared with its parents
  std::optional<CopyupTruth> truth;  // when the image's files were given
  std::optional<BlockCowTruth> block_cow;  // extent-granular backends, when what the files inherited was given
};

// Measures snapshot `key` of `sn` after its workload: its usage and, when `lower` (the image's
// files) is given, the ground truth of its copy-ups by how the backend copies on write —
// files with an origin in the writable dir (kFile; with caps.copies_up_before_delete also the
// lower files it deleted, deleted_copyups()), none (kExtent: no file is copied whole;
// kTree: everything was copied at prepare). Block CoW: for kExtent with `inherited` (the
// writable tree's lower files before the workload, inherited_extents()), extent_cow() of the
// writable dir; 0 for kFile and kTree, which copy whole files or the whole tree. `mounts` are the snapshot's mounts (where the
// writable dir is); they are not needed without `lower`.
SnapshotMeasure measure_snapshot(snap::Snapshotter& sn, const snap::Capabilities& caps, const std::string& key,
                                 const std::vector<Mount>& mounts, const LowerFiles* lower,
                                 const InheritedExtents* inherited = nullptr);

// Puts a measure into a run: disk figures, and ground truth when it has one.
void apply_measure(const SnapshotMeasure& m, rep::Run& run);

// The workload's own figures: operations, their latencies, digest, exit status, extras; a
// command that exited non-zero fails the run.
void fill_outcome(const wl::Outcome& o, rep::Run& run);

// A failed run on a FUSE mount that saw ENOTCONN, or a process killed by SIGBUS (pages of a
// mapped file that can no longer be read), lost its daemon: says so in run.error.
void explain_dead_fuse_daemon(const std::vector<Mount>& mounts, const std::string& backend, rep::Run& run);

}  // namespace cowbench
