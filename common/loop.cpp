// Loop devices (see loop.h).
#include "common/loop.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"

namespace cowbench {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

LoopDevice::LoopDevice(const std::string& image) {
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl) {
    int err = errno;
    throw Error(Errc::kUnsupported, fmt::format("no loop devices: /dev/loop-control: {}", std::strerror(err)), err);
  }
  Fd file(open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (!file) fail_sys("open image {}", image);
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
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) {
      path_ = dev;
      // Held read-only: kernels that refuse to mount devices open for writing
      // (CONFIG_BLK_DEV_WRITE_MOUNTED=n) must still mount it.
      Fd ro(open(dev.c_str(), O_RDONLY | O_CLOEXEC));
      fd_ = ro ? std::move(ro) : std::move(loop);
      return;
    }
    if (errno != EBUSY) fail_sys("attach {} to {}", image, dev);
  }
  fail(Errc::kFailure, "attach {}: every free loop device was taken by someone else", image);
}

LoopDevice::LoopDevice(LoopDevice&& o) noexcept : path_(std::move(o.path_)), fd_(std::move(o.fd_)) { o.path_.clear(); }

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
