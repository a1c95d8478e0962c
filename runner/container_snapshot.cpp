// A container's snapshot and mount point, made and removed together (see container_snapshot.h).
#include "runner/container_snapshot.h"

#include <utility>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "snapshotters/snapshot_keys.h"
#include "snapshotters/snapshotter.h"

namespace cowbench {

ContainerSnapshot::ContainerSnapshot(snap::Snapshotter& sn, const std::string& parent, const std::string& containers_dir)
    : sn_(&sn), key_(snap::mint_key(snap::KeyKind::kContainer)), rootfs_(path_join(containers_dir, key_)) {
  make_dirs(rootfs_);
  int64_t t0 = monotonic_ns();
  try {
    mounts_ = sn.prepare(key_, parent);
  } catch (...) {
    remove_tree(rootfs_);
    throw;
  }
  prepare_ns_ = monotonic_ns() - t0;
  live_ = true;
}

ContainerSnapshot::ContainerSnapshot(ContainerSnapshot&& o) noexcept
    : sn_(o.sn_),
      key_(std::move(o.key_)),
      rootfs_(std::move(o.rootfs_)),
      mounts_(std::move(o.mounts_)),
      prepare_ns_(o.prepare_ns_),
      live_(std::exchange(o.live_, false)) {}

ContainerSnapshot& ContainerSnapshot::operator=(ContainerSnapshot&& o) noexcept {
  if (this != &o) {
    remove_noexcept();
    sn_ = o.sn_;
    key_ = std::move(o.key_);
    rootfs_ = std::move(o.rootfs_);
    mounts_ = std::move(o.mounts_);
    prepare_ns_ = o.prepare_ns_;
    live_ = std::exchange(o.live_, false);
  }
  return *this;
}

ContainerSnapshot::~ContainerSnapshot() { remove_noexcept(); }

void ContainerSnapshot::remove() {
  if (!live_) return;
  sn_->remove(key_);
  live_ = false;
  remove_tree(rootfs_);
}

void ContainerSnapshot::remove_noexcept() noexcept {
  try {
    remove();
  } catch (const std::exception& e) {
    log::warn("removing container {}: {}", key_, e.what());
    live_ = false;
  }
}

}  // namespace cowbench
