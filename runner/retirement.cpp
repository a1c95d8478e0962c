// The clean-up policy of finished containers (see retirement.h).
#include "runner/retirement.h"

#include <sys/statvfs.h>

#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

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
  // A few at a time: deleting a tree mostly waits for the file system (its journal, discards),
  // so four deletes side by side took half the time of one after another (copy's image trees
  // on ext4: 2.6 s for four against 1.3 s each), and the scratch XFS and btrfs delete apart.
  std::mutex mu;
  auto worker = [&] {
    for (;;) {
      std::optional<ContainerSnapshot> c;
      {
        std::lock_guard lock(mu);
        if (kept_.empty()) return;
        c.emplace(std::move(kept_.back()));  // newest first
        kept_.pop_back();
      }
      c.reset();  // its destructor removes it, logging failures
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    try {
      threads.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // no thread to spare: the others (or this one, below) take the rest
    }
  }
  worker();
  for (auto& t : threads) t.join();
  return n;
}

}  // namespace cowbench
