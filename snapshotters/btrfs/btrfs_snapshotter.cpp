// The btrfs backend (see btrfs_snapshotter.h).
#include "snapshotters/btrfs/btrfs_snapshotter.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/scratch_fs.h"

namespace cowbench::snap {
namespace {

// The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
constexpr ino_t kSubvolumeRootIno = 256;

// The subvolume ioctls, each returning 0 or an errno so that the trial can report rather than throw.
template <typename Args>
bool set_name(Args& args, const std::string& name) {
  if (name.empty() || name.size() >= sizeof args.name) return false;
  std::memcpy(args.name, name.c_str(), name.size() + 1);
  return true;
}

int create_subvolume(int dirfd, const std::string& name) {
  btrfs_ioctl_vol_args args{};
  if (!set_name(args, name)) return ENAMETOOLONG;
  return ioctl(dirfd, BTRFS_IOC_SUBVOL_CREATE, &args) == 0 ? 0 : errno;
}

int snapshot_subvolume(int srcfd, int dirfd, const std::string& name, bool readonly) {
  btrfs_ioctl_vol_args_v2 args{};
  args.fd = srcfd;
  args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
  if (!set_name(args, name)) return ENAMETOOLONG;
  return ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, &args) == 0 ? 0 : errno;
}

int delete_subvolume(int dirfd, const std::string& name) {
  btrfs_ioctl_vol_args args{};
  if (!set_name(args, name)) return ENAMETOOLONG;
  return ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY, &args) == 0 ? 0 : errno;
}

void make_readonly(const std::string& path) {
  Fd fd = open_dir(path);
  uint64_t flags = 0;
  if (ioctl(fd.get(), BTRFS_IOC_SUBVOL_GETFLAGS, &flags) != 0) fail_sys("read the flags of subvolume {}", path);
  flags |= BTRFS_SUBVOL_RDONLY;
  if (ioctl(fd.get(), BTRFS_IOC_SUBVOL_SETFLAGS, &flags) != 0) fail_sys("make subvolume {} read-only", path);
}

bool is_subvolume(const std::string& path) {
  struct stat st {};
  struct statfs sf {};
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == kSubvolumeRootIno &&
         statfs(path.c_str(), &sf) == 0 && static_cast<unsigned long>(sf.f_type) == BTRFS_SUPER_MAGIC;
}

// snapshots/<id>/fs is the snapshot's subvolume: a new one for a snapshot without parent,
// else a snapshot of the parent's (read-only for views); commit makes it read-only (see
// ScratchStoreSnapshotter for mounts and usage).
class BtrfsSnapshotter final : public ScratchStoreSnapshotter {
 public:
  explicit BtrfsSnapshotter(std::unique_ptr<ScratchFs> scratch) : ScratchStoreSnapshotter(std::move(scratch)) {
    recover();
  }

  std::string_view backend() const noexcept override { return "btrfs"; }

 protected:
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    std::string fs = fs_dir(r.id);
    Fd dir = open_dir(snapshot_dir(r.id));
    bool view = r.info.kind == Kind::kView;
    if (parents.empty()) {
      if (int err = create_subvolume(dir.get(), "fs")) fail_errno(err, "create subvolume {}", fs);
      if (chmod(fs.c_str(), 0755) != 0) fail_sys("chmod {}", fs);
      if (view) make_readonly(fs);
      return;
    }
    std::string parent = fs_dir(parents.front().id);
    Fd src = open_dir(parent);
    if (int err = snapshot_subvolume(src.get(), dir.get(), "fs", view))
      fail_errno(err, "snapshot subvolume {} as {}", parent, fs);
  }

  void commit_storage(const Record& r) override { make_readonly(fs_dir(r.id)); }

  // The subvolume first: remove_tree does not cross into it (it has its own device number).
  void remove_storage(uint64_t id) override {
    std::string fs = fs_dir(id);
    if (is_subvolume(fs)) {
      Fd dir = open_dir(snapshot_dir(id));
      if (int err = delete_subvolume(dir.get(), "fs")) fail_errno(err, "delete subvolume {}", fs);
    }
    remove_tree(snapshot_dir(id));
  }
};

}  // namespace

std::optional<std::string> btrfs_trial(const std::string& dir) {
  Fd d = open_dir(dir);
  std::string sub = fmt::format(".btrfs-trial.{}", getpid()), snap = sub + ".snap";
  if (int err = create_subvolume(d.get(), sub)) {
    if (err == ENOTTY || err == EOPNOTSUPP)
      return fmt::format("{} has no subvolumes (it is not btrfs)", fs_type_name_or(dir));
    return fmt::format("cannot create a subvolume on {}: {}", fs_type_name_or(dir), std::strerror(err));
  }
  std::optional<std::string> why;
  {
    Fd src = open_dir(path_join(dir, sub));
    if (int err = snapshot_subvolume(src.get(), d.get(), snap, true))
      why = fmt::format("cannot snapshot a subvolume on {}: {}", fs_type_name_or(dir), std::strerror(err));
    else
      delete_subvolume(d.get(), snap);
  }
  if (int err = delete_subvolume(d.get(), sub); err && !why)
    why = fmt::format("cannot delete a subvolume on {}: {}", fs_type_name_or(dir), std::strerror(err));
  return why;
}

void register_btrfs(Registry& registry) {
  registry.add(scratch_backend_spec({
      .name = "btrfs",
      .description = "btrfs subvolume per snapshot, children as snapshots of their parent's subvolume (a scratch btrfs "
                     "when the root is not btrfs)",
      .host_needs = "btrfs in the kernel; a btrfs root, or loop devices and mkfs.btrfs for a scratch one; CAP_SYS_ADMIN",
      .default_fs = "btrfs",
      .fs_choice = false,
      .trial = btrfs_trial,
      .open = [](std::unique_ptr<ScratchFs> fs) -> std::unique_ptr<Snapshotter> {
        return std::make_unique<BtrfsSnapshotter>(std::move(fs));
      },
  }));
}

}  // namespace cowbench::snap
