// Images: references, OCI layouts, synthetic images (see image.h); docker-archive in docker_archive.cpp.
#include "images/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "images/changeset.h"
#include "images/docker_archive.h"
#include "images/image_json.h"
#include "images/rootfs.h"
#include "images/synth.h"

namespace cowbench::img {
namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

bool is_index_type(const std::string& mt) {
  return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json";
}
bool is_manifest_type(const std::string& mt) {
  return mt == "application/vnd.oci.image.manifest.v1+json" || mt == "application/vnd.docker.distribution.manifest.v2+json";
}

// The compression a layer media type implies; kUnsupported for what is not a tar layer.
Compression layer_compression(const std::string& mt, size_t i) {
  static const std::pair<const char*, Compression> kTypes[] = {
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
  };
  for (const auto& [name, c] : kTypes)
    if (mt == name) return c;
  fail(Errc::kUnsupported, "layer {} has media type '{}', which is not a tar layer cowbench reads", i + 1, mt);
}

Descriptor descriptor_of(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) fail(Errc::kInvalidInput, "{} is not a descriptor object", what);
  Descriptor d;
  d.media_type = j.value("mediaType", "");
  d.digest = json_get<std::string>(j, "digest", what);
  d.size = json_get<int64_t>(j, "size", what);
  digest_hex(d.digest, what + " digest");
  if (d.size < 0) fail(Errc::kInvalidInput, "{}: negative size {}", what, d.size);
  return d;
}

bool platform_matches(const nlohmann::json& p, const Platform& want) {
  if (!p.is_object()) return false;
  if (p.value("os", "") != want.os || p.value("architecture", "") != want.architecture) return false;
  return want.variant.empty() || p.value("variant", "") == want.variant;
}

// ---- OCI image layout ----

class OciLayout {
 public:
  explicit OciLayout(std::string dir) : dir_(std::move(dir)) {}

  std::string blob_path(const std::string& digest, const std::string& what) const {
    return path_join(dir_, "blobs/sha256/" + digest_hex(digest, what));
  }

  std::string read_small(const Descriptor& d, const std::string& what) const {
    if (d.size > static_cast<int64_t>(kMaxJson))
      fail(Errc::kInvalidInput, "{}: {} bytes is too large for a manifest or config", what, d.size);
    auto src = open_file_source(blob_path(d.digest, what));
    std::string data = read_all(*src, kMaxJson);
    verify_content(data, d, what);
    return data;
  }

  // Follows nested indexes down to the manifests: (descriptor, platform) of every one.
  void collect(const nlohmann::json& manifests, const nlohmann::json& platform, int depth,
               std::vector<std::pair<Descriptor, nlohmann::json>>& out) const {
    if (depth > 8) fail(Errc::kInvalidInput, "{}: indexes nested deeper than 8", dir_);
    if (!manifests.is_array()) fail(Errc::kInvalidInput, "{}: an index without a manifests array", dir_);
    for (size_t i = 0; i < manifests.size(); ++i) {
      std::string what = fmt::format("{}: manifest entry {}", dir_, i + 1);
      Descriptor d = descriptor_of(manifests[i], what);
      nlohmann::json p = manifests[i].contains("platform") ? manifests[i]["platform"] : platform;
      std::string mt = d.media_type;
      nlohmann::json doc;
      if (mt.empty()) {  // old writers leave it out: decide by content
        doc = parse_json(read_small(d, what), what);
        mt = doc.contains("manifests") ? "application/vnd.oci.image.index.v1+json"
                                       : "application/vnd.oci.image.manifest.v1+json";
      }
      if (is_index_type(mt)) {
        if (doc.is_null()) doc = parse_json(read_small(d, what), what);
        collect(doc.contains("manifests") ? doc["manifests"] : nlohmann::json(), p, depth + 1, out);
      } else if (is_manifest_type(mt)) {
        d.media_type = mt;
        out.emplace_back(d, p);
      }  // anything else (attestations, artifacts) is not an image
    }
  }

