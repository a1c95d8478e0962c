// Loop devices: attach an image file (RAII, direct I/O where the backing file system allows it), find and detach the ones backed by files in a directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"

namespace cowbench {

// How a loop device reaches its backing file.
//  - kDirectIo: LO_FLAGS_DIRECT_IO, the image file is read and written with O_DIRECT, so a
//    block read through the file system on the device is cached once (by that file system),
//    not a second time as a page of the image file, and writes are not absorbed by the
//    host's page cache — as on a real disk.
//  - kBuffered: the kernel's default; the image file's pages sit in the host's page cache.
enum class LoopMode { kDirectIo, kBuffered };
// "direct-io" or "buffered".
const char* loop_mode_name(LoopMode m) noexcept;

// A loop device attached to an image file; detached (autoclear) when the object dies.
class LoopDevice {
 public:
  // Attaches `image` to a free loop device (LOOP_CTL_GET_FREE + LOOP_CONFIGURE, with
  // LO_FLAGS_AUTOCLEAR so that the kernel detaches it once the last user goes away). The
  // object keeps the device open until close(): autoclear acts on the last close.
  // The device's logical block size is loop_block_size(image) in either mode.
  // With kDirectIo (the default) the device asks for LO_FLAGS_DIRECT_IO; the mode it got is
  // read back from /sys/block/loopN/loop/dio. Where direct I/O is not possible (the backing
  // file system refuses O_DIRECT, as ramfs does, or the kernel leaves it off) the device is
  // buffered: mode() says so, fallback_reason() says why, and a warning names the device,
  // the backing file system and the reason (once per backing file system and process).
  // Throws kUnsupported when the host has no loop devices, naming why.
  explicit LoopDevice(const std::string& image, LoopMode mode = LoopMode::kDirectIo);
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  LoopDevice(LoopDevice&& o) noexcept;
  LoopDevice& operator=(LoopDevice&&) = delete;
  ~LoopDevice();

  const std::string& path() const noexcept { return path_; }  // /dev/loopN
  // Whether the kernel really uses direct I/O for this device (its loop/dio attribute).
  bool direct_io() const noexcept { return direct_io_; }
  // "direct-io" or "buffered": the mode the kernel uses, not the one asked for.
  std::string mode() const { return loop_mode_name(direct_io_ ? LoopMode::kDirectIo : LoopMode::kBuffered); }
  // Why the device is buffered although direct I/O was asked for; empty otherwise.
  const std::string& fallback_reason() const noexcept { return fallback_; }
  // The file system holding the image ("ext4", "tmpfs", ...).
  const std::string& backing_fs() const noexcept { return backing_fs_; }
  // The logical block size the device was configured with, bytes.
  uint32_t block_size() const noexcept { return block_size_; }

  // Detaches now; throws on failure (the destructor only logs).
  void close();

 private:
  std::string path_;
  Fd fd_;  // held open: closing the last fd of an autoclear device detaches it
  bool direct_io_ = false;
  std::string fallback_, backing_fs_;
  uint32_t block_size_ = 0;
};

// The logical block size a LoopDevice over `image` gets (in both modes, so that a file
// system made for one mode mounts in the other): the backing file system's direct-I/O offset
// alignment (statx STATX_DIOALIGN), else the logical block size of the block device under
// it, at least 512. A file system made on the image must use sectors at least this large.
// Throws when `image` cannot be opened.
uint32_t loop_block_size(const std::string& image);

struct LoopInfo {
  std::string device;        // /dev/loopN
  std::string backing_file;  // as the kernel reports it
};

// Loop devices whose backing file lies at or below `dir` (from /sys/block/loop*/loop/backing_file).
std::vector<LoopInfo> loops_backed_under(const std::string& dir);

// Detaches a loop device (LOOP_CLR_FD); a device that is already free is not an error.
void detach_loop(const std::string& device);

}  // namespace cowbench
