// The fuse-overlayfs backend (see fuse_overlayfs_snapshotter.h).
#include "snapshotters/fuse_overlayfs/fuse_overlayfs_snapshotter.h"

#include <memory>

#include "common/error.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "snapshotters/fuse_daemon_backend.h"
#include "snapshotters/overlay_layout.h"

namespace cowbench::snap {
namespace {

constexpr const char* kFuseOverlayfsName = "fuse-overlayfs";

// The overlay layout (overlay_layout.h) served by fuse-overlayfs; `options_` go to the daemon.
class FuseOverlayfsSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  FuseOverlayfsSnapshotter(const std::string& root, std::vector<std::string> options)
      : OverlayLayoutSnapshotter(kFuseOverlayfsName, root, probe_fuse_overlayfs), options_(std::move(options)) {}

  std::string_view backend() const noexcept override { return kFuseOverlayfsName; }

 protected:
  Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string& work) const override {
    Mount m{kFuseOverlayfsType, "fuse-overlayfs", {"lowerdir=" + lowers}};
    if (upper.empty()) {
      // A view: no upper layer, and read-only in the kernel too (EROFS without a round trip).
      m.options.push_back("ro");
    } else {
      m.options.push_back("upperdir=" + upper);
      m.options.push_back("workdir=" + work);
    }
    m.options.insert(m.options.end(), options_.begin(), options_.end());
    return m;
  }

 private:
  std::vector<std::string> options_;
};

using Form = DaemonOptionForm;

// The fuse-overlayfs (1.10) options that matter for benchmarks.
constexpr DaemonOption kOptions[] = {
    {"fsync", Form::kBit, "1 (default): fsync and fdatasync reach the upper layer; 0: they return at once"},
    {"writeback", Form::kBit, "1 (default): the kernel's FUSE writeback cache buffers writes; 0: every write goes to the daemon"},
    {"threaded", Form::kBit, "1: the daemon serves requests from several threads; 0 (default): from one"},
    {"timeout", Form::kSeconds, "how long the kernel caches lookups and attributes (default: practically forever; 0: every lookup asks the daemon)"},
    {"fast_ino", Form::kBit, "1: loading a directory skips the search of the layers below for each entry's original inode (600 layers: first use 3.2 s → 0.1 s here); 0 (default)"},
    {"noacl", Form::kFlag, "no POSIX ACL support"},
    {"static_nlink", Form::kFlag, "every directory reports st_nlink 1 instead of counting its subdirectories"},
    {"squash_to_root", Form::kFlag, "every file shows as owned by root (ownership is lost)"},
};

}  // namespace

Availability probe_fuse_overlayfs(const std::string& workdir) {
  return probe_fuse_daemon(workdir, kFuseOverlayfsName, fuse_overlayfs_binary,
                           [](const std::string& lower, const std::string& upper, const std::string& work) {
                             return Mount{kFuseOverlayfsType, "fuse-overlayfs",
                                          {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}};
                           });
}

void register_fuse_overlayfs(Registry& registry) {
  BackendSpec spec;
  spec.name = kFuseOverlayfsName;
  spec.description =
      "fuse-overlayfs, a FUSE daemon per mount: parents as lower layers, whole-file copy-up on first write";
  // Page cache: every mount caches file data in its own FUSE inodes on top of the lower
  // file system's cache, so containers on one parent do not share cached pages (64 MiB
  // read through two mounts: 64 MiB cached for the lower file plus 64 MiB per mount).
  spec.caps = Capabilities{Granularity::kFile, false, true, "the fuse-overlayfs program and /dev/fuse", true};
  spec.options = daemon_option_docs(kOptions);
  spec.probe = probe_fuse_overlayfs;
  spec.create = fuse_daemon_create(kFuseOverlayfsName, kOptions, fuse_overlayfs_binary,
                                   [](const std::string& root, std::vector<std::string> daemon) {
                                     return std::make_unique<FuseOverlayfsSnapshotter>(root, std::move(daemon));
                                   });
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
