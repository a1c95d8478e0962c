// Writes OCI image layouts: layer blobs (tar through libarchive, gzip/zstd, both digests), config, manifest, index.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "images/image.h"
#include "images/layer_reader.h"

struct archive;

namespace cowbench::img {

// The media type of an OCI layer with compression c (kAuto is not a compression).
std::string layer_media_type(Compression c);

// Writes one layer blob to a file: entries become a pax tar (libarchive) whose bytes are
// hashed (diff_id) and fed to a second libarchive writer that compresses them ("raw"
// format + gzip/zstd filter, no timestamps) and whose output is hashed (digest). The same
// entries give the same bytes. Paths are written as given (tests use that to make hostile
// layers). Not copyable; the destructor discards an unfinished blob's file descriptor.
class LayerWriter {
 public:
  LayerWriter(const std::string& path, Compression c, int level = 1);
  LayerWriter(const LayerWriter&) = delete;
  LayerWriter& operator=(const LayerWriter&) = delete;
  ~LayerWriter();

  // Writes the header of `e` (e.path verbatim; "" is written as "./"). A regular file's
  // e.size bytes must follow through data() before the next add().
  void add(const TarEntry& e);
  void data(const void* p, size_t n);
  // add() + data() for a whole small file (e.size is set from content).
  void add_file(TarEntry e, std::string_view content);

  struct Result {
    std::string digest, diff_id, media_type;
    uint64_t size = 0, uncompressed_size = 0;
  };
  Result finish();
  // The file the blob is written to.
  const std::string& path() const noexcept { return path_; }

  // libarchive write callbacks (public for the C trampolines).
  struct Sink;

 private:
  std::unique_ptr<Sink> sink_;
  ::archive* tar_ = nullptr;
  Compression compression_;
  std::string path_;
};

// Writes an OCI image layout (oci-layout, index.json, blobs/sha256/…) into `dir`, which is
// created and must be empty.
class LayoutWriter {
 public:
  explicit LayoutWriter(std::string dir);

  const std::string& dir() const noexcept { return dir_; }
  // A writer for the next layer; hand it back to add_layer() when its entries are written.
  std::unique_ptr<LayerWriter> new_layer(Compression c, int level = 1);
  // Finishes the layer and moves it into blobs/; returns its descriptor (diff_id recorded).
  LayerWriter::Result add_layer(LayerWriter& layer);
  // Stores a blob by its digest.
  Descriptor put_blob(std::string_view data, const std::string& media_type);
  // Writes the config (rootfs.diff_ids set from the layers added), the manifest and
  // index.json with one entry for `platform` (annotated with `ref_name` when not empty).
  // Returns the manifest's descriptor.
  Descriptor finish(nlohmann::json config, const Platform& platform, const std::string& ref_name);

 private:
  std::string dir_;
  std::vector<nlohmann::json> layers_;
  std::vector<std::string> diff_ids_;
  int next_tmp_ = 0;
};

}  // namespace cowbench::img
