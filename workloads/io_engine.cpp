// Bulk file I/O through io_uring (see io_engine.h).
#include "workloads/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace cowbench::wl {
namespace {
constexpr size_t kChunk = 128 * 1024;
}

IoEngine::IoEngine(unsigned depth) : depth_(depth) {
  auto* ring = new io_uring{};
  if (io_uring_queue_init(depth, ring, 0) != 0) {
    delete ring;
    return;  // no io_uring here: syscalls it is
  }
  ring_ = ring;
  // Probe the opcodes instead of assuming them.
  if (io_uring_probe* p = io_uring_get_probe_ring(ring_)) {
    has_read_ = io_uring_opcode_supported(p, IORING_OP_READ);
    has_write_ = io_uring_opcode_supported(p, IORING_OP_WRITE);
    has_fsync_ = io_uring_opcode_supported(p, IORING_OP_FSYNC);
    io_uring_free_probe(p);
  }
  if (!has_read_ || !has_write_) {
    io_uring_queue_exit(ring_);
    delete ring_;
    ring_ = nullptr;
  }
}

IoEngine::~IoEngine() {
  if (ring_) {
    io_uring_queue_exit(ring_);
    delete ring_;
  }
}

int IoEngine::wait_one(int64_t* user_data) {
  io_uring_cqe* cqe = nullptr;
  int rc;
  while ((rc = io_uring_wait_cqe(ring_, &cqe)) == -EINTR) {
  }
  if (rc < 0) fail_errno(-rc, "io_uring wait");
  int res = cqe->res;
  *user_data = static_cast<int64_t>(cqe->user_data);
  io_uring_cqe_seen(ring_, cqe);
  return res;
}

uint64_t IoEngine::read_file(const std::string& path, const std::function<void(const char*, size_t)>& sink) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail_sys("open {}", path);
  if (!ring_) {
    std::vector<char> buf(kChunk);
    uint64_t total = 0;
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_sys("read {}", path);
      if (n == 0) break;
      sink(buf.data(), static_cast<size_t>(n));
      total += static_cast<uint64_t>(n);
    }
    return total;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) fail_sys("stat {}", path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const size_t nchunks = static_cast<size_t>((size + kChunk - 1) / kChunk);
  std::vector<std::vector<char>> bufs(std::min<size_t>(nchunks, depth_), std::vector<char>(kChunk));
  std::vector<size_t> got(nchunks, 0);
  // Chunks complete out of order; hand them to sink in order as the front completes.
  std::vector<bool> done(nchunks, false);
  size_t next_submit = 0, next_sink = 0, in_flight = 0;
  auto submit = [&](size_t idx, size_t already) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_);
    auto& b = bufs[idx % bufs.size()];
    io_uring_prep_read(sqe, fd.get(), b.data() + already, static_cast<unsigned>(kChunk - already),
                       idx * kChunk + already);
    io_uring_sqe_set_data64(sqe, idx);
    ++in_flight;
  };
  uint64_t total = 0;
  while (next_sink < nchunks) {
    // Keep the ring full, without overrunning buffers not yet handed to sink.
    while (next_submit < nchunks && in_flight < depth_ && next_submit < next_sink + bufs.size()) submit(next_submit++, 0);
    io_uring_submit(ring_);
    int64_t idx = 0;
    int res = wait_one(&idx);
    --in_flight;
    size_t i = static_cast<size_t>(idx);
    if (res == -EAGAIN || res == -EINTR) {
      submit(i, got[i]);
      continue;
    }
    if (res < 0) fail_errno(-res, "read {}", path);
    got[i] += static_cast<size_t>(res);
    uint64_t want = std::min<uint64_t>(kChunk, size - i * kChunk);
    if (res > 0 && got[i] < want) {
      submit(i, got[i]);  // short read: the rest of the chunk
      continue;
    }
    done[i] = true;
    while (next_sink < nchunks && done[next_sink]) {
      sink(bufs[next_sink % bufs.size()].data(), got[next_sink]);
      total += got[next_sink];
      ++next_sink;
    }
  }
  return total;
}

void IoEngine::write_at(int fd, int64_t offset, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n;
    if (ring_) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring_);
      // Offset -1 writes at the file position: with O_APPEND, at the end.
      io_uring_prep_write(sqe, fd, data.data() + off, static_cast<unsigned>(data.size() - off),
                          offset < 0 ? static_cast<uint64_t>(-1) : static_cast<uint64_t>(offset) + off);
      io_uring_submit(ring_);
      int64_t ud;
      n = wait_one(&ud);
      if (n == -EAGAIN || n == -EINTR) continue;
      if (n < 0) fail_errno(static_cast<int>(-n), "write {}", what);
    } else {
      n = offset < 0 ? ::write(fd, data.data() + off, data.size() - off)
                     : ::pwrite(fd, data.data() + off, data.size() - off, offset + static_cast<int64_t>(off));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) fail_sys("write {}", what);
    }
    if (n == 0) fail(Errc::kFailure, "write {}: no progress", what);
    off += static_cast<size_t>(n);
  }
}

void IoEngine::sync(int fd, bool data_only, const std::string& what) {
  if (ring_ && has_fsync_) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_);
    io_uring_prep_fsync(sqe, fd, data_only ? IORING_FSYNC_DATASYNC : 0);
    io_uring_submit(ring_);
    int64_t ud;
    int res = wait_one(&ud);
    if (res < 0) fail_errno(-res, "fsync {}", what);
    return;
  }
  if ((data_only ? fdatasync(fd) : fsync(fd)) != 0) fail_sys("fsync {}", what);
}

}  // namespace cowbench::wl
