// Unit tests of ebpf/kernel_names: syscall and FUSE opcode names, file system magics, kernel dev_t text.
#include "ebpf/kernel_names.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/syscall.h>

#include <cstdint>
#include <utility>

namespace cowbench::test {
namespace {

using ebpf::fs_magic_name;
using ebpf::fuse_opcode_name;
using ebpf::kernel_dev;
using ebpf::kernel_dev_text;
using ebpf::syscall_name;

TEST(KernelNames, SyscallsByNumberOnThisArchitecture) {
  EXPECT_EQ(syscall_name(SYS_openat), "openat");
  EXPECT_EQ(syscall_name(SYS_write), "write");
  EXPECT_EQ(syscall_name(SYS_renameat2), "renameat2");
  EXPECT_EQ(syscall_name(SYS_io_uring_enter), "io_uring_enter");
#ifdef SYS_open
  EXPECT_EQ(syscall_name(SYS_open), "open");
#endif
  // The whole table, not only the calls that copy up.
  EXPECT_EQ(syscall_name(SYS_getppid), "getppid");
  EXPECT_EQ(syscall_name(SYS_fsync), "fsync");
  EXPECT_EQ(syscall_name(SYS_fdatasync), "fdatasync");
  EXPECT_EQ(syscall_name(SYS_exit_group), "exit_group");
  EXPECT_EQ(syscall_name(SYS_pivot_root), "pivot_root");
  // Numbers without a name in the table, and none at all.
  EXPECT_EQ(syscall_name(100000), "syscall 100000");
  EXPECT_EQ(syscall_name(-1), "none");
  EXPECT_EQ(syscall_name(-42), "none");
}

TEST(KernelNames, FuseOpcodes) {
  const std::pair<uint32_t, const char*> named[] = {
      {1, "FUSE_LOOKUP"},  {14, "FUSE_OPEN"},   {16, "FUSE_WRITE"},           {26, "FUSE_INIT"},
      {35, "FUSE_CREATE"}, {45, "FUSE_RENAME2"}, {47, "FUSE_COPY_FILE_RANGE"}, {52, "FUSE_STATX"},
      {4096, "CUSE_INIT"},
      // Gaps in the numbering, and numbers beyond the table.
      {0, "FUSE_OP_0"}, {7, "FUSE_OP_7"}, {19, "FUSE_OP_19"}, {53, "FUSE_OP_53"}, {4097, "FUSE_OP_4097"}};
  for (const auto& [opcode, name] : named) EXPECT_EQ(fuse_opcode_name(opcode), name) << opcode;
}

TEST(KernelNames, FileSystemMagics) {
  EXPECT_EQ(fs_magic_name(EXT4_SUPER_MAGIC), "ext4");
  EXPECT_EQ(fs_magic_name(XFS_SUPER_MAGIC), "xfs");
  EXPECT_EQ(fs_magic_name(BTRFS_SUPER_MAGIC), "btrfs");
  EXPECT_EQ(fs_magic_name(TMPFS_MAGIC), "tmpfs");
  EXPECT_EQ(fs_magic_name(0x1234), "fs magic 0x1234");
}

TEST(KernelNames, KernelDevEncoding) {
  // MKDEV: 12 bits of major above 20 bits of minor (not glibc's makedev layout).
  EXPECT_EQ(kernel_dev(8, 1), (8u << 20) | 1u);
  EXPECT_EQ(kernel_dev(259, 70000), (259u << 20) | 70000u);
  EXPECT_EQ(kernel_dev_text(kernel_dev(0, 45)), "0:45");
  EXPECT_EQ(kernel_dev_text(kernel_dev(259, 70000)), "259:70000");
}

}  // namespace
}  // namespace cowbench::test