  Image open(const ImageRef& ref, const OpenOptions& options) const {
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      fail(Errc::kNotFound, "{}: no such directory (oci:DIR needs an OCI image layout)", dir_);
    std::string layout_file = path_join(dir_, "oci-layout");
    auto layout = parse_json(read_file(layout_file), layout_file);
    std::string version = layout.is_object() ? layout.value("imageLayoutVersion", "") : "";
    if (!version.starts_with("1."))
      fail(Errc::kInvalidInput, "{}: imageLayoutVersion '{}' is not 1.x", layout_file, version);
    std::string index_file = path_join(dir_, "index.json");
    auto index = parse_json(read_file(index_file), index_file);
    if (!index.is_object() || !index.contains("manifests"))
      fail(Errc::kInvalidInput, "{}: no manifests array", index_file);

    // A tag selects among the top-level entries by their ref name annotation.
    nlohmann::json top = index["manifests"];
    if (!top.is_array()) fail(Errc::kInvalidInput, "{}: manifests is not an array", index_file);
    if (!ref.tag.empty()) {
      nlohmann::json tagged = nlohmann::json::array();
      std::string known;
      for (const auto& m : top) {
        std::string name = m.contains("annotations") && m["annotations"].is_object()
                               ? m["annotations"].value(kRefNameAnnotation, "")
                               : "";
        if (name == ref.tag) tagged.push_back(m);
        if (!name.empty()) known += (known.empty() ? "" : ", ") + name;
      }
      if (tagged.empty())
        fail(Errc::kNotFound, "{}: no image tagged '{}' (tags: {})", dir_, ref.tag, known.empty() ? "none" : known);
      top = tagged;
    }
    std::vector<std::pair<Descriptor, nlohmann::json>> found;
    collect(top, nlohmann::json(), 0, found);
    if (found.empty()) fail(Errc::kNotFound, "{}: the index names no image manifest", dir_);

    Platform want = options.platform.empty() ? host_platform() : parse_platform(options.platform);
    Descriptor chosen = found.front().first;
    if (found.size() > 1) {
      std::vector<Descriptor> match;
      std::string have;
      for (const auto& [d, p] : found) {
        if (platform_matches(p, want) && (match.empty() || match.front().digest != d.digest)) match.push_back(d);
        have += (have.empty() ? "" : ", ") +
                (p.is_object() ? p.value("os", "?") + "/" + p.value("architecture", "?") : std::string("unspecified"));
      }
      if (match.empty()) fail(Errc::kNotFound, "{}: no manifest for {} (it has: {})", dir_, want.str(), have);
      if (match.size() > 1)
        fail(Errc::kInvalidInput, "{}: {} images match {}; name one with oci:DIR:TAG", dir_, match.size(), want.str());
      chosen = match.front();
    } else if (!options.platform.empty() && found.front().second.is_object() &&
               !platform_matches(found.front().second, want)) {
      fail(Errc::kNotFound, "{}: its only manifest is not for {}", dir_, want.str());
    }

    Image img;
    img.ref = ref;
    img.format = "oci";
    img.location = dir_;
    img.manifest = chosen;
    std::string mwhat = fmt::format("{}: manifest {}", dir_, chosen.digest);
    auto manifest = parse_json(read_small(chosen, mwhat), mwhat);
    if (!manifest.is_object() || !manifest.contains("config") || !manifest.contains("layers") ||
        !manifest["layers"].is_array())
      fail(Errc::kInvalidInput, "{}: not an image manifest (needs config and layers)", mwhat);
    Descriptor cfg = descriptor_of(manifest["config"], mwhat + " config");
    img.config_digest = cfg.digest;
    std::string cwhat = fmt::format("{}: config {}", dir_, cfg.digest);
    img.config = parse_json(read_small(cfg, cwhat), cwhat);
    if (!img.config.is_object()) fail(Errc::kInvalidInput, "{}: not a JSON object", cwhat);
    const auto& layers = manifest["layers"];
    for (size_t i = 0; i < layers.size(); ++i) {
      LayerInfo l;
      l.blob = descriptor_of(layers[i], fmt::format("{} layer {}", mwhat, i + 1));
      l.compression = layer_compression(l.blob.media_type, i);
      l.source = blob_path(l.blob.digest, "layer");
      img.layers.push_back(std::move(l));
    }
    set_diff_ids(img, mwhat);
    img.open_blob = [](const LayerInfo& l) { return open_file_source(l.source); };
    return img;
  }

 private:
  std::string dir_;
};

// ---- synth: generated once into the cache, then read as OCI ----

