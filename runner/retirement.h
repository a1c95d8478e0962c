// When finished containers are removed: right after their run, or all at the end of the matrix.
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
// perf: recently_deleted() took 40 % of the CPU of pkg-install). So containers are removed
// after the matrix when the work directory has room for all of them, and right away when it
// has not.
class Retirement {
 public:
  // Decides the policy for `containers` containers per backend of an image of `image_bytes`
  // on backends of `granularities` in `workdir`: deferred when the work directory has room
  // for every container (a full tree copy's at the image's size, the others' writes with a
  // generous allowance). Warns when it has not. Returns what results.json's config.cleanup says.
  std::string decide(const std::string& workdir, uint64_t image_bytes, int containers,
                     const std::vector<snap::Granularity>& granularities);
  bool deferred() const { return defer_; }

  // Hands a finished container over: removed now (failures thrown) or kept until remove_all().
  void retire(ContainerSnapshot c);
  // Removes the kept containers, newest first, many side by side; failures are logged.
  // Returns how many it removed.
  size_t remove_all() noexcept;
  size_t kept() const { return kept_.size(); }

 private:
  bool defer_ = false;
  std::vector<ContainerSnapshot> kept_;
};

}  // namespace cowbench
