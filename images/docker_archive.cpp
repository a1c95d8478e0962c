// docker-archive images (see docker_archive.h).
#include "images/docker_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "images/digest.h"
#include "images/image_json.h"

namespace cowbench::img {
namespace {

// A member name as a lookup key: no leading "./" or "/", no "." components, ".." folded.
std::string member_key(std::string_view name) {
  std::vector<std::string_view> parts;
  while (!name.empty()) {
    size_t slash = name.find('/');
    std::string_view comp = name.substr(0, slash);
    name = slash == std::string_view::npos ? std::string_view{} : name.substr(slash + 1);
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(comp);
  }
  std::string out;
  for (auto p : parts) out += (out.empty() ? "" : "/") + std::string(p);
  return out;
}

// A member of a (possibly compressed) tar archive, read in place: the archive is scanned
// from its start to the member; hard and symbolic links between members are followed.
class MemberSource final : public ByteSource {
 public:
  MemberSource(std::string file, const std::string& member) : file_(std::move(file)), member_(member) {
    std::string want = member_key(member);
    for (int hop = 0; hop < 8; ++hop) {
      open_archive();
      archive_entry* ae = nullptr;
      bool redirected = false;
      int r;
      while ((r = archive_read_next_header(a_, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char* name = archive_entry_pathname(ae);
        if (!name || member_key(name) != want) continue;
        if (const char* hl = archive_entry_hardlink(ae)) {
          want = member_key(hl);
          redirected = true;
        } else if (archive_entry_filetype(ae) == AE_IFLNK && archive_entry_symlink(ae)) {
          std::string dir = want.find('/') == std::string::npos ? "" : want.substr(0, want.rfind('/'));
          want = member_key(dir + "/" + archive_entry_symlink(ae));
          redirected = true;
        } else {
          size_ = archive_entry_size(ae);
          return;
        }
        break;
      }
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF) fail_here("read");
      if (!redirected) fail(Errc::kNotFound, "{}: no member '{}'", file_, member);
    }
    fail(Errc::kInvalidInput, "{}: member '{}' is a chain of more than 8 links", file_, member);
  }
  ~MemberSource() override {
    if (a_) archive_read_free(a_);
  }
  size_t read(void* buf, size_t n) override {
    la_ssize_t r = archive_read_data(a_, buf, n);
    if (r < 0) fail_here("read member " + member_);
    return static_cast<size_t>(r);
  }
  std::string describe() const override { return file_ + " member " + member_; }
  int64_t size() const noexcept override { return size_; }

 private:
  void open_archive() {
    if (a_) archive_read_free(a_);
    a_ = archive_read_new();
    if (!a_) fail(Errc::kFailure, "libarchive: out of memory");
    archive_read_support_format_tar(a_);
    archive_read_support_filter_all(a_);
    if (archive_read_open_filename(a_, file_.c_str(), 1 << 16) != ARCHIVE_OK) {
      if (archive_errno(a_) == ENOENT) fail(Errc::kNotFound, "{} does not exist", file_);
      fail_here("open");
    }
  }
  [[noreturn]] void fail_here(const std::string& what) {
    const char* msg = archive_error_string(a_);
    fail(Errc::kInvalidInput, "{}: {}: {}", file_, what, msg ? msg : "not a tar archive");
  }

  std::string file_, member_;
  ::archive* a_ = nullptr;
  int64_t size_ = -1;
};

std::string read_member(const std::string& file, const std::string& member) {
  MemberSource src(file, member);
  return read_all(src, kMaxJson);
}

// The digest a docker-archive member name carries: "blobs/sha256/<hex>" or "<hex>.json".
std::string digest_from_member(const std::string& member) {
  std::string key = member_key(member);
  std::string base = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
  if (base.ends_with(".json")) base.resize(base.size() - 5);
  std::string d = "sha256:" + base;
  return is_sha256_digest(d) && (key.starts_with("blobs/sha256/") || key.ends_with(".json")) ? d : "";
}

}  // namespace

Image open_docker_archive(const ImageRef& ref) {
  const std::string& file = ref.path;
  auto manifest = parse_json(read_member(file, "manifest.json"), file + " manifest.json");
  if (!manifest.is_array() || manifest.empty())
    fail(Errc::kInvalidInput, "{}: manifest.json is not a non-empty array", file);
  if (manifest.size() > 1) {
    std::string tags;
    for (const auto& m : manifest) tags += (tags.empty() ? "" : "; ") + m.value("RepoTags", nlohmann::json()).dump();
    fail(Errc::kInvalidInput, "{} holds {} images ({}); cowbench reads archives of one image", file, manifest.size(), tags);
  }
  const auto& m = manifest[0];
  std::string what = file + " manifest.json";
  std::string config_member = json_get<std::string>(m, "Config", what);
  auto layers = json_get<std::vector<std::string>>(m, "Layers", what);

  Image img;
  img.ref = ref;
  img.format = "docker-archive";
  img.location = file;
  std::string config_text = read_member(file, config_member);
  Descriptor cfg{"application/vnd.docker.container.image.v1+json", digest_from_member(config_member),
                 static_cast<int64_t>(config_text.size())};
  verify_content(config_text, cfg, file + " config " + config_member);
  img.config_digest = sha256_digest(config_text);
  img.manifest = Descriptor{cfg.media_type, img.config_digest, cfg.size};
  img.config = parse_json(config_text, file + " config " + config_member);
  if (!img.config.is_object()) fail(Errc::kInvalidInput, "{} config {}: not a JSON object", file, config_member);
  for (const auto& member : layers) {
    LayerInfo l;
    l.blob.media_type = "application/vnd.docker.image.rootfs.diff.tar";
    l.blob.digest = digest_from_member(member);
    l.compression = Compression::kAuto;
    l.source = member;
    img.layers.push_back(std::move(l));
  }
  set_diff_ids(img, what);
  img.open_blob = [file](const LayerInfo& l) -> std::unique_ptr<ByteSource> {
    return std::make_unique<MemberSource>(file, l.source);
  };
  return img;
}


}  // namespace cowbench::img
