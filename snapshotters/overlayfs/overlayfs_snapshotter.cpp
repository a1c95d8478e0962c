// The overlayfs backend (see overlayfs_snapshotter.h).
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"

#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/overlay_layout.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

constexpr const char* kOverlayfsName = "overlayfs";

// The overlay layout (overlay_layout.h) mounted by the kernel's overlay filesystem.
class OverlayfsSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  OverlayfsSnapshotter(const std::string& root, std::vector<std::string> mount_options)
      : OverlayLayoutSnapshotter(kOverlayfsName, root, probe_overlayfs), mount_options_(std::move(mount_options)) {}

  std::string_view backend() const noexcept override { return kOverlayfsName; }

 protected:
  Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string& work) const override {
    // A view has only lower layers: the kernel makes the overlay read-only.
    if (upper.empty()) return Mount{"overlay", "overlay", {"lowerdir=" + lowers}};
    Mount m{"overlay", "overlay", {"workdir=" + work, "upperdir=" + upper, "lowerdir=" + lowers}};
    m.options.insert(m.options.end(), mount_options_.begin(), mount_options_.end());
    return m;
  }

 private:
  std::vector<std::string> mount_options_;
};

}  // namespace

Availability probe_overlayfs(const std::string& workdir) {
  return trial_copy_up(workdir, kOverlayfsName, "overlay", [](const std::string& lower, const std::string& upper, const std::string& work) {
    return Mount{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}};
  });
}

void register_overlayfs(Registry& registry) {
  BackendSpec spec;
  spec.name = kOverlayfsName;
  spec.description = "kernel overlay filesystem: parents as lower layers, whole-file copy-up on first write";
  spec.caps = Capabilities{Granularity::kFile, true, true, "the overlay filesystem and CAP_SYS_ADMIN"};
  spec.options = {
      {"metacopy", "on|off", "copy up metadata only on chmod/chown/utimes (overlay metacopy=)"},
      {"index", "on|off", "inode index: keeps hard links intact on copy-up (overlay index=)"},
      {"redirect_dir", "on|off|follow|nofollow", "rename lower directories without copying (overlay redirect_dir=)"},
      {"volatile", "on|off", "skip all syncs of the upper layer (overlay volatile)"},
  };
  spec.probe = probe_overlayfs;
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    check_options(builtin_registry().get(kOverlayfsName), options);
    std::vector<std::string> mount_options;
    for (const auto& [k, v] : options) {
      if (k == "volatile") {
        if (v != "on" && v != "off") fail(Errc::kInvalidInput, "overlayfs option volatile takes on|off, not '{}'", v);
        if (v == "on") mount_options.push_back("volatile");
        continue;
      }
      if (v.empty() || v.find_first_of(",:") != std::string::npos)
        fail(Errc::kInvalidInput, "overlayfs option {} has a bad value '{}'", k, v);
      mount_options.push_back(k + "=" + v);
    }
    return std::make_unique<OverlayfsSnapshotter>(root, std::move(mount_options));
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
