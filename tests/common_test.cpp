// Unit tests of common/: fd, file helpers, mount-safe removal, mounts, registry lookups.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/mount.h"
#include "common/process.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

TEST(Fd, MoveAndClose) {
  Fd a(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a);
  int raw = a.get();
  Fd b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(b.close(), 0);
  EXPECT_FALSE(b);
  EXPECT_EQ(fcntl(raw, F_GETFD), -1) << "closed fd must be gone";
}

TEST(Fs, PathJoin) {
  EXPECT_EQ(path_join("a", "b"), "a/b");
  EXPECT_EQ(path_join("a/", "/b"), "a/b");
  EXPECT_EQ(path_join("", "b"), "b");
}

TEST(Fs, AtomicWriteAndRead) {
  TempDir d(scratch_root(), "fs");
  std::string f = path_join(d.path(), "x/y/file");
  make_dirs(path_join(d.path(), "x/y"));
  write_file_atomic(f, "one");
  write_file_atomic(f, "two, longer");
  EXPECT_EQ(read_file(f), "two, longer");
  try {
    read_file(path_join(d.path(), "missing"));
    FAIL() << "reading a missing file must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
}

TEST(Fs, MakeDirsOverFileFails) {
  TempDir d(scratch_root(), "fs");
  std::string f = path_join(d.path(), "file");
  write_file_atomic(f, "");
  EXPECT_THROW(make_dirs(f), Error);
}

TEST(Fs, DiskUsageCountsHardLinksOnce) {
  TempDir d(scratch_root(), "fs");
  std::string a = path_join(d.path(), "a");
  write_file_atomic(a, std::string(1 << 20, 'x'));
  DiskUsage before = disk_usage(d.path());
  ASSERT_EQ(link(a.c_str(), path_join(d.path(), "b").c_str()), 0);
  DiskUsage after = disk_usage(d.path());
  EXPECT_EQ(before.bytes, after.bytes);
  EXPECT_EQ(before.inodes, after.inodes);
  EXPECT_GE(before.bytes, 1u << 20);
  EXPECT_EQ(before.inodes, 2u);  // the root and a
}

TEST(Fs, TempDirRemovedOnDestruction) {
  std::string p;
  {
    TempDir d(scratch_root(), "fs");
    p = d.path();
    make_dirs(path_join(p, "deep/er"));
    write_file_atomic(path_join(p, "deep/er/f"), "x");
  }
  EXPECT_NE(access(p.c_str(), F_OK), 0);
}

TEST(Fs, RemoveTreeNeverCrossesMounts) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir d(scratch_root(), "fs");
  std::string precious = path_join(d.path(), "precious");
  make_dirs(precious);
  write_file_atomic(path_join(precious, "keep"), "keep me");
  std::string victim = path_join(d.path(), "victim");
  make_dirs(path_join(victim, "mnt"));
  write_file_atomic(path_join(victim, "junk"), "junk");
  ScopedMount m({Mount{"bind", precious, {"rw"}}}, path_join(victim, "mnt"));
  try {
    remove_tree(victim);
    FAIL() << "remove_tree must refuse a tree with a mount inside";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("mnt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path_join(precious, "keep")), "keep me");
  m.close();
  remove_tree(victim);
  EXPECT_NE(access(victim.c_str(), F_OK), 0);
}

TEST(Mount, OverlayErrorCarriesKernelMessage) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir d(scratch_root(), "mnt");
  std::string target = path_join(d.path(), "t");
  make_dirs(target);
  try {
    mount_all({Mount{"overlay", "overlay", {"lowerdir=" + path_join(d.path(), "nope")}}}, target);
    FAIL() << "mounting a missing lower dir must fail";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
  }
  EXPECT_TRUE(mounts_under(d.path()).empty());
}

TEST(Mount, MountsUnderDeepestFirst) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir d(scratch_root(), "mnt");
  std::string a = path_join(d.path(), "a"), src = path_join(d.path(), "src");
  make_dirs(a);
  make_dirs(path_join(src, "b"));
  ScopedMount outer({Mount{"bind", src, {}}}, a);
  ScopedMount inner({Mount{"bind", src, {}}}, path_join(a, "b"));
  auto list = mounts_under(d.path());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], path_join(a, "b"));
  EXPECT_EQ(list[1], a);
  inner.close();
  outer.close();
  EXPECT_TRUE(mounts_under(d.path()).empty());
}

