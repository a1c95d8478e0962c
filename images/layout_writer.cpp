// Writes OCI image layouts (see layout_writer.h).
#include "images/layout_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.h"
#include "common/fs.h"
#include "images/digest.h"

namespace cowbench::img {

std::string layer_media_type(Compression c) {
  switch (c) {
    case Compression::kNone: return "application/vnd.oci.image.layer.v1.tar";
    case Compression::kGzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::kAuto: break;
  }
  fail(Errc::kInvalidInput, "a layer needs a definite compression, not auto");
}

// Where the tar bytes go: hashed for the diff_id, then either straight to the file or into
// the compressing writer, whose output is hashed for the digest and written to the file.
struct LayerWriter::Sink {
  Fd fd;
  std::string path;
  Sha256 tar_hash, blob_hash;
  ::archive* compressor = nullptr;
  std::exception_ptr error;

  void write_blob(const void* p, size_t n) {
    blob_hash.update(p, n);
    const char* c = static_cast<const char*>(p);
    for (size_t done = 0; done < n;) {
      ssize_t w = ::write(fd.get(), c + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail_sys("write {}", path);
      done += static_cast<size_t>(w);
    }
  }
  void write_tar(const void* p, size_t n) {
    tar_hash.update(p, n);
    if (!compressor) return write_blob(p, n);
    if (archive_write_data(compressor, p, n) < 0)
      fail(Errc::kFailure, "compress {}: {}", path, archive_error_string(compressor));
  }
};

namespace {

// A libarchive write callback calling Sink::*Write; an exception is parked in the sink.
template <void (LayerWriter::Sink::*Write)(const void*, size_t)>
la_ssize_t write_cb(::archive* a, void* client, const void* buf, size_t n) {
  auto* s = static_cast<LayerWriter::Sink*>(client);
  try {
    (s->*Write)(buf, n);
    return static_cast<la_ssize_t>(n);
  } catch (...) {
    s->error = std::current_exception();
    archive_set_error(a, EIO, "write failed");
    return -1;
  }
}

}  // namespace

LayerWriter::LayerWriter(const std::string& path, Compression c, int level)
    : sink_(std::make_unique<Sink>()), compression_(c), path_(path) {
  layer_media_type(c);  // rejects kAuto
  sink_->path = path;
  sink_->fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!sink_->fd) fail_sys("create {}", path);
  auto check = [&](::archive* a, int rc, const char* what) {
    if (rc != ARCHIVE_OK) fail(Errc::kFailure, "libarchive: {}: {}", what, archive_error_string(a));
  };
  if (c != Compression::kNone) {
    ::archive* z = sink_->compressor = archive_write_new();
    check(z, archive_write_set_format_raw(z), "raw format");
    std::string opts;
    if (c == Compression::kGzip) {
      check(z, archive_write_add_filter_gzip(z), "gzip");
      opts = fmt::format("gzip:compression-level={},gzip:!timestamp", level);
    } else {
      check(z, archive_write_add_filter_zstd(z), "zstd");
      opts = fmt::format("zstd:compression-level={}", level);
    }
    check(z, archive_write_set_options(z, opts.c_str()), "filter options");
    archive_write_set_bytes_per_block(z, 0);
    check(z, archive_write_open(z, sink_.get(), nullptr, write_cb<&Sink::write_blob>, nullptr), "open compressor");
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, "layer.tar");
    archive_entry_set_filetype(ae, AE_IFREG);
    check(z, archive_write_header(z, ae), "compressor header");
    archive_entry_free(ae);
  }
  tar_ = archive_write_new();
  check(tar_, archive_write_set_format_pax_restricted(tar_), "pax format");
  check(tar_, archive_write_open(tar_, sink_.get(), nullptr, write_cb<&Sink::write_tar>, nullptr), "open tar");
}

LayerWriter::~LayerWriter() {
  if (tar_) archive_write_free(tar_);
  if (sink_ && sink_->compressor) archive_write_free(sink_->compressor);
}

void LayerWriter::add(const TarEntry& e) {
  archive_entry* ae = archive_entry_new();
  archive_entry_set_pathname(ae, e.path.empty() ? "./" : e.path.c_str());
  mode_t type = AE_IFREG;
  switch (e.type) {
    case EntryType::kFile: type = AE_IFREG; break;
    case EntryType::kDir: type = AE_IFDIR; break;
    case EntryType::kSymlink: type = AE_IFLNK; break;
    case EntryType::kHardlink: type = AE_IFREG; break;
    case EntryType::kChar: type = AE_IFCHR; break;
    case EntryType::kBlock: type = AE_IFBLK; break;
    case EntryType::kFifo: type = AE_IFIFO; break;
  }
  archive_entry_set_filetype(ae, type);
  archive_entry_set_perm(ae, e.mode);
  archive_entry_set_uid(ae, e.uid);
  archive_entry_set_gid(ae, e.gid);
  archive_entry_set_mtime(ae, e.mtime.tv_sec, e.mtime.tv_nsec);
  archive_entry_set_size(ae, e.type == EntryType::kFile ? static_cast<la_int64_t>(e.size) : 0);
  if (e.type == EntryType::kSymlink) archive_entry_set_symlink(ae, e.link.c_str());
  if (e.type == EntryType::kHardlink) archive_entry_set_hardlink(ae, e.link.c_str());
  if (e.type == EntryType::kChar || e.type == EntryType::kBlock) archive_entry_set_rdev(ae, makedev(e.dev_major, e.dev_minor));
  for (const auto& [n, v] : e.xattrs) archive_entry_xattr_add_entry(ae, n.c_str(), v.data(), v.size());
  int rc = archive_write_header(tar_, ae);
  archive_entry_free(ae);
  if (sink_->error) std::rethrow_exception(sink_->error);
  if (rc < ARCHIVE_WARN) fail(Errc::kFailure, "write {} entry '{}': {}", path_, e.path, archive_error_string(tar_));
}

