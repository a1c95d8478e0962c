// The overlayfs backend (see overlayfs_snapshotter.h).
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"

#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/text.h"
#include "snapshotters/overlay_layout.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

constexpr const char* kOverlayfsName = "overlayfs";

// The overlay layout (overlay_layout.h) mounted by the kernel's overlay filesystem.
class OverlayfsSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  OverlayfsSnapshotter(const std::string& root, const BackendOptions& options)
      : OverlayLayoutSnapshotter(kOverlayfsName, root, probe_overlayfs),
        mount_options_(overlay_mount_options(options)),
        view_options_(lower_layer_options(mount_options_)) {
    // Options the kernel refuses fail here, naming the option, not at the first mount.
    if (options.empty()) return;
    Availability a = try_overlayfs_options(root, options);
    if (!a.available) fail(Errc::kInvalidInput, "overlayfs at {}: {}", root, a.reason);
  }

  std::string_view backend() const noexcept override { return kOverlayfsName; }

 protected:
  Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string& work) const override {
    // A view has only lower layers: the kernel makes the overlay read-only. It still needs the
    // options that decide how those layers read (metacopy files, redirected directories that
    // this row's writable mounts left in them).
    if (upper.empty()) {
      Mount m{"overlay", "overlay", {"lowerdir=" + lowers}};
      m.options.insert(m.options.end(), view_options_.begin(), view_options_.end());
      return m;
    }
    Mount m{"overlay", "overlay", {"workdir=" + work, "upperdir=" + upper, "lowerdir=" + lowers}};
    m.options.insert(m.options.end(), mount_options_.begin(), mount_options_.end());
    return m;
  }

 private:
  std::vector<std::string> mount_options_;
  std::vector<std::string> view_options_;
};

// A trial mount with copy-up under `workdir`, with `extra` overlay options.
Availability trial_with(const std::string& workdir, const std::vector<std::string>& extra) {
  return trial_copy_up(workdir, kOverlayfsName, "overlay", [&](const std::string& lower, const std::string& upper, const std::string& work) {
    Mount m{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}};
    m.options.insert(m.options.end(), extra.begin(), extra.end());
    return m;
  });
}

}  // namespace

std::vector<std::string> overlay_mount_options(const BackendOptions& options) {
  check_options(builtin_registry().get(kOverlayfsName), options);
  std::vector<std::string> out;
  for (const auto& [k, v] : options) {
    if (k == "volatile") {
      if (v != "on" && v != "off") fail(Errc::kInvalidInput, "overlayfs option volatile takes on|off, not '{}'", v);
      if (v == "on") out.push_back("volatile");
      continue;
    }
    if (v.empty() || v.find_first_of(",:") != std::string::npos)
      fail(Errc::kInvalidInput, "overlayfs option {} has a bad value '{}'", k, v);
    out.push_back(k + "=" + v);
  }
  return out;
}

Availability probe_overlayfs(const std::string& workdir) { return trial_with(workdir, {}); }

Availability try_overlayfs_options(const std::string& workdir, const BackendOptions& options) {
  std::vector<std::string> all;
  try {
    all = overlay_mount_options(options);
  } catch (const Error& e) {
    return {false, e.what()};
  }
  Availability a = trial_with(workdir, all);
  if (a.available) return {true, fmt::format("{} with {}", a.reason, join(all, ","))};
  // Which option: each alone, then the set (options that conflict only together).
  for (const auto& [k, v] : options) {
    Availability one = trial_with(workdir, overlay_mount_options({{k, v}}));
    if (!one.available) return {false, fmt::format("the kernel refuses overlay option {}={}: {}", k, v, one.reason)};
  }
  // Conflicts are logged to the kernel log, not to the mount's context: say where to look.
  bool said = a.reason.find("(kernel:") != std::string::npos;
  return {false, fmt::format("the kernel refuses overlay options {} together: {}{}", join(all, ","), a.reason,
                             said ? "" : " (overlayfs logs why in the kernel log: dmesg)")};
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
  spec.try_options = try_overlayfs_options;
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    overlay_mount_options(options);  // unknown options and bad syntax: before anything is created
    return std::make_unique<OverlayfsSnapshotter>(root, options);
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
