// Loop devices (see loop.h).
#include "common/loop.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"

namespace cowbench {
namespace {

constexpr uint32_t kSectorSize = 512;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A small integer from a sysfs attribute; 0 when it cannot be read.
uint32_t read_sysfs_number(const std::string& path) {
  try {
    return static_cast<uint32_t>(std::stoul(read_file(path)));
  } catch (const std::exception&) {
    return 0;
  }
}

uint32_t block_size_of(int fd) {
  // The file system's own word on direct-I/O alignment (ext4, xfs since 6.1; as the kernel's
  // loop driver asks it).
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
      stx.stx_dio_offset_align > 0)
    return std::max(kSectorSize, stx.stx_dio_offset_align);
  // Else the block device under it (a partition has its queue in its parent's directory).
  struct stat st {};
  if (fstat(fd, &st) == 0 && major(st.st_dev) != 0) {
    std::string dev = fmt::format("/sys/dev/block/{}:{}", major(st.st_dev), minor(st.st_dev));
    for (const char* q : {"/queue/logical_block_size", "/../queue/logical_block_size"})
      if (uint32_t n = read_sysfs_number(dev + q)) return std::max(kSectorSize, n);
  }
  return kSectorSize;
}

// Whether the kernel uses direct I/O for the bound device `n` (fd open on it).
bool kernel_uses_dio(int n, int fd) {
  try {
    return trim(read_file(fmt::format("/sys/block/loop{}/loop/dio", n))) == "1";
  } catch (const Error&) {
    loop_info64 info{};  // no sysfs attribute: the flags say the same
    return ioctl(fd, LOOP_GET_STATUS64, &info) == 0 && (info.lo_flags & LO_FLAGS_DIRECT_IO) != 0;
  }
}

// The fallback to buffered mode, said once per backing file system (a probe and the backend
// after it attach the same kind of image; later ones go to the debug log).
void warn_fallback(const std::string& device, const std::string& image, const std::string& fs, const std::string& why) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  bool first = false;
  {
    std::lock_guard lock(mutex);
    first = warned.insert(fs).second;
  }
  std::string msg = fmt::format(
      "loop device {} over {} runs buffered, not direct I/O: {}; every block read through it is also cached as a "
      "page of the image file on {}",
      device, image, why, fs);
  if (first)
    log::warn("{}", msg);
  else
    log::debug("{}", msg);
}

}  // namespace

const char* loop_mode_name(LoopMode m) noexcept { return m == LoopMode::kDirectIo ? "direct-io" : "buffered"; }

uint32_t loop_block_size(const std::string& image) {
  Fd file(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) fail_sys("open image {}", image);
  return block_size_of(file.get());
}