std::string synth_dir(const ImageRef& ref, const std::string& cache_dir) {
  SynthOptions o;
  o.profile = ref.profile;
  o.seed = ref.seed;
  std::string parent = path_join(cache_dir, "synth");
  std::string dir = path_join(parent, synth_cache_key(o));
  struct stat st {};
  if (::stat(path_join(dir, "index.json").c_str(), &st) == 0) return dir;
  make_dirs(parent);
  TempDir tmp(parent, ".tmp-" + ref.profile);
  std::string out = path_join(tmp.path(), "image");
  log::info("generating synthetic image {} into {}", ref.text, dir);
  synth_image(o, out);
  // A concurrent generator may have won the race: its image is the same bytes.
  if (::rename(out.c_str(), dir.c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY)
    fail_sys("rename {} to {}", out, dir);
  return dir;
}

}  // namespace

ImageRef parse_ref(const std::string& text) {
  ImageRef r;
  r.text = text;
  auto bad = [&](const std::string& why) -> void {
    fail(Errc::kInvalidInput,
         "image reference '{}': {} (forms: oci:DIR[:TAG], docker-archive:FILE, synth:PROFILE[@SEED], rootfs:FILE.tar, "
         "dir:PATH)",
         text, why);
  };
  if (text.starts_with("oci:")) {
    r.kind = ImageRef::Kind::kOci;
    r.path = text.substr(4);
    size_t colon = r.path.rfind(':');
    size_t slash = r.path.rfind('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      r.tag = r.path.substr(colon + 1);
      r.path.resize(colon);
      if (r.tag.empty()) bad("empty tag");
    }
    if (r.path.empty()) bad("no directory");
  } else if (text.starts_with("docker-archive:")) {
    r.kind = ImageRef::Kind::kDockerArchive;
    r.path = text.substr(15);
    if (r.path.empty()) bad("no file");
  } else if (text.starts_with("rootfs:") || text.starts_with("dir:")) {
    bool dir = text.starts_with("dir:");
    r.kind = dir ? ImageRef::Kind::kDir : ImageRef::Kind::kRootfs;
    r.path = text.substr(dir ? 4 : 7);
    if (r.path.empty()) bad(dir ? "no directory" : "no file");
    struct stat st {};
    if (::stat(r.path.c_str(), &st) != 0) bad(fmt::format("{}: {}", r.path, std::strerror(errno)));
    if (dir && !S_ISDIR(st.st_mode)) bad(r.path + " is not a directory");
    if (!dir && !S_ISREG(st.st_mode)) bad(r.path + " is not a regular file (rootfs: takes a tar file; dir: a directory)");
  } else if (text.starts_with("synth:")) {
    r.kind = ImageRef::Kind::kSynth;
    r.profile = text.substr(6);
    size_t at = r.profile.find('@');
    if (at != std::string::npos) {
      std::string seed = r.profile.substr(at + 1);
      r.profile.resize(at);
      auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), r.seed);
      if (seed.empty() || ec != std::errc() || end != seed.data() + seed.size()) bad("seed '" + seed + "' is not a number");
    }
    if (!is_synth_profile(r.profile)) {
      auto profiles = synth_profiles();
      std::string known;
      for (const auto& p : profiles) known += (known.empty() ? "" : ", ") + p;
      bad("unknown profile '" + r.profile + "' (profiles: " + known + ")");
    }
  } else {
    bad("unknown kind");
  }
  return r;
}

std::string Platform::str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }

Platform host_platform() {
  struct utsname u {};
  uname(&u);
  std::string m = u.machine;
  Platform p;
  if (m == "x86_64") p.architecture = "amd64";
  else if (m == "aarch64") p.architecture = "arm64";
  else if (m.starts_with("armv7")) p = Platform{"linux", "arm", "v7"};
  else if (m == "i686" || m == "i386") p.architecture = "386";
  else p.architecture = m;  // ppc64le, s390x, riscv64 are spelt alike
  return p;
}

Platform parse_platform(const std::string& text) {
  Platform p;
  size_t a = text.find('/');
  if (a == std::string::npos || a == 0 || a + 1 >= text.size())
    fail(Errc::kInvalidInput, "platform '{}' is not os/arch[/variant]", text);
  p.os = text.substr(0, a);
  size_t b = text.find('/', a + 1);
  p.architecture = text.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (b != std::string::npos) p.variant = text.substr(b + 1);
  if (p.architecture.empty() || (b != std::string::npos && p.variant.empty()))
    fail(Errc::kInvalidInput, "platform '{}' is not os/arch[/variant]", text);
  return p;
}

