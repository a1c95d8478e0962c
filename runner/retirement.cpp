// The clean-up policy of finished containers (see retirement.h).
#include "runner/retirement.h"

#include <sys/statvfs.h>

#include "common/log.h"

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
  size_t n = kept_.size();
  while (!kept_.empty()) kept_.pop_back();  // each one's destructor removes it, logging failures
  return n;
}

}  // namespace cowbench
