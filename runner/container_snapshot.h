// A container's writable snapshot and its mount point, prepared together and removed together (RAII).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/mount.h"

namespace cowbench {

namespace snap {
class Snapshotter;
}

class ContainerSnapshot {
 public:
  // Makes the mount point <containers_dir>/<key> and prepares the snapshot <key> (a new
  // container key, snapshot_keys.h) on `parent`, timing the prepare. Throws; leaves nothing
  // behind when it does.
  ContainerSnapshot(snap::Snapshotter& sn, const std::string& parent, const std::string& containers_dir);
  ContainerSnapshot(ContainerSnapshot&& o) noexcept;
  ContainerSnapshot& operator=(ContainerSnapshot&& o) noexcept;
  ContainerSnapshot(const ContainerSnapshot&) = delete;
  ContainerSnapshot& operator=(const ContainerSnapshot&) = delete;
  // Removes the snapshot and the mount point if remove() did not; failures are logged.
  ~ContainerSnapshot();

  snap::Snapshotter& snapshotter() const { return *sn_; }
  const std::string& key() const { return key_; }
  const std::string& rootfs() const { return rootfs_; }      // the (unmounted) mount point
  const std::vector<Mount>& mounts() const { return mounts_; }  // what prepare returned
  int64_t prepare_ns() const { return prepare_ns_; }

  // Removes the snapshot, then the mount point. Throws on failure (and the destructor tries
  // again); a second call does nothing.
  void remove();

 private:
  void remove_noexcept() noexcept;

  snap::Snapshotter* sn_ = nullptr;
  std::string key_, rootfs_;
  std::vector<Mount> mounts_;
  int64_t prepare_ns_ = 0;
  bool live_ = false;
};

}  // namespace cowbench