LayerExpect Image::expect(size_t i) const {
  const LayerInfo& l = layers.at(i);
  LayerExpect e;
  e.name = fmt::format("{} ({}/{})", l.blob.digest.empty() ? l.source : l.blob.digest, i + 1, layers.size());
  e.digest = l.blob.digest;
  e.size = l.blob.size;
  e.diff_id = l.diff_id;
  e.compression = l.compression;
  return e;
}

std::unique_ptr<LayerReader> Image::read_layer(size_t i, const Limits& limits) const {
  LayerExpect e = expect(i);
  auto src = open_blob(layers.at(i));
  if (e.size < 0) e.size = src->size();  // bounds decompression where the source knows its size
  return std::make_unique<LayerReader>(std::move(src), std::move(e), limits);
}

std::string Image::declared_shell() const {
  if (!config.contains("config") || !config["config"].is_object()) return "";
  const auto& c = config["config"];
  if (!c.contains("Labels") || !c["Labels"].is_object()) return "";
  return c["Labels"].value("org.cowbench.shell", "");
}

Image open_image(const ImageRef& ref, const std::string& cache_dir, const OpenOptions& options) {
  switch (ref.kind) {
    case ImageRef::Kind::kOci: return OciLayout(ref.path).open(ref, options);
    case ImageRef::Kind::kDockerArchive: return open_docker_archive(ref);
    case ImageRef::Kind::kRootfs: return open_rootfs_image(ref);
    case ImageRef::Kind::kDir: return open_dir_image(ref, cache_dir);
    case ImageRef::Kind::kSynth: {
      if (cache_dir.empty()) fail(Errc::kInvalidInput, "{}: synthetic images need a cache directory", ref.text);
      return OciLayout(synth_dir(ref, cache_dir)).open(ref, options);
    }
  }
  fail(Errc::kInvalidInput, "image reference '{}': unknown kind", ref.text);
}

FileIndex index_image(const Image& image, const std::string& cache_dir) {
  std::string cache;
  if (!cache_dir.empty() && is_sha256_digest(image.manifest.digest))
    cache = path_join(path_join(cache_dir, "index"), image.manifest.digest.substr(7) + ".json");
  if (!cache.empty()) {
    struct stat st {};
    if (::stat(cache.c_str(), &st) == 0) {
      try {
        return file_index_from_json(nlohmann::json::parse(read_file(cache)));
      } catch (const std::exception& e) {
        log::warn("ignoring the unreadable file index {}: {}", cache, e.what());
      }
    }
  }
  IndexBuilder b;
  for (size_t i = 0; i < image.layers.size(); ++i) b.add_layer(*image.read_layer(i));
  FileIndex out = b.take();
  if (!cache.empty()) {
    make_dirs(path_join(cache_dir, "index"));
    write_file_atomic(cache, to_json(out).dump(), 0644, false);
  }
  return out;
}

std::vector<LayerSummary> summarize_layers(const Image& image, FileIndex* merged) {
  std::vector<LayerSummary> out;
  IndexBuilder builder;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    LayerSummary s;
    s.info = image.layers[i];
    auto r = image.read_layer(i);
    builder.begin_layer();
    TarEntry e;
    while (r->next(e)) {
      if (merged) builder.apply(*r, e);
      ++s.entries;
      std::string base = split_path(e.path).second;
      if (base == kOpaqueMarker) {
        ++s.opaques;
        continue;
      }
      if (base.starts_with(kWhiteoutPrefix)) {
        ++s.whiteouts;
        continue;
      }
      switch (e.type) {
        case EntryType::kFile:
          ++s.files;
          s.file_bytes += e.size;
          break;
        case EntryType::kDir: ++s.dirs; break;
        case EntryType::kSymlink: ++s.symlinks; break;
        case EntryType::kHardlink: ++s.hardlinks; break;
        default: ++s.specials; break;
      }
    }
    LayerDigests d = r->finish();
    s.uncompressed_size = d.uncompressed_size;
    s.compression = d.compression;
    if (s.info.blob.size < 0) s.info.blob.size = static_cast<int64_t>(d.size);
    if (s.info.blob.digest.empty()) s.info.blob.digest = d.digest;
    out.push_back(std::move(s));
  }
  if (merged) *merged = builder.take();
  return out;
}

}  // namespace cowbench::img
