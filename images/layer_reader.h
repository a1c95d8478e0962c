// Reads one layer blob (tar, tar+gzip, tar+zstd) as hostile input: checked entries, verified digests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "images/blob.h"
#include "images/digest.h"

struct archive;

namespace cowbench::img {

enum class Compression { kNone, kGzip, kZstd, kAuto };
const char* compression_name(Compression c) noexcept;

// Bounds on what one layer may hold; anything beyond is refused as hostile input.
struct Limits {
  uint64_t max_entry_size = uint64_t{64} << 30;   // one file's size
  uint64_t max_layer_bytes = uint64_t{1} << 40;   // the uncompressed tar stream
  uint64_t max_entries = 10'000'000;
  size_t max_path = 4096;                         // a whole path (also symlink targets)
  size_t max_component = 255;                     // one path component
  size_t max_xattrs = 128;                        // extended attributes of one entry
  size_t max_xattr_value = 65536;                 // one value (the kernel's XATTR_SIZE_MAX)
};

enum class EntryType { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo };
char entry_type_char(EntryType t) noexcept;  // f d l h c b p

// One tar entry, checked and normalised: `path` is relative, without "." or empty components
// and without ".." ("" is the root); hard link targets are normalised the same way.
struct TarEntry {
  std::string path;
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits, setuid/setgid/sticky included
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // regular files: the logical size (sparse holes included)
  timespec mtime{};
  std::string link;   // symlink target (verbatim) or hard link target (normalised)
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name → value
};

// What the image says about a layer blob; empty / -1 fields are not checked.
struct LayerExpect {
  std::string name;                       // for messages: the layer digest or archive member
  std::string digest;                     // the blob's digest (descriptor)
  int64_t size = -1;                      // the blob's size (descriptor)
  std::string diff_id;                    // digest of the uncompressed tar (config rootfs.diff_ids)
  Compression compression = Compression::kAuto;  // from the media type; kAuto detects
};

// What finish() measured.
struct LayerDigests {
  std::string digest;   // sha256 of the blob as stored
  uint64_t size = 0;
  std::string diff_id;  // sha256 of the uncompressed tar stream
  uint64_t uncompressed_size = 0;
  Compression compression = Compression::kNone;  // as detected
};

// Reads a layer blob in one pass: the blob bytes are hashed (digest, size) as libarchive
// decompresses them ("raw" format), the decompressed bytes are hashed (diff_id) as a second
// libarchive reader parses them as tar. Usage: while (next(e)) { read_data(...) }; finish().
// Every error throws cowbench::Error naming the layer and, where there is one, the entry:
// kInvalidInput for hostile or corrupt input (bad paths, sizes beyond Limits or beyond what
// the blob can hold, truncated or corrupt streams, digest / size / diff_id mismatches).
// Digests are only known at the end: a consumer must treat what it wrote as unverified
// until finish() returns.
class LayerReader {
 public:
  LayerReader(std::unique_ptr<ByteSource> src, LayerExpect expect, Limits limits = {});
  LayerReader(const LayerReader&) = delete;
  LayerReader& operator=(const LayerReader&) = delete;
  ~LayerReader();

  const std::string& name() const noexcept { return expect_.name; }
  const Limits& limits() const noexcept { return limits_; }

  // The next entry; false after the last one.
  bool next(TarEntry& e);
  // The data of the current regular file: fn(offset, data, n) per block, offsets increasing
  // (holes of sparse files are skipped). Data not read is skipped by next().
  void read_data(const std::function<void(uint64_t offset, const char* data, size_t n)>& fn);
  // After next() returned false: reads what is left of both streams and checks the digest,
  // size and diff_id against the expectation.
  LayerDigests finish();

  // Throws Error(code, "layer NAME entry 'PATH': MESSAGE").
  [[noreturn]] void fail_entry(const std::string& path, Errc code, const std::string& message) const;

  struct Stage;  // one libarchive reader and its hashing callback state

 private:
  [[noreturn]] void fail_archive(::archive* a, const std::string& where);
  void rethrow_pending();
  std::string normalize(const char* raw, const std::string& what, const std::string& entry) const;
  uint64_t max_expansion() const noexcept;

  LayerExpect expect_;
  Limits limits_;
  std::unique_ptr<Stage> outer_;  // blob → decompressed bytes
  std::unique_ptr<Stage> inner_;  // decompressed bytes → tar entries
  Compression detected_ = Compression::kNone;
  uint64_t entries_ = 0;
  std::string current_;           // path of the current entry, for messages
  bool at_end_ = false;
};

}  // namespace cowbench::img
