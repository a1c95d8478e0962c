// Byte sources that layer blobs are read from: a file, a memory buffer, a member of a tar archive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cowbench::img {

// A forward-only stream of bytes. read() fills up to n bytes and returns how many it gave;
// 0 means the end. Errors throw cowbench::Error naming describe().
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual size_t read(void* buf, size_t n) = 0;
  // What is being read, for messages ("/img/blobs/sha256/ab12…", "image.tar member x/layer.tar").
  virtual std::string describe() const = 0;
  // The bytes it will give, when known before reading (a tar member's header says it); -1 if not.
  virtual int64_t size() const noexcept { return -1; }
};

// Reads the file at `path`; kNotFound when it does not exist.
std::unique_ptr<ByteSource> open_file_source(const std::string& path);

// Reads `data`, which must outlive the source.
std::unique_ptr<ByteSource> memory_source(std::string_view data, std::string name = "memory");

// Reads the whole source into a string; kInvalidInput when it holds more than `max` bytes.
std::string read_all(ByteSource& src, size_t max);

}  // namespace cowbench::img
