// Pure kernel name tables (see kernel_names.h): no libbpf, no root.
#include "ebpf/kernel_names.h"

#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/syscall.h>

#include <iterator>
#include <map>

namespace cowbench::ebpf {
namespace {

// The syscalls that cause copy-ups (and a few more), by number on this architecture.
const std::map<long, std::string>& syscall_names() {
  static const std::map<long, std::string> names = [] {
    std::map<long, std::string> m;
#define CB_SYSCALL(n) m[SYS_##n] = #n
#ifdef SYS_open
    CB_SYSCALL(open);
#endif
#ifdef SYS_creat
    CB_SYSCALL(creat);
#endif
#ifdef SYS_chmod
    CB_SYSCALL(chmod);
#endif
#ifdef SYS_chown
    CB_SYSCALL(chown);
#endif
#ifdef SYS_lchown
    CB_SYSCALL(lchown);
#endif
#ifdef SYS_utimes
    CB_SYSCALL(utimes);
#endif
#ifdef SYS_utime
    CB_SYSCALL(utime);
#endif
#ifdef SYS_futimesat
    CB_SYSCALL(futimesat);
#endif
#ifdef SYS_rename
    CB_SYSCALL(rename);
#endif
#ifdef SYS_link
    CB_SYSCALL(link);
#endif
#ifdef SYS_unlink
    CB_SYSCALL(unlink);
#endif
#ifdef SYS_mkdir
    CB_SYSCALL(mkdir);
#endif
#ifdef SYS_rmdir
    CB_SYSCALL(rmdir);
#endif
#ifdef SYS_fchmodat2
    CB_SYSCALL(fchmodat2);
#endif
#ifdef SYS_openat2
    CB_SYSCALL(openat2);
#endif
    CB_SYSCALL(openat);
    CB_SYSCALL(truncate);
    CB_SYSCALL(ftruncate);
    CB_SYSCALL(fchmod);
    CB_SYSCALL(fchmodat);
    CB_SYSCALL(fchown);
    CB_SYSCALL(fchownat);
    CB_SYSCALL(utimensat);
    CB_SYSCALL(setxattr);
    CB_SYSCALL(lsetxattr);
    CB_SYSCALL(fsetxattr);
    CB_SYSCALL(removexattr);
    CB_SYSCALL(lremovexattr);
    CB_SYSCALL(fremovexattr);
    CB_SYSCALL(renameat);
    CB_SYSCALL(renameat2);
    CB_SYSCALL(linkat);
    CB_SYSCALL(unlinkat);
    CB_SYSCALL(mkdirat);
    CB_SYSCALL(write);
    CB_SYSCALL(pwrite64);
    CB_SYSCALL(writev);
    CB_SYSCALL(fallocate);
    CB_SYSCALL(copy_file_range);
    CB_SYSCALL(sendfile);
    CB_SYSCALL(io_uring_enter);
    CB_SYSCALL(read);
    CB_SYSCALL(readv);
    CB_SYSCALL(close);
    CB_SYSCALL(fsync);
    CB_SYSCALL(fdatasync);
    CB_SYSCALL(mount);
    CB_SYSCALL(fsconfig);
    CB_SYSCALL(getpid);
#undef CB_SYSCALL
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
