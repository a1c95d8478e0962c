// A run's figures from its snapshot and its outcome (see run_metrics.h).
#include "runner/run_metrics.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "common/fuse_mount.h"

namespace cowbench {

SnapshotMeasure measure_snapshot(snap::Snapshotter& sn, const snap::Capabilities& caps, const std::string& key,
                                 const std::vector<Mount>& mounts, const LowerFiles* lower,
                                 const InheritedExtents* inherited) {
  SnapshotMeasure m;
  snap::Usage u = sn.usage(key);
  m.upper_bytes = u.size;
  m.shared_bytes = u.shared;
  if (!lower) return m;
  switch (caps.cow_granularity) {
    case snap::Granularity::kFile:
      m.truth = file_copyups(writable_dir(mounts), *lower, lower_dirs(mounts), unionfs_meta_dir(mounts));
      if (caps.copies_up_before_delete) add(*m.truth, deleted_copyups(writable_dir(mounts), *lower));
      m.block_cow = BlockCowTruth{};  // whole files are copied: no block of a lower file is CoW'd
      break;
    case snap::Granularity::kExtent:
      m.truth = CopyupTruth{0, 0};  // no file is copied whole: block CoW instead
      if (inherited) m.block_cow = extent_cow(writable_dir(mounts), *inherited);
      break;
    case snap::Granularity::kTree:
      m.truth = CopyupTruth{0, 0};  // nothing is copied at write time
      m.block_cow = BlockCowTruth{};
      break;
  }
  return m;
}

void apply_measure(const SnapshotMeasure& m, rep::Run& run) {
  run.upper_bytes = m.upper_bytes;
  run.shared_bytes = m.shared_bytes;
  if (m.truth) {
    run.truth_copyups = m.truth->files;
    run.truth_copyup_bytes = m.truth->bytes;
    run.truth_copyup_metadata_only = m.truth->metadata_only;
    run.truth_copyups_dropped = m.truth->dropped;
    run.truth_copyup_kinds = kinds_of(*m.truth);
  }
  if (m.block_cow) {
    run.truth_cow_extents = m.block_cow->cow_extents;
    run.truth_cow_bytes = m.block_cow->cow_bytes;
    run.truth_new_bytes = m.block_cow->new_bytes;
  }
}

void fill_outcome(const wl::Outcome& o, rep::Run& run) {
  run.ops_count = o.ops;
  std::vector<int64_t> lat = o.latencies_ns;
  run.op_latency = rep::quantiles(lat);
  run.digest = o.digest;
  run.exit_code = o.exit_code;
  run.stderr_tail = o.stderr_tail;
  run.extra = o.extra;
  if (o.exit_code != 0) {
    run.status = "failed";
    run.error = fmt::format("command exited with status {}", o.exit_code);
  }
}

void explain_dead_fuse_daemon(const std::vector<Mount>& mounts, const std::string& backend, rep::Run& run) {
  if (run.status == "ok") return;
  bool fuse = std::any_of(mounts.begin(), mounts.end(), [](const Mount& m) { return is_fuse_daemon_type(m.type); });
  if (!fuse) return;
  for (std::string_view why : {std::string_view(std::strerror(ENOTCONN)), std::string_view("SIGBUS")})
    if (run.error.find(why) != std::string::npos || run.stderr_tail.find(why) != std::string::npos) {
      run.error += fmt::format(" (the FUSE daemon serving the container's root on {} died)", backend);
      return;
    }
}

}  // namespace cowbench
