// Pure kernel name tables (see kernel_names.h): no libbpf, no root.
#include "ebpf/kernel_names.h"

#include <fmt/format.h>
#include <linux/magic.h>

#include <iterator>
#include <map>

namespace cowbench::ebpf {
namespace {

// Every syscall of the build's architecture by number (generated from <sys/syscall.h> by
// ebpf/CMakeLists.txt).
const std::map<long, std::string>& syscall_names() {
  static const std::map<long, std::string> names = [] {
    struct Row {
      long nr;
      const char* name;
    };
    static constexpr Row kRows[] = {
#include "ebpf/syscall_table.inc"
    };
    std::map<long, std::string> m;
    for (const Row& r : kRows) m.emplace(r.nr, r.name);
    return m;
  }();
  return names;
}

}  // namespace

std::string syscall_name(long nr) {
  if (nr < 0) return "none";
  auto it = syscall_names().find(nr);
  return it == syscall_names().end() ? fmt::format("syscall {}", nr) : it->second;
}

// FUSE opcodes by number (include/uapi/linux/fuse.h).
std::string fuse_opcode_name(uint32_t op) {
  static const char* const names[] = {
      nullptr,        "LOOKUP",      "FORGET",        "GETATTR",     "SETATTR",  "READLINK",    "SYMLINK",
      nullptr,        "MKNOD",       "MKDIR",         "UNLINK",      "RMDIR",    "RENAME",      "LINK",
      "OPEN",         "READ",        "WRITE",         "STATFS",      "RELEASE",  nullptr,       "FSYNC",
      "SETXATTR",     "GETXATTR",    "LISTXATTR",     "REMOVEXATTR", "FLUSH",    "INIT",        "OPENDIR",
      "READDIR",      "RELEASEDIR",  "FSYNCDIR",      "GETLK",       "SETLK",    "SETLKW",      "ACCESS",
      "CREATE",       "INTERRUPT",   "BMAP",          "DESTROY",     "IOCTL",    "POLL",        "NOTIFY_REPLY",
      "BATCH_FORGET", "FALLOCATE",   "READDIRPLUS",   "RENAME2",     "LSEEK",    "COPY_FILE_RANGE",
      "SETUPMAPPING", "REMOVEMAPPING", "SYNCFS",      "TMPFILE",     "STATX"};
  if (op < std::size(names) && names[op]) return std::string("FUSE_") + names[op];
  if (op == 4096) return "CUSE_INIT";
  return fmt::format("FUSE_OP_{}", op);
}

std::string fs_magic_name(long magic) {
  switch (static_cast<unsigned long>(magic)) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    default: return fmt::format("fs magic {:#x}", static_cast<unsigned long>(magic));
  }
}

std::string kernel_dev_text(uint32_t kdev) { return fmt::format("{}:{}", kdev >> 20, kdev & 0xfffff); }

}  // namespace cowbench::ebpf
