// Byte sources (see blob.h).
#include "images/blob.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/fd.h"

namespace cowbench::img {
namespace {

class FileSource final : public ByteSource {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {
    fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) {
      if (errno == ENOENT) fail(Errc::kNotFound, "{} does not exist", path_);
      fail_sys("open {}", path_);
    }
    posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  size_t read(void* buf, size_t n) override {
    for (;;) {
      ssize_t r = ::read(fd_.get(), buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) fail_sys("read {}", path_);
    }
  }
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  Fd fd_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string_view data, std::string name) : data_(data), name_(std::move(name)) {}
  size_t read(void* buf, size_t n) override {
    n = std::min(n, data_.size());
    std::memcpy(buf, data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }
  std::string describe() const override { return name_; }

 private:
  std::string_view data_;
  std::string name_;
};

}  // namespace

std::unique_ptr<ByteSource> open_file_source(const std::string& path) { return std::make_unique<FileSource>(path); }

std::unique_ptr<ByteSource> memory_source(std::string_view data, std::string name) {
  return std::make_unique<MemorySource>(data, std::move(name));
}

std::string read_all(ByteSource& src, size_t max) {
  std::string out;
  char buf[65536];
  while (size_t n = src.read(buf, sizeof buf)) {
    if (out.size() + n > max) fail(Errc::kInvalidInput, "{} is larger than {} bytes", src.describe(), max);
    out.append(buf, n);
  }
  return out;
}

}  // namespace cowbench::img