void LayerWriter::data(const void* p, size_t n) {
  la_ssize_t w = archive_write_data(tar_, p, n);
  if (sink_->error) std::rethrow_exception(sink_->error);
  if (w < 0 || static_cast<size_t>(w) != n) fail(Errc::kFailure, "write {}: {}", path_, archive_error_string(tar_));
}

void LayerWriter::add_file(TarEntry e, std::string_view content) {
  e.type = EntryType::kFile;
  e.size = content.size();
  add(e);
  if (!content.empty()) data(content.data(), content.size());
}

LayerWriter::Result LayerWriter::finish() {
  auto close = [&](::archive*& a) {
    int rc = archive_write_close(a);
    std::string msg = rc != ARCHIVE_OK && archive_error_string(a) ? archive_error_string(a) : "";
    archive_write_free(a);
    a = nullptr;
    if (sink_->error) std::rethrow_exception(sink_->error);
    if (rc != ARCHIVE_OK) fail(Errc::kFailure, "finish {}: {}", path_, msg);
  };
  close(tar_);
  if (sink_->compressor) close(sink_->compressor);
  if (sink_->fd.close() != 0) fail_sys("close {}", path_);
  Result r;
  r.uncompressed_size = sink_->tar_hash.size();
  r.diff_id = sink_->tar_hash.digest();
  r.size = sink_->blob_hash.size();
  r.digest = sink_->blob_hash.digest();
  r.media_type = layer_media_type(compression_);
  return r;
}

LayoutWriter::LayoutWriter(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_);
  Fd d = open_dir(dir_);
  DIR* ls = fdopendir(d.release());
  if (!ls) fail_sys("opendir {}", dir_);
  bool empty = true;
  while (dirent* de = readdir(ls)) empty = empty && (std::string_view(de->d_name) == "." || std::string_view(de->d_name) == "..");
  closedir(ls);
  if (!empty) fail(Errc::kAlreadyExists, "{} is not empty: an image layout needs an empty directory", dir_);
  make_dirs(path_join(dir_, "blobs/sha256"));
  write_file_atomic(path_join(dir_, "oci-layout"), nlohmann::json{{"imageLayoutVersion", "1.0.0"}}.dump(), 0644, false);
}

std::unique_ptr<LayerWriter> LayoutWriter::new_layer(Compression c, int level) {
  return std::make_unique<LayerWriter>(path_join(dir_, fmt::format("blobs/.layer-{}.tmp", next_tmp_++)), c, level);
}

LayerWriter::Result LayoutWriter::add_layer(LayerWriter& layer) {
  LayerWriter::Result r = layer.finish();
  const std::string& tmp = layer.path();
  std::string dst = path_join(dir_, "blobs/sha256/" + r.digest.substr(7));
  if (::rename(tmp.c_str(), dst.c_str()) != 0) fail_sys("rename {} to {}", tmp, dst);
  layers_.push_back({{"mediaType", r.media_type}, {"digest", r.digest}, {"size", r.size}});
  diff_ids_.push_back(r.diff_id);
  return r;
}

Descriptor LayoutWriter::put_blob(std::string_view data, const std::string& media_type) {
  Descriptor d{media_type, sha256_digest(data), static_cast<int64_t>(data.size())};
  write_file_atomic(path_join(dir_, "blobs/sha256/" + d.digest.substr(7)), data, 0644, false);
  return d;
}

Descriptor LayoutWriter::finish(nlohmann::json config, const Platform& platform, const std::string& ref_name) {
  config["architecture"] = platform.architecture;
  config["os"] = platform.os;
  if (!platform.variant.empty()) config["variant"] = platform.variant;
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids_}};
  Descriptor cfg = put_blob(config.dump(), "application/vnd.oci.image.config.v1+json");
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"config", {{"mediaType", cfg.media_type}, {"digest", cfg.digest}, {"size", cfg.size}}},
                             {"layers", layers_}};
  Descriptor m = put_blob(manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
  nlohmann::json entry = {{"mediaType", m.media_type}, {"digest", m.digest}, {"size", m.size}};
  entry["platform"] = {{"os", platform.os}, {"architecture", platform.architecture}};
  if (!platform.variant.empty()) entry["platform"]["variant"] = platform.variant;
  if (!ref_name.empty()) entry["annotations"] = {{"org.opencontainers.image.ref.name", ref_name}};
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", "application/vnd.oci.image.index.v1+json"},
                          {"manifests", nlohmann::json::array({entry})}};
  write_file_atomic(path_join(dir_, "index.json"), index.dump(), 0644, false);
  return m;
}

}  // namespace cowbench::img
