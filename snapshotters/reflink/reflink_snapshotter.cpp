// The reflink backend (see reflink_snapshotter.h).
#include "snapshotters/reflink/reflink_snapshotter.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/tree_copy.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/scratch_fs.h"

namespace cowbench::snap {
namespace {

// snapshots/<id>/fs holds the snapshot's whole tree, its file data shared with the parent's
// by FICLONE (see ScratchStoreSnapshotter for mounts and usage).
class ReflinkSnapshotter final : public ScratchStoreSnapshotter {
 public:
  explicit ReflinkSnapshotter(std::unique_ptr<ScratchFs> scratch) : ScratchStoreSnapshotter(std::move(scratch)) {
    recover();
  }

  std::string_view backend() const noexcept override { return "reflink"; }

 protected:
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    std::string fs = fs_dir(r.id);
    if (mkdir(fs.c_str(), 0755) != 0) fail_sys("create {}", fs);
    if (chmod(fs.c_str(), 0755) != 0) fail_sys("chmod {}", fs);  // umask must not narrow it
    if (!parents.empty()) copy_tree(fs_dir(parents.front().id), fs, {.data = TreeCopyOptions::Data::kReflink});
  }
};

}  // namespace

std::optional<std::string> reflink_trial(const std::string& dir) {
  TempDir t(dir, ".reflink-trial");
  std::string src = path_join(t.path(), "src"), dst = path_join(t.path(), "dst");
  write_test_file(src, std::string(4096, 'r'));
  Fd in(open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail_sys("open {}", src);
  Fd out(open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) fail_sys("create {}", dst);
  if (ioctl(out.get(), FICLONE, in.get()) != 0)
    return fmt::format("FICLONE on {} fails: {}", fs_type_name_or(dir), std::strerror(errno));
  return std::nullopt;
}

void register_reflink(Registry& registry) {
  registry.add(scratch_backend_spec({
      .name = "reflink",
      .description = "per-file FICLONE clone of the parent tree (XFS reflink=1 or btrfs; a scratch XFS when the root has neither)",
      .host_needs = "a file system with reflink (XFS reflink=1, btrfs), or loop devices and mkfs.xfs/mkfs.btrfs for a "
                    "scratch one; CAP_SYS_ADMIN",
      .default_fs = "xfs",
      .fs_choice = true,
      .trial = reflink_trial,
      .open = [](std::unique_ptr<ScratchFs> fs) -> std::unique_ptr<Snapshotter> {
        return std::make_unique<ReflinkSnapshotter>(std::move(fs));
      },
  }));
}

}  // namespace cowbench::snap
