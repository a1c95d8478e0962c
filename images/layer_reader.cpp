// Reads one layer blob as hostile input (see layer_reader.h).
#include "images/layer_reader.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <limits>

namespace cowbench::img {

const char* compression_name(Compression c) noexcept {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    case Compression::kAuto: return "auto";
  }
  return "?";
}

char entry_type_char(EntryType t) noexcept {
  switch (t) {
    case EntryType::kFile: return 'f';
    case EntryType::kDir: return 'd';
    case EntryType::kSymlink: return 'l';
    case EntryType::kHardlink: return 'h';
    case EntryType::kChar: return 'c';
    case EntryType::kBlock: return 'b';
    case EntryType::kFifo: return 'p';
  }
  return '?';
}

// One libarchive reader plus the state of the callback that feeds it. The outer stage reads
// the blob from `src`; the inner stage reads the outer stage's decompressed bytes. Each
// hashes exactly the bytes it hands to its reader. Callbacks never let an exception cross
// libarchive's C frames: they park it in `error` and return -1.
struct LayerReader::Stage {
  ::archive* a = nullptr;
  Sha256 hash;
  std::exception_ptr error;
  // Outer: the blob and its expected size.
  std::unique_ptr<ByteSource> src;
  std::vector<char> buf;
  int64_t expect_size = -1;
  std::string name;
  // Inner: the stage it reads from, and the stream limit.
  Stage* from = nullptr;
  uint64_t max_bytes = 0;
  bool from_failed = false;

  ~Stage() {
    if (a) archive_read_free(a);
  }

  // Blob bytes, hashed and counted; throws on a read error or more bytes than described.
  size_t pull_blob(const void** out) {
    size_t n = src->read(buf.data(), buf.size());
    hash.update(buf.data(), n);
    if (expect_size >= 0 && hash.size() > static_cast<uint64_t>(expect_size))
      fail(Errc::kInvalidInput, "layer {}: size mismatch: the blob is larger than the {} bytes its descriptor says", name,
           expect_size);
    *out = buf.data();
    return n;
  }

  // Decompressed bytes from `from`, hashed and counted; -1 when `from` failed.
  ssize_t pull_decompressed(const void** out) {
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(from->a, out, &size, &offset);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
      from_failed = true;
      return -1;
    }
    hash.update(*out, size);
    if (hash.size() > max_bytes)
      fail(Errc::kInvalidInput, "layer {}: the uncompressed layer is larger than the limit of {} bytes", name, max_bytes);
    return static_cast<ssize_t>(size);
  }
};

namespace {

la_ssize_t read_blob_cb(::archive* a, void* client, const void** out) {
  auto* s = static_cast<LayerReader::Stage*>(client);
  try {
    return static_cast<la_ssize_t>(s->pull_blob(out));
  } catch (...) {
    s->error = std::current_exception();
    archive_set_error(a, EIO, "blob read failed");
    return -1;
  }
}

la_ssize_t read_decompressed_cb(::archive* a, void* client, const void** out) {
  auto* s = static_cast<LayerReader::Stage*>(client);
  try {
    ssize_t n = s->pull_decompressed(out);
    if (n < 0) archive_set_error(a, EIO, "decompression failed");
    return n;
  } catch (...) {
    s->error = std::current_exception();
    archive_set_error(a, EIO, "decompressed read failed");
    return -1;
  }
}

// A name short enough for an error message.
std::string shown(const std::string& raw) {
  if (raw.size() <= 200) return raw;
  return raw.substr(0, 160) + fmt::format("…({} bytes)", raw.size());
}

Compression detected_filter(::archive* a) {
  for (int i = 0; i < archive_filter_count(a); ++i) {
    int code = archive_filter_code(a, i);
    if (code == ARCHIVE_FILTER_GZIP) return Compression::kGzip;
    if (code == ARCHIVE_FILTER_ZSTD) return Compression::kZstd;
  }
  return Compression::kNone;
}

}  // namespace

