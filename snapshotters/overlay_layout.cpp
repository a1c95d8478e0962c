// The overlay layer layout shared by the overlayfs, fuse-overlayfs and unionfs-fuse backends (see overlay_layout.h).
#include "snapshotters/overlay_layout.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {

namespace {

// `root`, once it is known to be usable in overlay options; checked before anything is created.
const std::string& option_safe_root(const std::string& backend, const std::string& root) {
  if (root.find_first_of(":,") != std::string::npos)
    fail(Errc::kInvalidInput, "{}: root {} must not contain ':' or ',' (overlay option syntax)", backend, root);
  return root;
}

}  // namespace

OverlayLayoutSnapshotter::OverlayLayoutSnapshotter(const std::string& backend, const std::string& root,
                                                   const std::function<Availability(const std::string&)>& probe,
                                                   bool work_dirs)
    : StoreSnapshotter(option_safe_root(backend, root)), work_dirs_(work_dirs) {
  Availability a = probe(root);
  if (!a.available) fail(Errc::kUnsupported, "{} cannot keep snapshots in {}: {}", backend, root, a.reason);
  recover();
}

void OverlayLayoutSnapshotter::create_storage(const Record& r, const std::vector<Record>& parents) {
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
  if (work_dirs_ && r.info.kind == Kind::kActive && !parents.empty()) {
    std::string work = path_join(snapshot_dir(r.id), "work");
    if (mkdir(work.c_str(), 0700) != 0) fail_sys("create {}", work);
  }
}

std::vector<Mount> OverlayLayoutSnapshotter::mounts_of(const Record& r, const std::vector<Record>& parents) {
  bool ro = r.info.kind == Kind::kView;
  if (parents.empty()) return {Mount{"bind", fs_dir(r.id), {ro ? "ro" : "rw", "rbind"}}};
  if (ro && parents.size() == 1) return {Mount{"bind", fs_dir(parents.front().id), {"ro", "rbind"}}};
  std::string lower;
  for (const auto& p : parents) {
    if (!lower.empty()) lower += ':';
    lower += fs_dir(p.id);
  }
  if (ro) return {merged_mount(lower, "", "")};
  return {merged_mount(lower, fs_dir(r.id), path_join(snapshot_dir(r.id), "work"))};
}

Availability trial_copy_up(const std::string& workdir, const std::string& backend, const std::string& what,
                           const MergedMountFn& describe) {
  if (auto why = needs_root_reason()) return {false, *why};
  try {
    ProbeDir dir(workdir, backend);
    auto lower = dir.sub("lower"), upper = dir.sub("upper"), work = dir.sub("work"), merged = dir.sub("merged");
    write_test_file(path_join(lower, "f"), "lower");
    {
      ScopedMount m({describe(lower, upper, work)}, merged);
      write_test_file(path_join(merged, "f"), "upper");  // forces a copy-up
      m.close();
    }
    if (access(path_join(upper, "f").c_str(), F_OK) != 0)
      return {false, fmt::format("a write through a trial {} did not copy the file up", what)};
    return {true, fmt::format("trial {} with copy-up on {}", what, fs_type_name(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial {} mount on {} failed: {}", what, fs_type_name_or(workdir), e.what())};
  }
}

}  // namespace cowbench::snap
