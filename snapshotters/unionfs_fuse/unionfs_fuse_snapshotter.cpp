// The unionfs-fuse backend (see unionfs_fuse_snapshotter.h).
#include "snapshotters/unionfs_fuse/unionfs_fuse_snapshotter.h"

#include <algorithm>
#include <memory>

#include "common/error.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "snapshotters/fuse_daemon_backend.h"
#include "snapshotters/overlay_layout.h"

namespace cowbench::snap {
namespace {

constexpr const char* kUnionfsFuseName = "unionfs-fuse";

// What every mount asks of the daemon: copy-on-write, the whiteout directory out of listings.
// (It keeps every branch open: mount_fuse starts it with its open-file limit at the hard limit.)
std::vector<std::string> base_options() { return {"cow", "hide_meta_files"}; }

// The overlay layout (overlay_layout.h, no work dirs) served by unionfs-fuse; `options_` go to the daemon.
class UnionfsFuseSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  UnionfsFuseSnapshotter(const std::string& root, std::vector<std::string> options)
      : OverlayLayoutSnapshotter(kUnionfsFuseName, root, probe_unionfs_fuse, /*work_dirs=*/false),
        options_(std::move(options)) {}

  std::string_view backend() const noexcept override { return kUnionfsFuseName; }

 protected:
  Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string&) const override {
    Mount m{kUnionfsFuseType, kUnionfsFuseName, {"lowerdir=" + lowers}};
    // A view: no writable branch, and read-only in the kernel too (EROFS without a round trip).
    m.options.push_back(upper.empty() ? "ro" : "upperdir=" + upper);
    for (auto& o : base_options()) {
      // An option given by the user replaces the default of the same name.
      std::string key = o.substr(0, o.find('='));
      bool overridden = std::any_of(options_.begin(), options_.end(),
                                    [&](const std::string& u) { return u.substr(0, u.find('=')) == key; });
      if (!overridden) m.options.push_back(o);
    }
    m.options.insert(m.options.end(), options_.begin(), options_.end());
    return m;
  }

 private:
  std::vector<std::string> options_;
};

using Form = DaemonOptionForm;

// The unionfs-fuse 1.0 and libfuse 2.9 options that matter for benchmarks.
constexpr DaemonOption kOptions[] = {
    {"max_files", Form::kCount, "the daemon's limit of open files (default: this process's hard limit; it keeps every branch open, plus the container's open files); more than the hard limit needs CAP_SYS_RESOURCE"},
    {"statfs_omit_ro", Form::kFlag, "statfs (df) counts the writable branch's blocks only, not the read-only branches'"},
    {"direct_io", Form::kFlag, "libfuse: file data bypasses the page cache, every read and write goes to the daemon"},
    {"kernel_cache", Form::kFlag, "libfuse: cached file data is kept across opens (default: dropped at every open)"},
    {"attr_timeout", Form::kSeconds, "libfuse: how long the kernel caches attributes (default 1)"},
    {"entry_timeout", Form::kSeconds, "libfuse: how long the kernel caches name lookups (default 1)"},
    {"negative_timeout", Form::kSeconds, "libfuse: how long the kernel caches failed lookups (default 0)"},
};

Mount trial_mount(const std::string& lower, const std::string& upper, const std::string&) {
  std::vector<std::string> opts{"lowerdir=" + lower, "upperdir=" + upper};
  for (auto& o : base_options()) opts.push_back(o);
  return Mount{kUnionfsFuseType, kUnionfsFuseName, opts};
}

}  // namespace

Availability probe_unionfs_fuse(const std::string& workdir) {
  return probe_fuse_daemon(workdir, kUnionfsFuseName, unionfs_fuse_binary, trial_mount);
}

void register_unionfs_fuse(Registry& registry) {
  BackendSpec spec;
  spec.name = kUnionfsFuseName;
  spec.description =
      "unionfs-fuse, the classic UnionFS model in a FUSE daemon per mount: parents as read-only branches under one "
      "writable branch, whole-file copy-on-write, whiteouts in <branch>/.unionfs-fuse";
  // Page cache: each mount caches file data in its own FUSE inodes, above the lower file
  // system's cache, and libfuse drops it at every open unless kernel_cache=on: containers on
  // one parent share none of it. Deleting a lower file only whiteouts it: no copy first.
  spec.caps = Capabilities{Granularity::kFile, false, true, "the unionfs-fuse program (libfuse 2) and /dev/fuse", false};
  spec.options = daemon_option_docs(kOptions);
  // The slowest backend (five times overlayfs's startup) and not in the first round's five:
  // `--backends unionfs-fuse` or `--backends all`.
  spec.in_default = false;
  spec.probe = probe_unionfs_fuse;
  spec.create = fuse_daemon_create(kUnionfsFuseName, kOptions, unionfs_fuse_binary,
                                   [](const std::string& root, std::vector<std::string> daemon) {
                                     if (root.find('=') != std::string::npos)
                                       fail(Errc::kInvalidInput, "{}: root {} must not contain '=' (unionfs-fuse's branch syntax)",
                                            kUnionfsFuseName, root);
                                     return std::make_unique<UnionfsFuseSnapshotter>(root, std::move(daemon));
                                   });
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
