// Applies a layer's tar entries to a directory tree safely (OCI changeset semantics, whiteouts included).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/layer_reader.h"

namespace cowbench::img {

// What to do with character and block device nodes in a layer. Container layers rarely hold
// any (images ship an empty /dev; the runtime populates it), and a device node in a snapshot
// is a way into the host's hardware, so the default refuses them.
enum class DevicePolicy {
  kRefuse,  // the layer is refused with an error naming the entry (default)
  kSkip,    // the entry is skipped and counted in LayerStats::skipped
  kAllow,   // mknod (needs CAP_MKNOD)
};
const char* device_policy_name(DevicePolicy p) noexcept;
// "refuse" | "skip" | "allow"; kInvalidInput otherwise.
DevicePolicy parse_device_policy(const std::string& s);

struct ApplyOptions {
  DevicePolicy devices = DevicePolicy::kRefuse;
  // Give entries their uid/gid from the tar (needs CAP_CHOWN); off: files belong to the caller.
  bool preserve_owners = true;
};

// How many skipped device nodes LayerStats names (the rest are only counted).
inline constexpr size_t kMaxNamedDevices = 8;

struct LayerStats {
  uint64_t entries = 0;
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t specials = 0;     // fifos and (allowed) device nodes
  uint64_t whiteouts = 0;    // ".wh.NAME" entries
  uint64_t opaques = 0;      // ".wh..wh..opq" entries
  uint64_t skipped = 0;      // device nodes skipped by policy, unsupported xattrs
  uint64_t skipped_devices = 0;                    // of those, the device nodes
  std::vector<std::string> skipped_device_paths;   // the first few of them (kMaxNamedDevices)
  uint64_t file_bytes = 0;   // regular file data written
  LayerDigests digests;      // of the blob as read (verified when the reader had expectations)
};

// Applies every entry of `layer` to the directory `root` and then verifies the layer's
// digests (LayerReader::finish). The OCI changeset rules: entries replace what is there
// (a directory over a directory only updates its metadata); ".wh.NAME" deletes NAME from
// the lower content; ".wh..wh..opq" hides all lower content of its directory; entries of
// this layer itself are never hidden by its whiteouts. Missing parents are made (0755).
// Safety: every path is resolved beneath `root` with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) and created with fd-relative calls, so a symlink from this or an
// earlier layer can never lead a write, a hard link or a deletion outside `root`; such an
// entry is refused (kInvalidInput naming layer and entry), as are device nodes unless the
// policy allows them. Applied through an overlay mount, deletions become the kernel's
// whiteouts (0/0 character devices) and opaque directories (trusted.overlay.opaque); on a
// plain tree they are plain deletions. Ownership, modes (setuid included), xattrs
// (user.*, trusted.* except trusted.overlay.*, security.*), hard links, symlinks, fifos and
// nanosecond mtimes are preserved; directory mtimes are set after all their entries. On an
// error `root` holds part of the layer; callers discard it.
LayerStats apply_layer(LayerReader& layer, const std::string& root, const ApplyOptions& options = {});

}  // namespace cowbench::img
