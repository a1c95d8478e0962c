// When finished containers are removed: at the end of the matrix, or all at once earlier when the work directory runs low.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runner/container_snapshot.h"
#include "snapshotters/snapshotter.h"

namespace cowbench {

// Deleting a container's tree between measurements disturbs the next ones: on ext4 without a
// journal (this project's development machines) every inode deleted in the last minute or
// more is skipped, one by one, when the next file is created, so file creation gets slower
// run after run while the copy backend deletes a whole image tree per container (seen with
// perf: recently_deleted() took 40 % of the CPU of pkg-install; a --ci run that removed its
// containers after each run measured overlayfs pkg-install 8× slower than a default run). So
// containers are kept until the end of the matrix. When the work directory runs low meanwhile
// (less free than a margin of 2 GiB and four containers' worth), every kept container is
// removed at once, and the caches are written back and dropped, which ends the wake of that
// deletion (hygiene.h) at the price of one colder run per backend.
class Retirement {
 public:
  // Sets the low-space floor for containers of an image of `image_bytes` on backends of
  // `granularities` in `workdir` (a full tree copy needs the image's size, the others' writes a
  // generous allowance) and warns when `containers` containers per backend may not fit, i.e.
  // when they will probably be removed early. Returns what results.json's config.cleanup says.
  std::string decide(const std::string& workdir, uint64_t image_bytes, int containers,
                     const std::vector<snap::Granularity>& granularities);
  // Hands a finished container over, kept until remove_all(); when the work directory has
  // fallen below the floor, every kept container is removed first and the caches dropped.
  void retire(ContainerSnapshot c);
  // How often the kept containers were removed early for want of space.
  int early_removals() const { return early_; }
  // Removes the kept containers, newest first, many side by side; failures are logged.
  // Returns how many it removed.
  size_t remove_all() noexcept;
  size_t kept() const { return kept_.size(); }

 private:
  std::string workdir_;
  uint64_t floor_ = 0;  // free bytes under which the kept containers go early
  int early_ = 0;
  std::vector<ContainerSnapshot> kept_;
};

}  // namespace cowbench