// mountinfo as the kernel writes it: spaces in mount points are "\040", optional fields
// (shared:N) come before "-", and the dev is the super block's (one for all btrfs subvolumes).
TEST(Mount, MountinfoParserUnescapesAndKeepsTheDev) {
  const char* text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "40 22 0:45 / /mnt/my\\040disk rw,noatime shared:20 master:3 - btrfs /dev/loop\\0400 rw,subvolid=5,subvol=/\n"
      "41 40 0:45 /sub /mnt/my\\040disk/vol rw - btrfs /dev/loop\\0400 rw,subvolid=256,subvol=/sub\n"
      "garbage\n";
  std::vector<MountEntry> mounts = parse_mountinfo(text);
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].mount_point, "/");
  EXPECT_EQ(mounts[0].dev_major, 8u);
  EXPECT_EQ(mounts[0].dev_minor, 1u);
  const MountEntry& disk = mounts[1];
  EXPECT_EQ(disk.mount_point, "/mnt/my disk");
  EXPECT_EQ(disk.fs_type, "btrfs");
  EXPECT_EQ(disk.source, "/dev/loop 0");
  EXPECT_EQ(disk.options, "rw,noatime");
  EXPECT_EQ(disk.super_options, "rw,subvolid=5,subvol=/");
  EXPECT_EQ(disk.dev_major, 0u);
  EXPECT_EQ(disk.dev_minor, 45u);
  EXPECT_EQ(mounts[2].mount_point, "/mnt/my disk/vol");
  EXPECT_EQ(mounts[2].fs_type, "btrfs");

  // The longest mount point that is a whole-component prefix of the path.
  EXPECT_EQ(mount_holding(mounts, "/mnt/my disk").mount_point, "/mnt/my disk");
  MountEntry file = mount_holding(mounts, "/mnt/my disk/a file");
  EXPECT_EQ(file.mount_point, "/mnt/my disk");
  EXPECT_EQ(file.dev_minor, 45u);
  EXPECT_EQ(mount_holding(mounts, "/mnt/my disk/vol/x").mount_point, "/mnt/my disk/vol");
  EXPECT_EQ(mount_holding(mounts, "/mnt/my diskette").mount_point, "/");
  EXPECT_EQ(mount_holding(mounts, "/mnt/my\\040disk/x").mount_point, "/");
  EXPECT_EQ(mount_holding({}, "/x").mount_point, "");
}

// The dev of a real mount is the st_dev of its root (except on btrfs, whose subvolumes
// have devs of their own).
TEST(Mount, MountOfHasTheDevOfItsFileSystem) {
  MountEntry root = mount_of("/proc/self");
  EXPECT_EQ(root.fs_type, "proc");
  struct stat st {};
  ASSERT_EQ(stat(root.mount_point.c_str(), &st), 0) << root.mount_point;
  EXPECT_EQ(makedev(root.dev_major, root.dev_minor), st.st_dev) << root.mount_point;
}

TEST(Process, OwnerPidOfNamesAndGoneProcesses) {
  EXPECT_EQ(owner_pid("run-1234-7", "run-"), 1234);
  EXPECT_EQ(owner_pid("cowbench-import-42-sha256", "cowbench-import-"), 42);
  for (const char* bad : {"run-", "run-12", "run-x-1", "run--1-2", "run-0-1", "list-12-1", "run-99999999999999-1"})
    EXPECT_EQ(owner_pid(bad, "run-"), std::nullopt) << bad;
  EXPECT_FALSE(process_gone(getpid()));
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(process_gone(child));
}

TEST(Registry, UnknownBackendNamesTheKnownOnes) {
  try {
    snap::builtin_registry().get("zfs");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    std::string msg = e.what();
    EXPECT_NE(msg.find("'zfs'"), std::string::npos);
    EXPECT_NE(msg.find("overlayfs"), std::string::npos);
  }
}

TEST(Registry, OptionsAreChecked) {
  EXPECT_EQ(snap::parse_options("metacopy=on,volatile"),
            (snap::BackendOptions{{"metacopy", "on"}, {"volatile", "on"}}));
  const auto& ovl = snap::builtin_registry().get("overlayfs");
  EXPECT_NO_THROW(snap::check_options(ovl, {{"metacopy", "on"}}));
  try {
    snap::check_options(ovl, {{"compress", "zstd"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("compress"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("metacopy"), std::string::npos);
  }
  EXPECT_THROW(snap::parse_options("=x"), Error);
}

TEST(Registry, EveryBackendIsDescribed) {
  for (const auto& name : snap::builtin_registry().names()) {
    const auto& spec = snap::builtin_registry().get(name);
    EXPECT_FALSE(spec.description.empty()) << name;
    EXPECT_TRUE(spec.probe) << name;
    EXPECT_TRUE(spec.create) << name;
  }
}

}  // namespace
}  // namespace cowbench::test
