// The regular files of an imported image, listed through a read-only view of its top snapshot.
#pragma once

#include <string>

#include "snapshotters/snapshotter.h"
#include "workloads/workload.h"

namespace cowbench {

// The regular files of committed snapshot `top`'s merged view, sorted by path (/proc, /sys and
// /dev left out). Mounts a view (key KeyKind::kListing) on a temporary directory under
// `scratch`, and removes both.
wl::FileList list_image_files(snap::Snapshotter& sn, const std::string& top, const std::string& scratch);

}  // namespace cowbench