LayerReader::LayerReader(std::unique_ptr<ByteSource> src, LayerExpect expect, Limits limits)
    : expect_(std::move(expect)), limits_(limits), outer_(std::make_unique<Stage>()), inner_(std::make_unique<Stage>()) {
  if (expect_.name.empty()) expect_.name = src->describe();
  outer_->src = std::move(src);
  outer_->buf.resize(256 * 1024);
  outer_->expect_size = expect_.size;
  outer_->name = expect_.name;
  inner_->from = outer_.get();
  inner_->max_bytes = limits_.max_layer_bytes;
  inner_->name = expect_.name;

  // Outer: the blob through gzip/zstd (or none) as one raw stream.
  outer_->a = archive_read_new();
  inner_->a = archive_read_new();
  if (!outer_->a || !inner_->a) fail(Errc::kFailure, "libarchive: out of memory");
  archive_read_support_format_raw(outer_->a);
  archive_read_support_filter_gzip(outer_->a);
  archive_read_support_filter_zstd(outer_->a);
  if (archive_read_open(outer_->a, outer_.get(), nullptr, read_blob_cb, nullptr) != ARCHIVE_OK)
    fail_archive(outer_->a, "at its start");
  archive_entry* ae = nullptr;
  int r = archive_read_next_header(outer_->a, &ae);
  if (r == ARCHIVE_EOF) fail(Errc::kInvalidInput, "layer {}: the blob is empty", expect_.name);
  if (r != ARCHIVE_OK) fail_archive(outer_->a, "at its start");
  detected_ = detected_filter(outer_->a);
  if (expect_.compression != Compression::kAuto && expect_.compression != detected_)
    fail(Errc::kInvalidInput, "layer {}: its media type says {} but the blob is {}", expect_.name,
         compression_name(expect_.compression), compression_name(detected_));

  // Inner: the decompressed bytes as tar (or nothing at all: an empty layer).
  archive_read_support_format_tar(inner_->a);
  archive_read_support_format_empty(inner_->a);
  if (archive_read_open(inner_->a, inner_.get(), nullptr, read_decompressed_cb, nullptr) != ARCHIVE_OK)
    fail_archive(inner_->a, "at its start");
}

LayerReader::~LayerReader() = default;

void LayerReader::fail_entry(const std::string& path, Errc code, const std::string& message) const {
  throw Error(code, fmt::format("layer {} entry '{}': {}", expect_.name, shown(path), message));
}

void LayerReader::rethrow_pending() {
  if (outer_->error) std::rethrow_exception(outer_->error);
  if (inner_->error) std::rethrow_exception(inner_->error);
}

void LayerReader::fail_archive(::archive* a, const std::string& where) {
  rethrow_pending();
  ::archive* culprit = (a == inner_->a && inner_->from_failed) ? outer_->a : a;
  const char* msg = archive_error_string(culprit);
  fail(Errc::kInvalidInput, "layer {}: corrupt or truncated {}: {}", expect_.name, where, msg ? msg : "unknown error");
}

uint64_t LayerReader::max_expansion() const noexcept {
  if (expect_.size < 0) return std::numeric_limits<uint64_t>::max();
  // The most one compressed byte can expand to: deflate's 1032:1, zstd's RLE blocks 32768:1.
  uint64_t ratio = detected_ == Compression::kGzip ? 1032 : detected_ == Compression::kZstd ? 32768 : 1;
  uint64_t size = static_cast<uint64_t>(expect_.size);
  return size > std::numeric_limits<uint64_t>::max() / ratio ? std::numeric_limits<uint64_t>::max() : size * ratio;
}

