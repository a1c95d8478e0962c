// Bulk file I/O for workloads through io_uring (liburing), falling back to plain syscalls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

struct io_uring;

namespace cowbench::wl {

// A non-copyable io_uring instance; the destructor exits the queue. When io_uring (or one
// of the opcodes it needs) is missing — kernel too old, io_uring_disabled sysctl — every
// call falls back to the equivalent syscall, and engine() says which is in use.
class IoEngine {
 public:
  explicit IoEngine(unsigned depth = 32);
  IoEngine(const IoEngine&) = delete;
  IoEngine& operator=(const IoEngine&) = delete;
  ~IoEngine();

  const char* engine() const noexcept { return ring_ ? "io_uring" : "syscalls"; }

  // Reads the whole file at `path` with up to `depth` reads in flight, handing each chunk to
  // sink in file order. Returns bytes read. Throws naming the path on error.
  uint64_t read_file(const std::string& path, const std::function<void(const char*, size_t)>& sink);

  // Writes data at offset (offset < 0: append at the end, O_APPEND semantics) with short
  // writes and -EAGAIN re-queued. Throws naming `what` on error.
  void write_at(int fd, int64_t offset, std::string_view data, const std::string& what);

  // fsync (or fdatasync) through the ring.
  void sync(int fd, bool data_only, const std::string& what);

 private:
  int wait_one(int64_t* user_data);
  io_uring* ring_ = nullptr;
  unsigned depth_;
  bool has_read_ = false, has_write_ = false, has_fsync_ = false;
};

}  // namespace cowbench::wl
