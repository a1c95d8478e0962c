// Layer and image builders for the image tests and the fuzz corpus: valid layers, and each hostile case.
#pragma once

#include <string>
#include <vector>

#include "images/layer_reader.h"
#include "images/layout_writer.h"

namespace cowbench::test {

// A TarEntry in one line. type: f d l h c b p; `link` is the symlink/hard link target.
img::TarEntry tar_entry(std::string path, char type = 'f', uint32_t mode = 0644, std::string link = "");

// One layer: entries with their file contents (ignored for non-files).
struct LayerSpec {
  std::vector<std::pair<img::TarEntry, std::string>> entries;
  LayerSpec& file(std::string path, std::string content, uint32_t mode = 0644, uint32_t uid = 0, uint32_t gid = 0);
  LayerSpec& dir(std::string path, uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0);
  LayerSpec& symlink(std::string path, std::string target);
  LayerSpec& hardlink(std::string path, std::string target);
  LayerSpec& whiteout(std::string path);  // ".wh.NAME" next to NAME
  LayerSpec& opaque(std::string dir);     // "DIR/.wh..wh..opq"
  LayerSpec& add(img::TarEntry e, std::string content = "");
};

// The layer's blob bytes (written through img::LayerWriter); `digests` receives digest,
// diff_id and sizes when not null.
std::string layer_blob(const LayerSpec& spec, img::Compression c = img::Compression::kNone,
                       img::LayerWriter::Result* digests = nullptr);

// Writes an OCI layout of `layers` into dir (empty or absent); returns the manifest digest.
std::string write_oci_image(const std::string& dir, const std::vector<LayerSpec>& layers,
                            img::Compression c = img::Compression::kGzip, const std::string& ref_name = "latest");

// A raw 512-byte ustar header (checksum filled in): for headers libarchive would not write.
// size_field: the 12-byte size field as given (octal digits, or base-256 bytes).
std::string raw_tar_header(const std::string& name, char typeflag, const std::string& size_field);

// One hostile layer: what it is, its blob (uncompressed unless said), what it expects the
// descriptor to be, and a piece of the error message it must cause.
struct HostileSample {
  std::string name;
  std::string blob;
  img::LayerExpect expect;  // digest / size / diff_id expectations (name "hostile-<name>")
  std::string error;        // substring of the error message
  std::string entry;        // the entry the message must name ("" when none)
};
// `outside` is an absolute path next to the apply root (the sentinel): symlinks and links
// in the samples aim at it.
std::vector<HostileSample> hostile_samples(const std::string& outside);

}  // namespace cowbench::test
