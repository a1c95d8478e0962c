// The clean-up policy of finished containers (see retirement.h).
#include "runner/retirement.h"

#include <sys/statvfs.h>

#include <utility>

#include "common/log.h"
#include "common/side_by_side.h"

namespace cowbench {

std::string Retirement::decide(const std::string& workdir, uint64_t image_bytes, int containers,
                               const std::vector<snap::Granularity>& granularities) {
  uint64_t need = 2ULL << 30;  // margin
  for (snap::Granularity g : granularities)
    need += static_cast<uint64_t>(containers) * (g == snap::Granularity::kTree ? image_bytes + image_bytes / 8 : 64ULL << 20);
  struct statvfs sv {};
  uint64_t avail = statvfs(workdir.c_str(), &sv) == 0 ? static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize : 0;
  defer_ = avail >= need;
  if (!defer_)
    log::warn("the work directory has {} MiB free, less than the {} MiB that keeping every container until the end "
              "needs: containers are removed after each run, which can slow file creation in the next ones",
              avail >> 20, need >> 20);
  return defer_ ? "after the matrix" : "after each run";
}

void Retirement::retire(ContainerSnapshot c) {
  if (defer_) {
    kept_.push_back(std::move(c));
    return;
  }
  c.remove();
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
