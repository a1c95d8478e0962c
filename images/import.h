// Imports an image into a snapshotter: one committed snapshot per layer, named by its chain id, cached.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/apply.h"
#include "images/image.h"
#include "snapshotters/snapshotter.h"

namespace cowbench::img {

struct ImportOptions {
  // Ignore (remove and re-import) committed chain snapshots from earlier imports.
  bool fresh = false;
  // Where the temporary mount points of active snapshots are made (an existing directory).
  std::string scratch_dir = "/tmp";
  ApplyOptions apply;
  Limits limits;
};

struct LayerImport {
  std::string digest;    // the blob's digest ("" for legacy docker-archive layers)
  std::string diff_id;
  std::string chain_id;  // the committed snapshot's name (layer_snapshot_name of the layer's chain id)
  bool reused = false;   // it was already committed (cache hit): nothing was read
  int64_t prepare_ns = 0, mount_ns = 0, apply_ns = 0, unmount_ns = 0, commit_ns = 0;
  LayerStats stats;      // zero when reused
  uint64_t skipped_devices = 0;  // device nodes left out by the policy (from the snapshot's labels when reused)
  std::vector<std::string> skipped_device_paths;  // the first few of them
};

struct ImportResult {
  std::string top;       // the top layer's chain id: the parent for containers ("" without layers)
  std::vector<LayerImport> layers;
  int64_t total_ns = 0;
  uint64_t uncompressed_bytes = 0;  // tar bytes applied (0 when everything was reused)
  bool reused = false;              // every layer came from the cache
  uint64_t skipped_devices = 0;     // device nodes the policy left out, all layers
  std::vector<std::string> skipped_device_paths;  // the first few of them (kMaxNamedDevices)
};

// The name of the committed snapshot holding the layer chain `chain_id` applied under the
// device policy: the chain id itself for refuse and skip (a layer refuse accepts has no device
// nodes, so both give the same content), and for allow, which may add device nodes, a digest
// of the chain id and the policy ("sha256:…"), so that the two contents are cached apart.
std::string layer_snapshot_name(const std::string& chain_id, DevicePolicy devices);

// Makes `image`'s layer chain in `sn`: for each layer, when a committed snapshot named
// layer_snapshot_name(chain id, policy) exists (with the expected parent) it is reused;
// otherwise an active snapshot is prepared on the previous one, mounted under
// options.scratch_dir, the layer is applied through the mount (apply_layer), unmounted, and
// committed under that name (labels cowbench.image.diff-id / .layer, and
// .skipped-devices / .skipped-device-paths when the device policy left nodes out, so that a
// reused layer still reports them). Through an overlay mount the kernel records deletions
// as whiteouts and opaque directories in the upper layer; copy/reflink/btrfs backends see
// plain deletions. A failed layer leaves nothing behind (its active snapshot is removed).
// `fresh` first removes the image's existing chain snapshots (kFailedPrecondition if one of
// them has children, e.g. containers or another image on top). Active snapshots left by
// killed imports (key "cowbench-import-<pid>-…" of a dead pid) are removed first.
ImportResult import_image(const Image& image, snap::Snapshotter& sn, const ImportOptions& options = {});

}  // namespace cowbench::img
