// Loop devices: attach an image file (RAII), find and detach the ones backed by files in a directory.
#pragma once

#include <string>
#include <vector>

#include "common/fd.h"

namespace cowbench {

// A loop device attached to an image file; detached (autoclear) when the object dies.
class LoopDevice {
 public:
  // Attaches `image` to a free loop device (LOOP_CTL_GET_FREE + LOOP_CONFIGURE, with
  // LO_FLAGS_AUTOCLEAR so that the kernel detaches it once the last user goes away). The
  // object keeps the device open until close(): autoclear acts on the last close.
  // Throws kUnsupported when the host has no loop devices, naming why.
  explicit LoopDevice(const std::string& image);
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  LoopDevice(LoopDevice&& o) noexcept;
  LoopDevice& operator=(LoopDevice&&) = delete;
  ~LoopDevice();

  const std::string& path() const noexcept { return path_; }  // /dev/loopN
  // Detaches now; throws on failure (the destructor only logs).
  void close();

 private:
  std::string path_;
  Fd fd_;  // held open: closing the last fd of an autoclear device detaches it
};

struct LoopInfo {
  std::string device;        // /dev/loopN
  std::string backing_file;  // as the kernel reports it
};

// Loop devices whose backing file lies at or below `dir` (from /sys/block/loop*/loop/backing_file).
std::vector<LoopInfo> loops_backed_under(const std::string& dir);

// Detaches a loop device (LOOP_CLR_FD); a device that is already free is not an error.
void detach_loop(const std::string& device);

}  // namespace cowbench
