// The fuse-overlayfs backend (see fuse_overlayfs_snapshotter.h).
#include "snapshotters/fuse_overlayfs/fuse_overlayfs_snapshotter.h"

#include <memory>
#include <regex>

#include "common/error.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "snapshotters/overlay_layout.h"
#include "snapshotters/probe_util.h"

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

// How a backend option's value is checked and handed to fuse-overlayfs.
enum class Form {
  kBit,      // 0|1 → name=V
  kFlag,     // on|off → name when on
  kSeconds,  // a non-negative decimal number → name=V
};

const char* form_values(Form f) {
  switch (f) {
    case Form::kBit: return "0|1";
    case Form::kFlag: return "on|off";
    case Form::kSeconds: return "SECONDS";
  }
  return "";
}

struct FuseOption {
  const char* name;  // the backend option, named as fuse-overlayfs names it
  Form form;
  const char* help;
};

// The fuse-overlayfs (1.10) options that matter for benchmarks; each was checked to be
// known to that version and to have the effect said.
constexpr FuseOption kOptions[] = {
    {"fsync", Form::kBit, "1 (default): fsync and fdatasync reach the upper layer; 0: they return at once"},
    {"writeback", Form::kBit, "1 (default): the kernel's FUSE writeback cache buffers writes; 0: every write goes to the daemon"},
    {"threaded", Form::kBit, "1: the daemon serves requests from several threads; 0 (default): from one"},
    {"timeout", Form::kSeconds, "how long the kernel caches lookups and attributes (default: practically forever; 0: every lookup asks the daemon)"},
    {"fast_ino", Form::kBit, "1: loading a directory skips the search of the layers below for each entry's original inode (600 layers: first use 3.2 s → 0.1 s here); 0 (default)"},
    {"noacl", Form::kFlag, "no POSIX ACL support"},
    {"static_nlink", Form::kFlag, "every directory reports st_nlink 1 instead of counting its subdirectories"},
    {"squash_to_root", Form::kFlag, "every file shows as owned by root (ownership is lost)"},
};

// The fuse-overlayfs options for the backend options (their names already checked).
std::vector<std::string> daemon_options(const BackendOptions& options) {
  std::vector<std::string> out;
  for (const auto& [k, v] : options) {
    for (const auto& o : kOptions) {
      if (k != o.name) continue;
      bool ok = o.form == Form::kBit    ? v == "0" || v == "1"
                : o.form == Form::kFlag ? v == "on" || v == "off"
                                        : std::regex_match(v, std::regex(R"(\d+(\.\d+)?)"));
      if (!ok) fail(Errc::kInvalidInput, "fuse-overlayfs option {} takes {}, not '{}'", k, form_values(o.form), v);
      if (o.form != Form::kFlag)
        out.push_back(k + "=" + v);
      else if (v == "on")
        out.push_back(k);
    }
  }
  return out;
}

}  // namespace

Availability probe_fuse_overlayfs(const std::string& workdir) {
  if (auto why = needs_root_reason()) return {false, *why};
  std::string binary;
  try {
    binary = fuse_overlayfs_binary();
    open_fuse_device();
  } catch (const Error& e) {
    return {false, e.what()};
  }
  Availability a = trial_copy_up(workdir, kFuseOverlayfsName, "fuse-overlayfs",
                                 [](const std::string& lower, const std::string& upper, const std::string& work) {
                                   return Mount{kFuseOverlayfsType, "fuse-overlayfs",
                                                {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}};
                                 });
  if (a.available) a.reason += " (" + binary + ")";
  return a;
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
  for (const auto& o : kOptions) spec.options.push_back({o.name, form_values(o.form), o.help});
  spec.probe = probe_fuse_overlayfs;
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    check_options(builtin_registry().get(kFuseOverlayfsName), options);
    auto daemon = daemon_options(options);
    fuse_overlayfs_binary();  // before anything is created: a missing program is named as such
    return std::make_unique<FuseOverlayfsSnapshotter>(root, std::move(daemon));
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
