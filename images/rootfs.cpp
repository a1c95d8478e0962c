// One-layer images from a rootfs tarball or a directory (see rootfs.h).
#include "images/rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "images/dir_layer.h"
#include "images/layout_writer.h"

namespace cowbench::img {
namespace {

void require(const std::string& path, bool dir, const std::string& ref) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(Errc::kInvalidInput, "{}: {} does not exist", ref, path);
    fail(Errc::kInvalidInput, "{}: cannot stat {}: {}", ref, path, std::strerror(errno));
  }
  if (dir && !S_ISDIR(st.st_mode)) fail(Errc::kInvalidInput, "{}: {} is not a directory", ref, path);
  if (!dir && !S_ISREG(st.st_mode)) fail(Errc::kInvalidInput, "{}: {} is not a regular file", ref, path);
}

// The image of one layer stored in `file`, whose digests were measured.
Image one_layer_image(const ImageRef& ref, const std::string& format, const std::string& location,
                      const std::string& file, const LayerDigests& d) {
  Image img;
  img.ref = ref;
  img.format = format;
  img.location = location;
  img.platform = host_platform();
  LayerInfo l;
  l.compression = d.compression;
  l.blob = Descriptor{layer_media_type(d.compression), d.digest, static_cast<int64_t>(d.size)};
  l.diff_id = d.diff_id;
  l.chain_id = chain_ids({d.diff_id}).front();
  l.source = file;
  img.layers.push_back(l);
  img.config = {{"architecture", img.platform.architecture},
                {"os", img.platform.os},
                {"config", nlohmann::json::object()},
                {"rootfs", {{"type", "layers"}, {"diff_ids", {d.diff_id}}}}};
  if (!img.platform.variant.empty()) img.config["variant"] = img.platform.variant;
  std::string config_text = img.config.dump();
  img.config_digest = sha256_digest(config_text);
  // The manifest an OCI layout of this image would have: names the image in caches.
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config",
       {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", img.config_digest}, {"size", config_text.size()}}},
      {"layers", {{{"mediaType", l.blob.media_type}, {"digest", l.blob.digest}, {"size", l.blob.size}}}}};
  std::string manifest_text = manifest.dump();
  img.manifest = Descriptor{"application/vnd.oci.image.manifest.v1+json", sha256_digest(manifest_text),
                            static_cast<int64_t>(manifest_text.size())};
  img.open_blob = [](const LayerInfo& layer) { return open_file_source(layer.source); };
  return img;
}

// Reads the whole tar once: every entry checked, digests measured.
LayerDigests measure(const std::string& file, const std::string& name) {
  LayerExpect e;
  e.name = name;
  LayerReader r(open_file_source(file), e);
  TarEntry entry;
  while (r.next(entry)) {
  }
  return r.finish();
}

}  // namespace

Image open_rootfs_image(const ImageRef& ref) {
  require(ref.path, false, ref.text);
  LayerDigests d = measure(ref.path, ref.path);
  return one_layer_image(ref, "rootfs", ref.path, ref.path, d);
}

Image open_dir_image(const ImageRef& ref, const std::string& cache_dir) {
  require(ref.path, true, ref.text);
  if (cache_dir.empty()) fail(Errc::kInvalidInput, "{}: directory images need a cache directory", ref.text);
  std::string abs = ref.path;
  if (char* real = ::realpath(ref.path.c_str(), nullptr)) {
    abs = real;
    ::free(real);
  }
  std::string parent = path_join(cache_dir, "dir");
  make_dirs(parent);
  std::string file = path_join(parent, sha256_digest(abs).substr(7, 32) + ".tar");
  std::string tmp = fmt::format("{}.tmp-{}", file, ::getpid());
  LayerDigests d;
  try {
    LayerWriter w(tmp, Compression::kNone);
    DirLayerOptions o;
    o.devices = DevicePolicy::kAllow;  // the import's policy decides
    write_dir_layer(ref.path, w, o);
    LayerWriter::Result r = w.finish();
    d.digest = r.digest;
    d.size = r.size;
    d.diff_id = r.diff_id;
    d.uncompressed_size = r.uncompressed_size;
    d.compression = Compression::kNone;
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    fail_sys("rename {} to {}", tmp, file);
  }
  return one_layer_image(ref, "dir", abs, file, d);
}

}  // namespace cowbench::img