LoopDevice::LoopDevice(const std::string& image, LoopMode mode) {
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl) {
    int err = errno;
    throw Error(Errc::kUnsupported, fmt::format("no loop devices: /dev/loop-control: {}", std::strerror(err)), err);
  }
  Fd file(open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (!file) fail_sys("open image {}", image);
  try {
    backing_fs_ = fs_type_name(image);
  } catch (const Error&) {
    backing_fs_ = "an unknown file system";
  }
  block_size_ = block_size_of(file.get());
  bool want_dio = mode == LoopMode::kDirectIo;
  if (want_dio) {
    // The loop driver uses direct I/O only where the backing file can be opened with O_DIRECT
    // (ramfs, for one, refuses it with EINVAL); asking it anyway would leave it off silently.
    Fd trial(open(image.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    if (!trial) {
      fallback_ = fmt::format("{} refuses O_DIRECT ({})", backing_fs_, std::strerror(errno));
      want_dio = false;
    }
  }
  // Another process may take the free device between the two calls: retry a few times.
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) {
      int err = errno;
      throw Error(Errc::kUnsupported, fmt::format("no free loop device: {}", std::strerror(err)), err);
    }
    std::string dev = fmt::format("/dev/loop{}", n);
    Fd loop(open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) fail_sys("open {}", dev);
    loop_config cfg{};
    cfg.fd = static_cast<unsigned>(file.get());
    cfg.block_size = block_size_;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (want_dio ? LO_FLAGS_DIRECT_IO : 0);
    if (ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) {
      path_ = dev;
      // What the kernel made of the request: it clears LO_FLAGS_DIRECT_IO when the block
      // size or offset does not suit the backing file system's direct I/O.
      direct_io_ = kernel_uses_dio(n, loop.get());
      if (want_dio && !direct_io_)
        fallback_ = fmt::format("the kernel left direct I/O off (/sys/block/loop{}/loop/dio is 0 with block size {})", n,
                                block_size_);
      if (mode == LoopMode::kDirectIo && !direct_io_) warn_fallback(path_, image, backing_fs_, fallback_);
      // Held read-only: kernels that refuse to mount devices open for writing
      // (CONFIG_BLK_DEV_WRITE_MOUNTED=n) must still mount it.
      Fd ro(open(dev.c_str(), O_RDONLY | O_CLOEXEC));
      fd_ = ro ? std::move(ro) : std::move(loop);
      return;
    }
    if (errno == EINVAL && want_dio) {
      // A kernel that refuses the flag outright rather than clearing it: attach buffered.
      fallback_ = fmt::format("LOOP_CONFIGURE with LO_FLAGS_DIRECT_IO failed ({})", std::strerror(errno));
      want_dio = false;
      continue;
    }
    if (errno != EBUSY) fail_sys("attach {} to {}", image, dev);
  }
  fail(Errc::kFailure, "attach {}: every free loop device was taken by someone else", image);
}

LoopDevice::LoopDevice(LoopDevice&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(std::move(o.fd_)),
      direct_io_(o.direct_io_),
      fallback_(std::move(o.fallback_)),
      backing_fs_(std::move(o.backing_fs_)),
      block_size_(o.block_size_) {
  o.path_.clear();
}

void LoopDevice::close() {
  if (path_.empty()) return;
  std::string p = std::move(path_);
  path_.clear();
  fd_.reset();  // the last close of an unused device detaches it (autoclear)
  detach_loop(p);
}

LoopDevice::~LoopDevice() {
  try {
    close();
  } catch (const std::exception& e) {
    log::warn("{}", e.what());
  }
}

std::vector<LoopInfo> loops_backed_under(const std::string& dir) {
  std::vector<LoopInfo> out;
  std::string prefix = dir;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  DIR* d = opendir("/sys/block");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (!n.starts_with("loop")) continue;
    std::string backing;
    try {
      backing = trim(read_file(fmt::format("/sys/block/{}/loop/backing_file", n)));
    } catch (const Error&) {
      continue;  // not attached
    }
    if (backing.ends_with(" (deleted)")) backing.resize(backing.size() - 10);
    if (backing == prefix || (backing.starts_with(prefix) && backing.size() > prefix.size() && backing[prefix.size()] == '/'))
      out.push_back({"/dev/" + n, backing});
  }
  closedir(d);
  return out;
}

void detach_loop(const std::string& device) {
  Fd loop(open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!loop) {
    if (errno == ENOENT || errno == ENXIO) return;
    fail_sys("open {}", device);
  }
  using namespace std::chrono_literals;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (ioctl(loop.get(), LOOP_CLR_FD, 0) == 0 || errno == ENXIO) return;
    if (errno != EBUSY) fail_sys("detach {}", device);
    std::this_thread::sleep_for(20ms);
  }
  // Still in use (mounted somewhere): autoclear detaches it when the last user goes.
  loop_info64 info{};
  if (ioctl(loop.get(), LOOP_GET_STATUS64, &info) == 0) {
    info.lo_flags |= LO_FLAGS_AUTOCLEAR;
    ioctl(loop.get(), LOOP_SET_STATUS64, &info);
  }
  fail(Errc::kFailure, "detach {}: still busy; marked to detach when its last user goes", device);
}

}  // namespace cowbench
