// The overlayfs backend (see overlayfs_snapshotter.h).
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"

#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/text.h"
#include "snapshotters/overlay_layout.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/scratch_fs.h"

namespace cowbench::snap {
namespace {

constexpr const char* kOverlayfsName = "overlayfs";

// The options that choose and shape a scratch file system for the layers (not for the kernel).
bool is_scratch_option(const std::string& k) {
  return k == "fs" || k == "size" || k == "cache" || k == "mkfs" || k == "loop";
}

// The overlay layout (overlay_layout.h) mounted by the kernel's overlay filesystem; with a
// scratch file system (option fs) its lower layers and uppers all live on it.
class OverlayfsSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  // `scratch` (may be null): the file system the layers live on, its store directory the root.
  OverlayfsSnapshotter(const std::string& root, const BackendOptions& options, std::unique_ptr<ScratchFs> scratch)
      : OverlayLayoutSnapshotter(kOverlayfsName, scratch ? scratch->path() : root, probe_overlayfs),
        mount_options_(overlay_mount_options(options)),
        view_options_(lower_layer_options(mount_options_)),
        scratch_(std::move(scratch)) {
    // Options the kernel refuses fail here, naming the option, not at the first mount.
    if (mount_options_.empty()) return;
    Availability a = try_overlayfs_options(scratch_ ? scratch_->path() : root, options);
    if (!a.available) fail(Errc::kInvalidInput, "overlayfs at {}: {}", root, a.reason);
  }

  std::string_view backend() const noexcept override { return kOverlayfsName; }
  void quiesce() override {
    if (scratch_) scratch_->quiesce();
  }
  StorageInfo storage() const override { return scratch_ ? scratch_->storage() : StorageInfo{}; }

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

  void close_storage() override {
    if (scratch_) scratch_->close();
  }

 private:
  std::vector<std::string> mount_options_;
  std::vector<std::string> view_options_;
  std::unique_ptr<ScratchFs> scratch_;
};

// A trial mount with copy-up under `workdir`, with `extra` overlay options.
Availability trial_with(const std::string& workdir, const std::vector<std::string>& extra) {
  return trial_copy_up(workdir, kOverlayfsName, "overlay", [&](const std::string& lower, const std::string& upper, const std::string& work) {
    Mount m{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}};
    m.options.insert(m.options.end(), extra.begin(), extra.end());
    return m;
  });
}

// What the layers need from a file system of type `fs`: to be one, and to clone (so that a
// copy-up is a clone).
FsTrial cloning_fs_trial(const std::string& fs) {
  return [fs](const std::string& dir) -> std::optional<std::string> {
    std::string type = fs_type_name_or(dir);
    if (type != fs) return fmt::format("it is {}, not {}", type, fs);
    return reflink_trial(dir);
  };
}

// The scratch file system the options ask for, or null for the work directory's own.
std::unique_ptr<ScratchFs> open_scratch(const std::string& root, const BackendOptions& options) {
  auto fs = options.find("fs");
  if (fs == options.end()) {
    for (const auto& [k, v] : options)
      if (is_scratch_option(k)) fail(Errc::kInvalidInput, "overlayfs option {} needs fs=xfs|btrfs", k);
    return nullptr;
  }
  BackendOptions scratch_options;
  for (const auto& [k, v] : options)
    if (is_scratch_option(k)) scratch_options.emplace(k, v);
  ScratchFsOptions o = parse_scratch_options(kOverlayfsName, scratch_options, fs->second);
  o.trial = cloning_fs_trial(o.fs_type);
  try {
    return std::make_unique<ScratchFs>(root, std::move(o));
  } catch (const Error& e) {
    if (e.code() != Errc::kUnsupported) throw;
    fail(Errc::kUnsupported, "overlayfs with fs={} is unavailable here: {}", fs->second, e.what());
  }
}

}  // namespace

std::vector<std::string> overlay_mount_options(const BackendOptions& options) {
  check_options(builtin_registry().get(kOverlayfsName), options);
  std::vector<std::string> out;
  for (const auto& [k, v] : options) {
    if (is_scratch_option(k)) continue;
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
    if (is_scratch_option(k)) continue;
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
  spec.description = "kernel overlay filesystem: parents as lower layers, whole-file copy-up on first write "
                     "(a clone on XFS/btrfs: fs=xfs|btrfs)";
  spec.caps = Capabilities{Granularity::kFile, true, true,
                           "the overlay filesystem and CAP_SYS_ADMIN; with fs=: loop devices and mkfs.xfs/mkfs.btrfs"};
  spec.options = {
      {"metacopy", "on|off", "copy up metadata only on chmod/chown/utimes (overlay metacopy=)"},
      {"index", "on|off", "inode index: keeps hard links intact on copy-up (overlay index=)"},
      {"redirect_dir", "on|off|follow|nofollow", "rename lower directories without copying (overlay redirect_dir=)"},
      {"volatile", "on|off", "skip all syncs of the upper layer (overlay volatile)"},
      {"fs", "xfs|btrfs",
       "keep the lower layers and the uppers on one XFS (reflink=1) or btrfs, so that a copy-up is a clone: the work "
       "directory's own when it is one and clones, else a scratch image on a loop device (default: the work "
       "directory's file system, whatever it is)"},
  };
  for (auto& doc : scratch_option_docs(false)) {
    doc.help += " (with fs=)";
    spec.options.push_back(std::move(doc));
  }
  spec.probe = probe_overlayfs;
  spec.try_options = try_overlayfs_options;
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    overlay_mount_options(options);  // unknown options and bad syntax: before anything is created
    std::unique_ptr<ScratchFs> scratch = open_scratch(root, options);
    return std::make_unique<OverlayfsSnapshotter>(root, options, std::move(scratch));
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
