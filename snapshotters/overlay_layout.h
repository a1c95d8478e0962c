// The overlay layer layout shared by the overlayfs, fuse-overlayfs and unionfs-fuse backends.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "snapshotters/registry.h"
#include "snapshotters/store_snapshotter.h"

namespace cowbench::snap {

// Layout per snapshot: snapshots/<id>/fs is the upper dir (or the whole tree of a parentless
// snapshot), snapshots/<id>/work the work dir of an active snapshot on a parent (for the
// backends that have one: unionfs-fuse works in its writable branch alone). Mounts:
// a parentless snapshot is a bind mount of its fs dir, a view of one parent a read-only
// bind mount of that parent; everything else is the merged mount the backend describes,
// with the committed parents as lower layers, nearest first.
class OverlayLayoutSnapshotter : public StoreSnapshotter {
 protected:
  // `backend` names the backend in errors. Throws kInvalidInput when `root` holds ':' or
  // ',' (they separate layers and options in overlay mount options), kUnsupported with the
  // reason when probe(root) finds the backend unavailable there; then recovers (the layout
  // keeps StoreSnapshotter's remove_storage, so this can run before derived members exist).
  // `work_dirs`: active snapshots on a parent get a work dir.
  OverlayLayoutSnapshotter(const std::string& backend, const std::string& root,
                           const std::function<Availability(const std::string&)>& probe, bool work_dirs = true);

  // The mount that merges `lowers` (nearest first) under `upper` with `work`; `upper` and
  // `work` are empty for a read-only view (`work` names no directory without work dirs).
  virtual Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string& work) const = 0;

  void create_storage(const Record& r, const std::vector<Record>& parents) override;
  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) override;

 private:
  bool work_dirs_;
};

// Describes the merged mount of one lower, one upper and one work directory.
using MergedMountFn = std::function<Mount(const std::string& lower, const std::string& upper, const std::string& work)>;

// The trial behind the overlay-style probes: under `workdir`, mounts describe(lower, upper,
// work), writes through it to a lower file (forcing a copy-up), unmounts and checks that
// the file reached the upper dir. `backend` names the scratch dir, `what` the mount in the
// reason ("trial overlay with copy-up on ext4"). Needs root; leaves nothing behind.
Availability trial_copy_up(const std::string& workdir, const std::string& backend, const std::string& what,
                           const MergedMountFn& describe);

}  // namespace cowbench::snap
