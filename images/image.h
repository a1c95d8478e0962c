// Images: references (oci:, docker-archive:, synth:, rootfs:, dir:), OCI layouts and docker-archive tarballs, opened and checked.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "images/blob.h"
#include "images/file_index.h"
#include "images/layer_reader.h"

namespace cowbench::img {

// An image reference as the CLI takes it:
//   oci:DIR[:TAG]            an OCI image layout (skopeo copy … oci:, umoci); TAG selects by
//                            the org.opencontainers.image.ref.name annotation
//   docker-archive:FILE      a `docker save` tarball (legacy or docker ≥ 25's OCI-in-tar)
//   synth:PROFILE[@SEED]     a synthetic image (see synth.h), generated into the cache
//   rootfs:FILE              a whole file system in one tar (.tar, .tar.gz, .tar.zst):
//                            one layer (see rootfs.h)
//   dir:PATH                 a directory tree as one layer, packed into the cache (rootfs.h)
struct ImageRef {
  enum class Kind { kOci, kDockerArchive, kSynth, kRootfs, kDir };
  Kind kind = Kind::kSynth;
  std::string path;     // oci: the layout directory; docker-archive, rootfs: the file; dir: the directory
  std::string tag;      // oci: the ref name, "" for the only image (or the platform's)
  std::string profile;  // synth
  uint64_t seed = 1;    // synth
  std::string text;     // as given
};

// Throws kInvalidInput naming the reference and the accepted forms; for rootfs: and dir:
// also when the file / directory does not exist (or is of the other kind), before any work.
ImageRef parse_ref(const std::string& text);

struct Platform {
  std::string os = "linux";
  std::string architecture;  // GOARCH names: amd64, arm64, ...
  std::string variant;       // optional (v8, v7 ...)
  std::string str() const;
};
// This machine's platform in GOARCH terms (linux/amd64 on x86-64).
Platform host_platform();
// "os/arch[/variant]"; kInvalidInput otherwise.
Platform parse_platform(const std::string& text);

// An OCI content descriptor.
struct Descriptor {
  std::string media_type;
  std::string digest;  // "" when the format does not say (legacy docker-archive layers)
  int64_t size = -1;   // -1 when unknown
};

struct LayerInfo {
  Descriptor blob;
  std::string diff_id;   // from the config's rootfs.diff_ids
  std::string chain_id;  // OCI ChainID: the name of the committed snapshot
  Compression compression = Compression::kAuto;  // from the media type
  std::string source;    // the blob file or archive member, for messages
};

// An opened image: its manifest and config read and verified, its layers described. Layer
// blobs are only read (and verified) when opened.
struct Image {
  ImageRef ref;
  std::string format;    // "oci" | "docker-archive" | "rootfs" | "dir"
  std::string location;  // the layout directory or the archive file
  Descriptor manifest;   // OCI: the selected manifest; docker-archive: the config's digest
  std::string config_digest;
  nlohmann::json config;
  Platform platform;     // the image's, from its config
  std::vector<LayerInfo> layers;
  std::function<std::unique_ptr<ByteSource>(const LayerInfo&)> open_blob;

  // The top layer's chain id ("" for an image without layers).
  std::string top_chain_id() const { return layers.empty() ? "" : layers.back().chain_id; }
  // What the blob of layer i must be, for LayerReader.
  LayerExpect expect(size_t i) const;
  // A reader over layer i, checking it against expect(i).
  std::unique_ptr<LayerReader> read_layer(size_t i, const Limits& limits = {}) const;
  // The shell the image declares in its config label "org.cowbench.shell" (synthetic
  // images record it there): a path such as "/bin/sh", or "" when it declares none.
  std::string declared_shell() const;
};

struct OpenOptions {
  std::string platform;  // "os/arch[/variant]" to pick from an index; "" = this host's
};

// Opens an image (rootfs: and dir: in rootfs.h). OCI: reads oci-layout and index.json, follows nested indexes / manifest
// lists to the manifest of the platform (or TAG), verifies manifest and config blobs
// against their descriptors (digest and size) and checks diff_ids against the layers.
// docker-archive: reads manifest.json and the config from the tarball without unpacking it.
// synth: generates the image into CACHE_DIR/synth/ once (reused while the generator and
// its inputs are unchanged) and opens it as OCI. Errors: kNotFound (no such file / tag /
// platform), kInvalidInput (malformed or mismatching content), kUnsupported (media types
// or digest algorithms cowbench does not read).
Image open_image(const ImageRef& ref, const std::string& cache_dir, const OpenOptions& options = {});

// The merged view of all layers, computed by reading them (digests verified). With a
// cache_dir the result is kept in CACHE_DIR/index/<manifest hex>.json and reused.
FileIndex index_image(const Image& image, const std::string& cache_dir = "");

// Per-layer figures for `cowbench image inspect`, from reading every layer (verified).
struct LayerSummary {
  LayerInfo info;
  uint64_t uncompressed_size = 0;
  Compression compression = Compression::kNone;
  uint64_t entries = 0, files = 0, dirs = 0, symlinks = 0, hardlinks = 0, specials = 0;
  uint64_t whiteouts = 0, opaques = 0, file_bytes = 0;
};
// With `merged`, also computes the merged view (as index_image) in the same pass.
std::vector<LayerSummary> summarize_layers(const Image& image, FileIndex* merged = nullptr);

}  // namespace cowbench::img