std::string LayerReader::normalize(const char* raw, const std::string& what, const std::string& entry) const {
  std::string_view s(raw);
  if (s.empty()) fail_entry(entry, Errc::kInvalidInput, fmt::format("empty {}", what));
  if (s.size() > limits_.max_path)
    fail_entry(entry, Errc::kInvalidInput, fmt::format("{} is {} bytes long (limit {})", what, s.size(), limits_.max_path));
  if (s.front() == '/') fail_entry(entry, Errc::kInvalidInput, fmt::format("absolute {} '{}'", what, shown(raw)));
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    size_t slash = s.find('/');
    std::string_view comp = s.substr(0, slash);
    s = slash == std::string_view::npos ? std::string_view{} : s.substr(slash + 1);
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") fail_entry(entry, Errc::kInvalidInput, fmt::format("{} '{}' has a '..' component", what, shown(raw)));
    if (comp.size() > limits_.max_component)
      fail_entry(entry, Errc::kInvalidInput,
                 fmt::format("{} has a component of {} bytes (limit {})", what, comp.size(), limits_.max_component));
    if (!out.empty()) out += '/';
    out.append(comp);
  }
  return out;
}

bool LayerReader::next(TarEntry& e) {
  if (at_end_) return false;
  archive_entry* ae = nullptr;
  int r = archive_read_next_header(inner_->a, &ae);
  if (r == ARCHIVE_EOF) {
    at_end_ = true;
    return false;
  }
  if (r < ARCHIVE_WARN)
    fail_archive(inner_->a, current_.empty() ? "at the first entry" : "after entry '" + shown(current_) + "'");
  rethrow_pending();
  if (++entries_ > limits_.max_entries)
    fail(Errc::kInvalidInput, "layer {}: more than {} entries", expect_.name, limits_.max_entries);

  const char* raw = archive_entry_pathname(ae);
  if (!raw) raw = archive_entry_pathname_utf8(ae);
  if (!raw) fail(Errc::kInvalidInput, "layer {}: an entry after '{}' has no path", expect_.name, shown(current_));
  current_ = raw;
  e = TarEntry{};
  e.path = normalize(raw, "path", current_);

  if (const char* hl = archive_entry_hardlink(ae)) {
    e.type = EntryType::kHardlink;
    e.link = normalize(hl, "hard link target", current_);
    if (e.link.empty()) fail_entry(current_, Errc::kInvalidInput, "hard link to the root");
  } else {
    switch (archive_entry_filetype(ae)) {
      case AE_IFREG: e.type = EntryType::kFile; break;
      case AE_IFDIR: e.type = EntryType::kDir; break;
      case AE_IFLNK: {
        e.type = EntryType::kSymlink;
        const char* t = archive_entry_symlink(ae);
        if (!t) t = archive_entry_symlink_utf8(ae);
        if (!t || !*t) fail_entry(current_, Errc::kInvalidInput, "symlink without a target");
        e.link = t;
        if (e.link.size() > limits_.max_path)
          fail_entry(current_, Errc::kInvalidInput,
                     fmt::format("symlink target is {} bytes long (limit {})", e.link.size(), limits_.max_path));
        break;
      }
      case AE_IFCHR: e.type = EntryType::kChar; break;
      case AE_IFBLK: e.type = EntryType::kBlock; break;
      case AE_IFIFO: e.type = EntryType::kFifo; break;
      default: fail_entry(current_, Errc::kInvalidInput, "unsupported entry type (socket or unknown)");
    }
  }
  if (e.path.empty() && e.type != EntryType::kDir) fail_entry(current_, Errc::kInvalidInput, "the root must be a directory");

  e.mode = archive_entry_perm(ae) & 07777;
  la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
  constexpr la_int64_t kMaxId = 0xfffffffeLL;  // (uid_t)-1 means "no change" to chown
  if (uid < 0 || uid > kMaxId || gid < 0 || gid > kMaxId)
    fail_entry(current_, Errc::kInvalidInput, fmt::format("owner {}:{} is out of range", uid, gid));
  e.uid = static_cast<uint32_t>(uid);
  e.gid = static_cast<uint32_t>(gid);
  e.mtime.tv_sec = archive_entry_mtime(ae);
  e.mtime.tv_nsec = archive_entry_mtime_nsec(ae);
  if (e.mtime.tv_nsec < 0 || e.mtime.tv_nsec >= 1'000'000'000) e.mtime.tv_nsec = 0;
  e.dev_major = archive_entry_rdevmajor(ae);
  e.dev_minor = archive_entry_rdevminor(ae);

  if (e.type == EntryType::kFile) {
    la_int64_t size = archive_entry_size(ae);
    if (size < 0) fail_entry(current_, Errc::kInvalidInput, fmt::format("negative size {}", size));
    e.size = static_cast<uint64_t>(size);
    if (e.size > limits_.max_entry_size)
      fail_entry(current_, Errc::kInvalidInput,
                 fmt::format("size {} is beyond the limit of {} bytes", e.size, limits_.max_entry_size));
    if (e.size > max_expansion())
      fail_entry(current_, Errc::kInvalidInput,
                 fmt::format("size {} is more than a {}-byte {} blob can hold", e.size, expect_.size,
                             detected_ == Compression::kNone ? "uncompressed" : compression_name(detected_)));
  }

  archive_entry_xattr_reset(ae);
  const char* xname = nullptr;
  const void* xvalue = nullptr;
  size_t xsize = 0;
  while (archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
    if (e.xattrs.size() >= limits_.max_xattrs)
      fail_entry(current_, Errc::kInvalidInput, fmt::format("more than {} extended attributes", limits_.max_xattrs));
    std::string n = xname ? xname : "";
    if (n.empty() || n.size() > 255) fail_entry(current_, Errc::kInvalidInput, "an extended attribute with a bad name");
    if (xsize > limits_.max_xattr_value)
      fail_entry(current_, Errc::kInvalidInput,
                 fmt::format("extended attribute {} is {} bytes (limit {})", n, xsize, limits_.max_xattr_value));
    e.xattrs.emplace_back(std::move(n), std::string(static_cast<const char*>(xvalue), xsize));
  }
  return true;
}

void LayerReader::read_data(const std::function<void(uint64_t, const char*, size_t)>& fn) {
  const void* buf = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(inner_->a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return;
    if (r < ARCHIVE_WARN) fail_archive(inner_->a, "in entry '" + shown(current_) + "'");
    rethrow_pending();
    if (offset < 0) fail_entry(current_, Errc::kInvalidInput, "corrupt sparse map");
    if (size > 0) fn(static_cast<uint64_t>(offset), static_cast<const char*>(buf), size);
  }
}

LayerDigests LayerReader::finish() {
  TarEntry e;
  while (next(e)) {
  }
  // What the tar reader did not need (the zero blocks after its end) still counts for the
  // diff_id, and what the decompressor did not need still counts for the digest.
  const void* out = nullptr;
  for (;;) {
    ssize_t n = inner_->pull_decompressed(&out);
    if (n == 0) break;
    if (n < 0) fail_archive(outer_->a, "at its end");
  }
  while (outer_->pull_blob(&out) > 0) {
  }

  LayerDigests d;
  d.size = outer_->hash.size();
  d.digest = outer_->hash.digest();
  d.uncompressed_size = inner_->hash.size();
  d.diff_id = inner_->hash.digest();
  d.compression = detected_;
  if (expect_.size >= 0 && d.size != static_cast<uint64_t>(expect_.size))
    fail(Errc::kInvalidInput, "layer {}: size mismatch: its descriptor says {} bytes, the blob has {}", expect_.name,
         expect_.size, d.size);
  if (!expect_.digest.empty() && d.digest != expect_.digest)
    fail(Errc::kInvalidInput, "layer {}: digest mismatch: expected {}, got {}", expect_.name, expect_.digest, d.digest);
  if (!expect_.diff_id.empty() && d.diff_id != expect_.diff_id)
    fail(Errc::kInvalidInput, "layer {}: diff_id mismatch: the config says {}, the uncompressed layer is {}", expect_.name,
         expect_.diff_id, d.diff_id);
  return d;
}

}  // namespace cowbench::img
