// EROFS images: build, check, mount, probe (see erofs_image.h).
#include "snapshotters/erofs_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/program.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

constexpr const char* kMkfsErofs = "mkfs.erofs";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr uint32_t kErofsMagic = 0xE0F5E1E2;
constexpr off_t kSuperBlockOffset = 1024;
// Of the on-disk super block (little endian): magic at 0, blkszbits at 12, blocks (a 32-bit
// count of blocks in the image) at 36.
constexpr size_t kSuperBlockRead = 40;

uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Whether mount(2) takes an image file as the source: unknown until the first mount, then
// decided for the process (a kernel without CONFIG_EROFS_FS_BACKED_BY_FILE says ENOTBLK).
enum class FileBacked { kUnknown, kYes, kNo };
std::atomic<FileBacked> g_file_backed{FileBacked::kUnknown};

// The kernel's words for a mount that failed with ENODEV: no EROFS there.
[[noreturn]] void fail_no_erofs(const Error& e) {
  throw Error(Errc::kUnsupported, fmt::format("the kernel has no erofs file system ({})", e.what()), ENODEV);
}

// Whether /proc/filesystems lists erofs, or the running kernel has an erofs module to load.
std::optional<std::string> erofs_missing_reason() {
  std::string fss;
  try {
    fss = read_file("/proc/filesystems");
  } catch (const Error&) {
  }
  if (fss.find("\terofs\n") != std::string::npos) return std::nullopt;
  utsname u{};
  if (uname(&u) == 0) {
    std::string dir = fmt::format("/lib/modules/{}/kernel/fs/erofs", u.release);
    for (const char* ext : {"erofs.ko", "erofs.ko.xz", "erofs.ko.zst", "erofs.ko.gz"})
      if (path_exists(path_join(dir, ext))) return std::nullopt;  // mount(2) loads it
    return fmt::format("the kernel has no erofs file system (not in /proc/filesystems, no module in {})", dir);
  }
  return std::string("the kernel has no erofs file system (not in /proc/filesystems)");
}

// A mount of `image` that failed: a corrupt image (EINVAL, EIO, EUCLEAN: what the kernel says
// of a super block or root inode it cannot read) is bad input, naming the image.
[[noreturn]] void fail_mount(const std::string& image, const std::string& how, const Error& e) {
  int err = e.sys_errno();
  Errc code = (err == EINVAL || err == EIO || err == EUCLEAN) ? Errc::kInvalidInput : e.code();
  throw Error(code, fmt::format("cannot mount EROFS image {}{}: {}", image, how, e.what()), err);
}

}  // namespace

std::optional<std::string> find_mkfs_erofs(const std::string& program) {
  return find_program(program.empty() ? kMkfsErofs : program);
}

uint64_t build_erofs_image(const std::string& source_dir, const std::string& out_file, const std::string& mkfs,
                           ErofsFiles files) {
  std::optional<std::string> prog = find_mkfs_erofs(mkfs);
  if (!prog) {
    if (!mkfs.empty())
      fail(Errc::kUnsupported, "cannot make the EROFS image {}: mkfs program {} is missing or not executable", out_file,
           mkfs);
    fail(Errc::kUnsupported, "cannot make the EROFS image {}: {} is not in PATH, /sbin or /usr/sbin (install erofs-utils)",
         out_file, kMkfsErofs);
  }
  std::string tmp = out_file + ".tmp";
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) fail_sys("remove a stale {}", tmp);
  // No -z for data: uncompressed, as containerd's EROFS differ makes layers by default. xattrs stay
  // on (the default tolerance); device nodes, whiteouts among them, are copied as they are.
  std::vector<std::string> argv = {*prog, "--quiet", "--preserve-mtime"};
  if (files == ErofsFiles::kStubs) argv.insert(argv.end(), {"-zlz4", "-C1048576", "-Eztailpacking"});
  argv.insert(argv.end(), {tmp, source_dir});
  ProgramResult r = run_program(argv);
  if (std::string how = program_failure(r.status); !how.empty()) {
    unlink(tmp.c_str());
    fail(Errc::kFailure, "cannot make the EROFS image {} of {}: {} failed ({}): {}", out_file, source_dir, *prog, how,
         one_line(r.output));
  }
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    fail_errno(err, "{} wrote no image {}", *prog, tmp);
  }
  // Durable before it replaces anything: a crash leaves the old image or the whole new one.
  {
    Fd fd(open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || fsync(fd.get()) != 0) {
      int err = errno;
      unlink(tmp.c_str());
      fail_errno(err, "sync the EROFS image {}", tmp);
    }
  }
  if (rename(tmp.c_str(), out_file.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    fail_errno(err, "rename {} to {}", tmp, out_file);
  }
  return static_cast<uint64_t>(st.st_size);
}

