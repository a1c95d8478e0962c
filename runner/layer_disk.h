// What an imported image's committed layers take on disk in one backend (results.json config.images.ROW.layer_bytes / layer_image_bytes).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "snapshotters/snapshotter.h"

namespace cowbench {

// {"layer_bytes": N, "layer_image_bytes": M | null} for the committed chain ending at `top`:
// N is what the layers take together on disk (Snapshotter::distinct_bytes: each layer's own
// directory, or erofs image file, summed; for block-sharing backends the union of the layers'
// extents, what a clone shares with its parent counted once), M the sizes of the layers' image
// files (Usage::image_bytes), null when the backend keeps its layers as directories. Both
// null (with a debug line) when a layer cannot be measured: the run goes on without them.
nlohmann::json layer_disk(snap::Snapshotter& sn, const std::string& top);
// The same over the union of several chains (images sharing layers): each layer once.
nlohmann::json layer_disk(snap::Snapshotter& sn, const std::vector<std::string>& tops);

}  // namespace cowbench
