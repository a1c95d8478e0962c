// The Snapshotter interface: containerd's snapshot model (keys, names, parents, kinds) in C++.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/mount.h"

namespace cowbench::snap {

// Vocabulary (as in containerd's snapshots package):
//  - An *active* snapshot is writable; it is addressed by its *key*.
//  - A *view* is a read-only active snapshot, also addressed by its key.
//  - A *committed* snapshot is immutable; it is addressed by its *name* and may be the
//    *parent* of other snapshots. Only committed snapshots can be parents.
//  - Keys and names share one namespace: no two snapshots of any kind have the same one.
// Lifecycle: prepare(key, parent) or view(key, parent) → mount → write → unmount →
// commit(name, key) (the key is gone afterwards, the name takes its place) → remove(name).
enum class Kind { kView, kActive, kCommitted };
const char* kind_name(Kind k) noexcept;

using Labels = std::map<std::string, std::string>;

struct Info {
  std::string name;    // the key (active, view) or name (committed)
  std::string parent;  // the committed parent's name; empty for none
  Kind kind = Kind::kActive;
  Labels labels;
  int64_t created_ns = 0;  // CLOCK_REALTIME
  int64_t updated_ns = 0;
};

// What one snapshot holds on its own, not counting its parents.
struct Usage {
  int64_t size = 0;     // bytes allocated to this snapshot alone (exclusive)
  int64_t inodes = 0;   // inodes of this snapshot alone
  int64_t shared = -1;  // bytes still shared with the parent chain; -1 when not measurable
  // A committed layer kept as a file-system image (erofs: LAYER.erofs): the image's size in
  // bytes (its apparent size; `size` is what it allocates). -1 for layers kept as directories.
  int64_t image_bytes = -1;
};

// How much a first write into an inherited file copies.
enum class Granularity {
  kFile,    // the whole file (overlayfs copy-up)
  kExtent,  // the written extents only (reflink, btrfs)
  kTree,    // nothing at write time: prepare copied the whole tree (copy)
};
const char* granularity_name(Granularity g) noexcept;

struct Capabilities {
  Granularity cow_granularity = Granularity::kFile;
  bool shares_page_cache = false;  // containers on one parent share cached pages of it
  bool needs_root = true;
  std::string host_needs;  // what the host must provide, in words
  // A lower file the container deletes is copied up first, then whiteouted (fuse-overlayfs: its
  // unlink brings the node into the upper before it renames it away): a copy-up that the upper
  // no longer shows afterwards.
  bool copies_up_before_delete = false;
  // What an added image (or its container) shares with those already there — the expectation
  // image-family's measurements stand next to: "layer" (identical layers, by chain id), "file
  // content" (identical files in any layer or image), "extent" (blocks cloned from a parent),
  // or "none"; on disk and in the page cache.
  const char* disk_sharing = "layer";
  const char* cache_sharing = "layer";
};

// How a backend's own storage is attached to the host (results.json's host.storage).
struct StorageInfo {
  // /dev/loopN when the backend keeps its snapshots on a file system of its own on a loop
  // device (a scratch XFS or btrfs image); empty when it works on the work directory's own
  // file system.
  std::string loop_device;
  std::string image;     // the image file behind the loop device
  std::string mode;      // the loop device's mode as the kernel uses it: "direct-io" or "buffered"
  std::string fs;        // the file system on the image: "xfs", "btrfs"
  std::string fallback;  // why the device is buffered although direct I/O was asked for; else empty
};
// {"loop_device": null} without a loop device; else loop_device, image, mode, fs (and
// fallback when not empty).
void to_json(nlohmann::json& j, const StorageInfo& s);

// Errors: every method throws cowbench::Error —
//   kNotFound           the key / name / parent does not exist
//   kAlreadyExists      the key / name is taken (by a snapshot of any kind)
//   kFailedPrecondition wrong kind (parent not committed, commit of a view, mounts of a
//                       committed snapshot), remove of a snapshot with children, use after close
//   kInvalidInput       bad update field paths, empty key
//   kFailure            the file system or kernel failed
// A failed call leaves no partial snapshot behind. Implementations are thread-safe;
// walk's callback may call stat.
class Snapshotter {
 public:
  virtual ~Snapshotter() = default;

  // The backend name ("overlayfs", "copy", ...).
  virtual std::string_view backend() const noexcept = 0;

  virtual Info stat(const std::string& key) = 0;

  // Updates labels. fieldpaths: empty or {"labels"} replaces all labels; "labels.K" sets
  // (or, when absent from info, deletes) one label. Any other path is kInvalidInput.
  // info.name selects the snapshot and info.kind must match it. Returns the new Info.
  virtual Info update(const Info& info, const std::vector<std::string>& fieldpaths = {}) = 0;

  // The snapshot's own disk usage (see Usage). Valid for every kind.
  virtual Usage usage(const std::string& key) = 0;
  // The bytes the snapshots `keys` take together, what two of them share counted once. The
  // default sums usage().size, right where each snapshot allocates its own (layer
  // directories); block-sharing backends count the union of their extents.
  virtual int64_t distinct_bytes(const std::vector<std::string>& keys) {
    int64_t n = 0;
    for (const auto& k : keys) n += usage(k).size;
    return n;
  }

  // The mounts of an active snapshot or view. Committed snapshots have none (kFailedPrecondition).
  virtual std::vector<Mount> mounts(const std::string& key) = 0;

  // Creates a writable snapshot `key` on the committed `parent` ("" for an empty one) and
  // returns its mounts. Its root directory is 0755 when it has no parent.
  virtual std::vector<Mount> prepare(const std::string& key, const std::string& parent, const Labels& labels = {}) = 0;

  // Like prepare, but the mounts are read-only and the view can never be committed.
  virtual std::vector<Mount> view(const std::string& key, const std::string& parent, const Labels& labels = {}) = 0;

  // Turns the active snapshot `key` (not mounted any more) into the committed snapshot `name`.
  virtual void commit(const std::string& name, const std::string& key, const Labels& labels = {}) = 0;

  // Removes a snapshot of any kind; kFailedPrecondition while it has children.
  virtual void remove(const std::string& key) = 0;

  // Calls fn for every snapshot (order unspecified) on a copy of the list.
  virtual void walk(const std::function<void(const Info&)>& fn) = 0;

  // Brings a file system the backend owns (a loop-mounted scratch one) to rest — its journal
  // and metadata written back in place — so that earlier work does not spill into the next
  // measurement. sync() alone leaves XFS metadata in the log, to be written back later, at
  // whatever moment the log runs short. A no-op for backends on the host's file systems.
  virtual void quiesce() {}

  // How the backend's storage is attached (see StorageInfo): a backend on a loop-mounted
  // scratch file system names the device, its image and the mode the kernel runs it in.
  // The default, for backends that use the host's file systems: no loop device. Valid after
  // close() too (it describes how the backend ran).
  virtual StorageInfo storage() const { return {}; }

  // Releases the backend's resources (scratch filesystems, daemons); snapshots on disk stay.
  // Later calls fail with kFailedPrecondition; a second close() is a no-op.
  virtual void close() = 0;
};

}  // namespace cowbench::snap