void check_erofs_image(const std::string& image) {
  Fd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) throw Error(Errc::kNotFound, fmt::format("EROFS image {} does not exist", image), err);
    fail_errno(err, "open EROFS image {}", image);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) fail_sys("stat EROFS image {}", image);
  if (!S_ISREG(st.st_mode)) fail(Errc::kInvalidInput, "EROFS image {} is not a regular file", image);
  unsigned char sb[kSuperBlockRead]{};
  ssize_t n = pread(fd.get(), sb, sizeof sb, kSuperBlockOffset);
  if (n < 0) fail_sys("read the super block of EROFS image {}", image);
  if (static_cast<size_t>(n) < sizeof sb)
    fail(Errc::kInvalidInput, "EROFS image {} is truncated: {} bytes, too short for a super block", image, st.st_size);
  if (uint32_t magic = le32(sb); magic != kErofsMagic)
    fail(Errc::kInvalidInput, "EROFS image {} is corrupt: no EROFS magic at byte {} (0x{:08x})", image,
         kSuperBlockOffset, magic);
  unsigned bits = sb[12];
  if (bits < 9 || bits > 16)
    fail(Errc::kInvalidInput, "EROFS image {} is corrupt: block size 2^{} bytes", image, bits);
  uint64_t blocks = le32(sb + 36);
  uint64_t need = blocks << bits;
  if (static_cast<uint64_t>(st.st_size) < need)
    fail(Errc::kInvalidInput, "EROFS image {} is truncated: {} bytes, its super block counts {} blocks of {} ({} bytes)",
         image, st.st_size, blocks, uint64_t{1} << bits, need);
}

const char* erofs_source_name(ErofsSource s) noexcept { return s == ErofsSource::kFile ? "file" : "loop"; }

ErofsMount::ErofsMount(const std::string& image, const std::string& mountpoint) : image_(image) {
  check_erofs_image(image_);
  if (g_file_backed.load() != FileBacked::kNo) {
    try {
      mount_ = ScopedMount({Mount{"erofs", image_, {"ro"}}}, mountpoint);
      source_ = ErofsSource::kFile;
      g_file_backed.store(FileBacked::kYes);
      return;
    } catch (const Error& e) {
      if (e.sys_errno() == ENODEV) fail_no_erofs(e);
      // ENOTBLK: a kernel that mounts EROFS from block devices only (before 6.12).
      if (e.sys_errno() != ENOTBLK) fail_mount(image_, "", e);
      log::debug("the kernel mounts no EROFS image file directly ({}); using loop devices", e.what());
      g_file_backed.store(FileBacked::kNo);
    }
  }
  source_ = ErofsSource::kLoop;
  loop_ = std::make_unique<LoopDevice>(image_, LoopMode::kDirectIo);
  try {
    mount_ = ScopedMount({Mount{"erofs", loop_->path(), {"ro"}}}, mountpoint);
  } catch (const Error& e) {
    loop_->close();
    loop_.reset();
    if (e.sys_errno() == ENODEV) fail_no_erofs(e);
    fail_mount(image_, " on a loop device", e);
  }
}

ErofsMount::~ErofsMount() {
  try {
    close();
  } catch (const std::exception& e) {
    log::warn("EROFS image {}: {}", image_, e.what());
  }
}

std::string ErofsMount::how() const {
  if (!loop_) return "file-backed";
  return fmt::format("loop device {} ({})", loop_->path(), loop_->mode());
}

void ErofsMount::close() {
  mount_.close();
  if (loop_) {
    auto loop = std::move(loop_);
    loop->close();
  }
}

Availability probe_erofs(const std::string& workdir, const std::string& mkfs) {
  if (auto why = needs_root_reason()) return {false, *why};
  if (auto why = erofs_missing_reason()) return {false, *why};
  std::optional<std::string> prog = find_mkfs_erofs(mkfs);
  if (!prog) {
    if (!mkfs.empty()) return {false, fmt::format("mkfs program {} is missing or not executable", mkfs)};
    return {false, fmt::format("{} is not in PATH, /sbin or /usr/sbin (install erofs-utils)", kMkfsErofs)};
  }
  try {
    ProbeDir dir(workdir, "erofs");
    std::string tree = dir.sub("tree"), mnt = dir.sub("mnt");
    write_test_file(path_join(tree, "f"), "erofs");
    std::string wh = path_join(tree, "wh");
    if (mknod(wh.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) fail_sys("make a whiteout {}", wh);
    std::string opaque = dir.sub("tree/opaque");
    if (setxattr(opaque.c_str(), kOpaqueXattr, "y", 1, 0) != 0) fail_sys("set {} on {}", kOpaqueXattr, opaque);
    std::string image = path_join(dir.path(), "probe.erofs");
    build_erofs_image(tree, image, mkfs);
    std::string how;
    {
      ErofsMount m(image, mnt);
      how = m.how();
      if (read_file(path_join(mnt, "f")) != "erofs")
        return {false, fmt::format("a file read back from a trial EROFS image ({}) differs", how)};
      struct stat st {};
      if (::lstat(path_join(mnt, "wh").c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0))
        return {false, "a trial EROFS image did not keep an overlay whiteout (character device 0:0)"};
      char v[4]{};
      if (getxattr(path_join(mnt, "opaque").c_str(), kOpaqueXattr, v, sizeof v) != 1 || v[0] != 'y')
        return {false, fmt::format("a trial EROFS image did not keep the xattr {} ({})", kOpaqueXattr,
                                   std::strerror(errno))};
      m.close();
    }
    return {true, fmt::format("trial EROFS image made with {}, mounted {}", *prog, how)};
  } catch (const Error& e) {
    return {false, e.what()};
  }
}

}  // namespace cowbench::snap
