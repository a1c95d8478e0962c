// Scratch file systems: an XFS (reflink=1) or btrfs on a loop-mounted image, for backends whose root's file system cannot serve them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/loop.h"
#include "common/mount.h"
#include "snapshotters/registry.h"
#include "snapshotters/store_snapshotter.h"

namespace cowbench::snap {

// Why the file system holding directory `dir` cannot serve a backend (found by a real trial:
// a clone, a subvolume), or nullopt when it can.
using FsTrial = std::function<std::optional<std::string>(const std::string& dir)>;

// The default apparent size of a scratch image: sparse, so it costs only what is written.
constexpr uint64_t kDefaultScratchSize = uint64_t{8} << 30;

struct ScratchFsOptions {
  std::string fs_type = "xfs";  // the file system to make: "xfs" (with reflink=1) or "btrfs"
  uint64_t size = kDefaultScratchSize;
  // Keep the image at close and mount it again (committed snapshots intact) at the next
  // open; off: a stale image is formatted afresh and the image is deleted at close.
  bool cache = true;
  std::string mkfs;  // the mkfs program; empty: mkfs.<fs_type> from PATH, /sbin, /usr/sbin
  FsTrial trial;     // what the backend needs from a file system
  // How the loop device reaches the image: direct I/O (where the work directory's file system
  // allows it; else buffered, with a warning) or buffered, for comparison (see LoopMode).
  LoopMode loop_mode = LoopMode::kDirectIo;
};

// The directory a backend keeps its snapshots in, ROOT/store, on a file system that passes
// options.trial:
//  - ROOT's own file system, when the trial passes there;
//  - otherwise the image ROOT/cache.<fs_type>.img (an earlier run's, when there and cache is
//    on; else a new sparse file formatted with mkfs, its sectors no smaller than the loop
//    device's logical block size), attached to a loop device (autoclear, in
//    options.loop_mode) and mounted on ROOT/store.
// Errors: kUnsupported when the host lacks something (loop devices, the mkfs program, the
// file system in the kernel) or the scratch file system fails the trial; kFailure when mkfs
// or a mount fails; kFailedPrecondition when ROOT/store is mounted already (another process,
// or a killed run: `cowbench gc`). On error nothing stays mounted or attached, and an image
// made by the failed call is deleted.
class ScratchFs {
 public:
  ScratchFs(const std::string& root, ScratchFsOptions options);
  ScratchFs(const ScratchFs&) = delete;
  ScratchFs& operator=(const ScratchFs&) = delete;
  ~ScratchFs();

  // ROOT/store: where the backend keeps its snapshots (its StoreSnapshotter root).
  const std::string& path() const noexcept { return path_; }
  // The image file (empty when ROOT's own file system serves).
  const std::string& image() const noexcept { return image_; }
  // True when an earlier run's image was mounted again rather than made.
  bool reused() const noexcept { return reused_; }
  // The type of ROOT's own file system ("ext4", "xfs", ...).
  const std::string& host_fs() const noexcept { return host_fs_; }
  // The loop device, image, mode and file system (no loop device when ROOT's own file system
  // serves); after close(), how it was attached.
  StorageInfo storage() const { return storage_; }

  // Freezes and thaws the scratch file system (FIFREEZE, FITHAW): its log and dirty metadata
  // are written back. A no-op when ROOT's own file system serves (it is not ours to freeze)
  // or once closed; a file system that cannot be frozen is left as it is (logged once).
  void quiesce();

  // Unmounts and detaches the image (trimmed first so that freed blocks leave the image
  // file; deleted unless cached). A second call is a no-op; throws on failure (the
  // destructor only logs). Snapshots still mounted elsewhere keep the loop device busy
  // until they are unmounted (autoclear detaches it then).
  void close();

 private:
  void make_image();
  void attach_and_mount();
  void teardown() noexcept;

  std::string root_, path_, image_;
  ScratchFsOptions options_;
  std::string host_fs_;
  bool reused_ = false;
  bool closed_ = false;
  bool cannot_freeze_ = false;
  StorageInfo storage_;
  std::unique_ptr<LoopDevice> loop_;
  ScopedMount mount_;
};

// A StoreSnapshotter kept on a ScratchFs (its root is the scratch's store directory), for
// backends whose snapshots are whole trees at snapshots/<id>/fs sharing data extents with
// their parent's: mounts are binds of that tree (read-only for views), usage counts its
// exclusive and shared extents (FIEMAP), quiesce() freezes and thaws the scratch file system,
// close() releases it.
// Derived constructors call recover().
class ScratchStoreSnapshotter : public StoreSnapshotter {
 public:
  void quiesce() override { scratch_->quiesce(); }
  StorageInfo storage() const override { return scratch_->storage(); }

 protected:
  explicit ScratchStoreSnapshotter(std::unique_ptr<ScratchFs> scratch);

  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) override;
  Usage usage_of(const Record& r, const std::vector<Record>& parents) override;
  int64_t distinct_of(const std::vector<Record>& rs) override;  // the union of their extents
  void close_storage() override;

 private:
  std::unique_ptr<ScratchFs> scratch_;
};

// What makes one scratch-backed backend; scratch_backend_spec turns it into a BackendSpec
// with extent CoW granularity, no shared page cache, root needed, the scratch options
// (size, cache, mkfs, loop; plus `fs` when fs_choice), a probe (probe_scratch) and a factory that opens the ScratchFs
// and hands it to `open`.
struct ScratchBackend {
  std::string name;
  std::string description;
  std::string host_needs;
  std::string default_fs;  // "xfs" or "btrfs"
  bool fs_choice = false;  // whether the `fs` option picks another scratch file system
  FsTrial trial;
  std::function<std::unique_ptr<Snapshotter>(std::unique_ptr<ScratchFs>)> open;
};
BackendSpec scratch_backend_spec(ScratchBackend backend);

// The documented scratch options: fs (when fs_choice; its help says the reflink/btrfs meaning),
// size, cache, mkfs, loop. For backends that offer a scratch file system as an option.
std::vector<OptionDoc> scratch_option_docs(bool fs_choice);

// Reads the scratch options (fs, size, cache, mkfs, loop) out of `options` into
// ScratchFsOptions (fs_type = default_fs unless `fs` is given; other keys are ignored, the
// caller checks them). Throws kInvalidInput naming `backend` for a bad value (an fs other than
// xfs or btrfs, a bad size, ...). The trial is left empty.
ScratchFsOptions parse_scratch_options(const std::string& backend, const BackendOptions& options,
                                       const std::string& default_fs);

// Parses a size: a number of bytes with an optional K, M, G or T suffix (powers of 1024,
// "KiB"/"KB" spellings accepted). Throws kInvalidInput naming `what`.
uint64_t parse_size(const std::string& text, const std::string& what);

}  // namespace cowbench::snap
