// Pure kernel name tables: syscall numbers, FUSE opcodes, file system magics and dev_t encodings as text.
#pragma once

#include <cstdint>
#include <string>

namespace cowbench::ebpf {

// The name of syscall `nr` on this architecture ("openat"), from the build's syscall table;
// "syscall N" for a number without a name there, "none" for a negative one (no syscall known).
std::string syscall_name(long nr);

// "FUSE_LOOKUP", "FUSE_WRITE", ... (include/uapi/linux/fuse.h), "CUSE_INIT" for 4096,
// "FUSE_OP_N" for a number without a name.
std::string fuse_opcode_name(uint32_t opcode);

// "ext4", "xfs", "btrfs", "tmpfs" for statfs(2) f_type, else "fs magic 0x...".
std::string fs_magic_name(long magic);

// dev_t as the kernel stores it in super_block.s_dev (MKDEV: major << 20 | minor), and as
// "major:minor" text.
constexpr uint32_t kernel_dev(unsigned major, unsigned minor) { return (major << 20) | minor; }
std::string kernel_dev_text(uint32_t kdev);

}  // namespace cowbench::ebpf
