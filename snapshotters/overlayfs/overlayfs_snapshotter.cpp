// The overlayfs backend (see overlayfs_snapshotter.h).
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/store_snapshotter.h"

namespace cowbench::snap {
namespace {

constexpr const char* kName = "overlayfs";

// Layout per snapshot: snapshots/<id>/fs is the upper dir (or the tree of a parentless
// snapshot), snapshots/<id>/work the overlay work dir of an active snapshot.
class OverlayfsSnapshotter final : public StoreSnapshotter {
 public:
  OverlayfsSnapshotter(const std::string& root, std::vector<std::string> mount_options)
      : StoreSnapshotter(root), mount_options_(std::move(mount_options)) {
    if (root.find_first_of(":,") != std::string::npos)
      fail(Errc::kInvalidInput, "overlayfs: root {} must not contain ':' or ',' (overlay option syntax)", root);
    Availability a = probe_overlayfs(root);
    if (!a.available) fail(Errc::kUnsupported, "overlayfs cannot keep snapshots in {}: {}", root, a.reason);
    recover();
  }

  std::string_view backend() const noexcept override { return kName; }

 protected:
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    std::string fs = fs_dir(r.id);
    if (mkdir(fs.c_str(), 0755) != 0) fail_sys("create {}", fs);
    if (chmod(fs.c_str(), 0755) != 0) fail_sys("chmod {}", fs);  // umask must not narrow it
    if (!parents.empty()) {
      // The merged root takes the upper dir's owner and mode: inherit the parent's.
      struct stat st {};
      std::string pfs = fs_dir(parents.front().id);
      if (::stat(pfs.c_str(), &st) != 0) fail_sys("stat {}", pfs);
      if (chown(fs.c_str(), st.st_uid, st.st_gid) != 0) fail_sys("chown {}", fs);
      if (chmod(fs.c_str(), st.st_mode & 07777) != 0) fail_sys("chmod {}", fs);
    }
    if (r.info.kind == Kind::kActive && !parents.empty()) {
      std::string work = path_join(snapshot_dir(r.id), "work");
      if (mkdir(work.c_str(), 0700) != 0) fail_sys("create {}", work);
    }
  }

  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) override {
    bool ro = r.info.kind == Kind::kView;
    if (parents.empty()) return {Mount{"bind", fs_dir(r.id), {ro ? "ro" : "rw", "rbind"}}};
    if (ro && parents.size() == 1) return {Mount{"bind", fs_dir(parents.front().id), {"ro", "rbind"}}};
    std::string lower;
    for (const auto& p : parents) {
      if (!lower.empty()) lower += ':';
      lower += fs_dir(p.id);
    }
    Mount m{"overlay", "overlay", {}};
    if (ro) {
      // Only lower layers: the kernel makes the overlay read-only.
      m.options.push_back("lowerdir=" + lower);
      return {m};
    }
    m.options.push_back("workdir=" + path_join(snapshot_dir(r.id), "work"));
    m.options.push_back("upperdir=" + fs_dir(r.id));
    m.options.push_back("lowerdir=" + lower);
    m.options.insert(m.options.end(), mount_options_.begin(), mount_options_.end());
    return {m};
  }

 private:
  std::vector<std::string> mount_options_;
};

}  // namespace

Availability probe_overlayfs(const std::string& workdir) {
  if (auto why = needs_root_reason()) return {false, *why};
  try {
    ProbeDir dir(workdir, "overlayfs");
    auto lower = dir.sub("lower"), upper = dir.sub("upper"), work = dir.sub("work"), merged = dir.sub("merged");
    write_test_file(path_join(lower, "f"), "lower");
    {
      ScopedMount m({Mount{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}, merged);
      write_test_file(path_join(merged, "f"), "upper");  // forces a copy-up
      m.close();
    }
    if (access(path_join(upper, "f").c_str(), F_OK) != 0)
      return {false, "a write through a trial overlay did not copy the file up"};
    return {true, fmt::format("trial overlay with copy-up on {}", fs_type_name(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial overlay mount on {} failed: {}", fs_type_name_or(workdir), e.what())};
  }
}

void register_overlayfs(Registry& registry) {
  BackendSpec spec;
  spec.name = kName;
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
    check_options(builtin_registry().get(kName), options);
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
