// `cowbench image pack`: an OCI image layout from tarballs and directories, one layer each, in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/apply.h"
#include "images/layer_reader.h"

namespace cowbench::img {

struct PackOptions {
  // Each a layer, bottom first: a tar file (plain, gzip or zstd; a rootfs tar or a layer
  // tar, whose ".wh." entries stay whiteouts) or a directory (write_dir_layer).
  std::vector<std::string> layers;
  std::string out;    // the OCI layout to create: must not exist or be an empty directory
  std::string tag;    // org.opencontainers.image.ref.name of the image ("" for none)
  Compression compression = Compression::kGzip;  // of the written layers
  DevicePolicy devices = DevicePolicy::kSkip;    // device nodes in the layers
};

struct PackedLayer {
  std::string source;      // as given
  bool directory = false;
  std::string digest, diff_id;
  uint64_t size = 0, uncompressed_size = 0, entries = 0;
  uint64_t skipped_devices = 0;
};

struct PackResult {
  std::string dir;
  std::string manifest_digest;
  std::vector<PackedLayer> layers;
  uint64_t skipped_devices = 0;                   // all layers
  std::vector<std::string> skipped_device_paths;  // the first few (kMaxNamedDevices)
};

// Writes the image. A tar layer is read through LayerReader (so it gets the layer checks:
// paths, sizes, types) and its entries are written again, compressed; a directory is
// packed. The config names this host's platform and a default PATH. The layout is written
// into a temporary directory next to `out` and renamed into place, so a failure leaves
// nothing behind. Errors: kInvalidInput for no layers, a layer that does not exist, is
// neither a file nor a directory, or is not a valid tar, or (kRefuse) a device node;
// kAlreadyExists when `out` exists and is not an empty directory; kInvalidInput when its
// parent directory does not exist.
PackResult pack_image(const PackOptions& options);

}  // namespace cowbench::img
