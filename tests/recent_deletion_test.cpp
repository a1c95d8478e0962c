// Why a run starts from dropped caches: on a real ext4 without a journal (loop device), inodes
// deleted moments ago are skipped by new files while their inode-table block is cached, and
// reused at once after drop_caches().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "common/program.h"
#include "runner/hygiene.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

// Creates an empty file and returns its inode number.
ino_t create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  ::close(fd);
  return st.st_ino;
}

TEST(RecentDeletion, DroppedCachesEndTheWakeOfDeletedInodes) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto mkfs = find_program("mkfs.ext4");
  if (!mkfs) GTEST_SKIP() << "mkfs.ext4 is not installed (e2fsprogs)";
  if (read_file("/proc/filesystems").find("\text4\n") == std::string::npos) GTEST_SKIP() << "the kernel has no ext4";
  TempDir tmp(scratch_root(), "recent-deletion");
  std::string image = path_join(tmp.path(), "ext4.img"), mnt = path_join(tmp.path(), "mnt");
  write_file_atomic(image, "", 0600, false);
  std::filesystem::resize_file(image, 64 << 20);  // sparse
  ProgramResult made = run_program({*mkfs, "-q", "-F", "-O", "^has_journal", image});
  ASSERT_EQ(made.status, 0) << made.output;
  make_dirs(mnt);
  {
    LoopDevice loop(image);
    ScopedMount mounted({Mount{"ext4", loop.path(), {}}}, mnt);
    std::string dir = path_join(mnt, "d");
    make_dirs(dir);
    std::set<ino_t> deleted;
    // More than the inode-table readahead of one lookup brings back after the drop (32 blocks).
    constexpr int kFiles = 1024;
    for (int i = 0; i < kFiles; ++i) deleted.insert(create(path_join(dir, std::to_string(i))));
    ::sync();
    for (int i = 0; i < kFiles; ++i) ASSERT_EQ(::unlink(path_join(dir, std::to_string(i)).c_str()), 0);
    ::sync();  // written back, still cached: the 60 s window
    usleep(1'100'000);  // ext4 counts an inode as recently deleted from the second after its deletion

    ino_t skipped = create(path_join(dir, "right-after"));
    EXPECT_FALSE(deleted.count(skipped)) << "inode " << skipped << " was deleted a moment ago and reused at once: "
                                         << "this kernel's ext4 no longer avoids recently deleted inodes";
    ASSERT_EQ(::unlink(path_join(dir, "right-after").c_str()), 0);

    ASSERT_TRUE(drop_caches());
    ino_t reused = create(path_join(dir, "after-drop"));
    EXPECT_TRUE(deleted.count(reused)) << "after drop_caches() a new file got inode " << reused
                                       << ", not one of the just-deleted ones: dropping no longer ends the wake";
    mounted.close();
    loop.close();
  }
  EXPECT_TRUE(mounts_under(tmp.path()).empty());
}

}  // namespace
}  // namespace cowbench::test
