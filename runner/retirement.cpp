// The clean-up policy of finished containers (see retirement.h).
#include "runner/retirement.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/side_by_side.h"
#include "runner/hygiene.h"

namespace cowbench {

namespace {

uint64_t free_bytes(const std::string& dir) {
  struct statvfs sv {};
  return statvfs(dir.c_str(), &sv) == 0 ? static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize : 0;
}

}  // namespace

std::string Retirement::decide(const std::string& workdir, uint64_t image_bytes, int containers,
                               const std::vector<snap::Granularity>& granularities) {
  constexpr uint64_t kMargin = 2ULL << 30;
  uint64_t need = kMargin, largest = 0;
  for (snap::Granularity g : granularities) {
    uint64_t one = g == snap::Granularity::kTree ? image_bytes + image_bytes / 8 : 64ULL << 20;
    need += static_cast<uint64_t>(containers) * one;
    largest = std::max(largest, one);
  }
  workdir_ = workdir;
  floor_ = kMargin + 4 * largest;
  if (uint64_t avail = free_bytes(workdir); avail < need)
    log::warn("the work directory has {} MiB free, less than the {} MiB that keeping every container until the end "
              "may need: when it is down to {} MiB the kept containers are removed at once and the caches dropped "
              "(the next run of each backend starts colder)",
              avail >> 20, need >> 20, floor_ >> 20);
  return "after the matrix";
}

void Retirement::retire(ContainerSnapshot c) {
  if (!kept_.empty() && free_bytes(workdir_) < floor_) {
    log::warn("the work directory is down to {} MiB free: removing the {} kept containers now, then dropping the "
              "caches (config.cleanup_early_removals)",
              free_bytes(workdir_) >> 20, kept_.size());
    remove_all();
    drop_caches();
    ++early_;
  }
  kept_.push_back(std::move(c));
}

size_t Retirement::remove_all() noexcept {
  std::vector<ContainerSnapshot> all = std::exchange(kept_, {});
  size_t n = all.size();
  // Many at a time: deleting a tree mostly waits for the file system (an ext4 mounted with
  // `discard` and without a journal waits for each file's discard), so deletes side by side
  // take a fraction of the time of one after another. Measured on the 2-core VM (copy's 25
  // and reflink's 25 containers of the default run): 18.8 s with 5 at a time, 13.4 s with 16;
  // the scratch XFS deletes one tree at a time whatever the count (25 trees: 11.5 s either way).
  try {
    // Newest first; a container's destructor removes it and logs a failure.
    side_by_side(n, 16, [&](size_t i) { ContainerSnapshot gone = std::move(all[n - 1 - i]); });
  } catch (...) {  // the destructors throw nothing
  }
  return n;
}

}  // namespace cowbench
