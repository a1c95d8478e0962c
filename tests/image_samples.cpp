// Layer and image builders for the image tests and the fuzz corpus (see image_samples.h).
#include "tests/image_samples.h"

#include <cstring>

#include "common/fs.h"
#include "images/changeset.h"
#include "images/digest.h"
#include "images/image.h"

namespace cowbench::test {

img::TarEntry tar_entry(std::string path, char type, uint32_t mode, std::string link) {
  img::TarEntry e;
  e.path = std::move(path);
  switch (type) {
    case 'd': e.type = img::EntryType::kDir; break;
    case 'l': e.type = img::EntryType::kSymlink; break;
    case 'h': e.type = img::EntryType::kHardlink; break;
    case 'c': e.type = img::EntryType::kChar; break;
    case 'b': e.type = img::EntryType::kBlock; break;
    case 'p': e.type = img::EntryType::kFifo; break;
    default: e.type = img::EntryType::kFile; break;
  }
  e.mode = mode;
  e.link = std::move(link);
  e.mtime.tv_sec = 1704067200;
  return e;
}

LayerSpec& LayerSpec::add(img::TarEntry e, std::string content) {
  if (e.type == img::EntryType::kFile) e.size = content.size();
  entries.emplace_back(std::move(e), std::move(content));
  return *this;
}

LayerSpec& LayerSpec::file(std::string path, std::string content, uint32_t mode, uint32_t uid, uint32_t gid) {
  img::TarEntry e = tar_entry(std::move(path), 'f', mode);
  e.uid = uid;
  e.gid = gid;
  return add(std::move(e), std::move(content));
}

LayerSpec& LayerSpec::dir(std::string path, uint32_t mode, uint32_t uid, uint32_t gid) {
  img::TarEntry e = tar_entry(std::move(path), 'd', mode);
  e.uid = uid;
  e.gid = gid;
  return add(std::move(e));
}

LayerSpec& LayerSpec::symlink(std::string path, std::string target) {
  return add(tar_entry(std::move(path), 'l', 0777, std::move(target)));
}

LayerSpec& LayerSpec::hardlink(std::string path, std::string target) {
  return add(tar_entry(std::move(path), 'h', 0644, std::move(target)));
}

LayerSpec& LayerSpec::whiteout(std::string path) { return file(img::whiteout_path(path), ""); }

LayerSpec& LayerSpec::opaque(std::string dir) { return file(img::join_path(dir, img::kOpaqueMarker), ""); }

std::string layer_blob(const LayerSpec& spec, img::Compression c, img::LayerWriter::Result* digests) {
  TempDir tmp("/tmp", "layer");
  std::string path = path_join(tmp.path(), "blob");
  img::LayerWriter w(path, c);
  for (const auto& [e, content] : spec.entries) {
    w.add(e);
    if (e.type == img::EntryType::kFile && !content.empty()) w.data(content.data(), content.size());
  }
  auto r = w.finish();
  if (digests) *digests = r;
  return read_file(path);
}

std::string write_oci_image(const std::string& dir, const std::vector<LayerSpec>& layers, img::Compression c,
                            const std::string& ref_name) {
  img::LayoutWriter out(dir);
  for (const auto& spec : layers) {
    auto w = out.new_layer(c);
    for (const auto& [e, content] : spec.entries) {
      w->add(e);
      if (e.type == img::EntryType::kFile && !content.empty()) w->data(content.data(), content.size());
    }
    out.add_layer(*w);
  }
  return out.finish(nlohmann::json::object(), img::host_platform(), ref_name).digest;
}

std::string raw_tar_header(const std::string& name, char typeflag, const std::string& size_field) {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
  std::memcpy(&h[100], "0000644", 7);
  std::memcpy(&h[108], "0000000", 7);
  std::memcpy(&h[116], "0000000", 7);
  std::memcpy(&h[124], size_field.data(), std::min<size_t>(size_field.size(), 12));
  std::memcpy(&h[136], "14534121000", 11);  // 2024-01-01 in octal
  h[156] = typeflag;
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char ch : h) sum += ch;
  std::string chk = fmt::format("{:06o}", sum);
  std::memcpy(&h[148], chk.data(), 6);
  h[154] = '\0';
  return h;
}

std::vector<HostileSample> hostile_samples(const std::string& outside) {
  std::vector<HostileSample> out;
  auto add = [&](std::string name, const LayerSpec& spec, std::string error, std::string entry,
                 img::Compression c = img::Compression::kNone) {
    HostileSample s;
    s.name = std::move(name);
    s.blob = layer_blob(spec, c);
    s.expect.name = "hostile-" + s.name;
    s.error = std::move(error);
    s.entry = std::move(entry);
    out.push_back(std::move(s));
  };
  std::string rel_outside = "../" + outside.substr(outside.rfind('/') + 1);

  add("dotdot", LayerSpec().file("a/../../escape", "x"), "'..' component", "a/../../escape");
  add("absolute", LayerSpec().file(outside + "/abs", "x"), "absolute path", outside + "/abs");
  add("symlink-absolute-write-through", LayerSpec().symlink("evil", outside).file("evil/pwned", "x"),
      "leads outside the root", "evil/pwned");
  add("symlink-relative-write-through", LayerSpec().symlink("evil", rel_outside).file("evil/pwned", "x"),
      "leads outside the root", "evil/pwned");
  add("symlink-chain", LayerSpec().dir("d").symlink("d/up", "..").symlink("d/up2", "up/..").file("d/up2/pwned", "x"),
      "leads outside the root", "d/up2/pwned");
  add("symlink-then-dir", LayerSpec().symlink("evil", outside).dir("evil/newdir"), "leads outside the root",
      "evil/newdir");
  add("hardlink-dotdot", LayerSpec().hardlink("h", "../" + rel_outside + "/file"), "'..' component", "h");
  add("hardlink-absolute", LayerSpec().hardlink("h", outside + "/file"), "absolute hard link target", "h");
  add("hardlink-through-symlink", LayerSpec().symlink("evil", outside).hardlink("h", "evil/file"),
      "leads outside the root", "h");
  add("whiteout-through-symlink", LayerSpec().symlink("evil", outside).whiteout("evil/file"), "leads outside the root",
      "evil/.wh.file");
  add("opaque-through-symlink", LayerSpec().symlink("evil", outside).opaque("evil"), "non-directory",
      "evil/.wh..wh..opq");
  add("whiteout-dotdot-name", LayerSpec().file("a/.wh..", ""), "invalid name", "a/.wh..");
  {
    img::TarEntry dev = tar_entry("dev/sda", 'b', 0660);
    dev.dev_major = 8;
    add("block-device", LayerSpec().add(dev), "device policy: refuse", "dev/sda");
    img::TarEntry chr = tar_entry("dev/mem", 'c', 0640);
    chr.dev_major = 1;
    chr.dev_minor = 1;
    add("char-device", LayerSpec().add(chr), "device policy: refuse", "dev/mem");
    add("whiteout-device", LayerSpec().add(tar_entry("dev/null0", 'c', 0666)), "overlay whiteout", "dev/null0");
  }
  add("huge-path", LayerSpec().file(std::string(5000, 'p'), "x"), "5000 bytes long", "");
  add("huge-component", LayerSpec().file("d/" + std::string(300, 'c'), "x"), "component of 300 bytes", "");
  {
    // A ustar header claiming 8 GiB in a blob of 1.5 KiB, and one claiming 2^50 bytes (base-256).
    HostileSample s;
    s.name = "absurd-size";
    s.blob = raw_tar_header("big", '0', "77777777777") + std::string(1024, '\0');
    s.expect.name = "hostile-absurd-size";
    s.expect.size = static_cast<int64_t>(s.blob.size());
    s.error = "blob can hold";
    s.entry = "big";
    out.push_back(s);
    std::string b256(12, '\0');
    b256[0] = static_cast<char>(0x80);
    b256[5] = 0x04;  // 0x04 << 48 = 2^50
    s.name = "absurd-size-base256";
    s.blob = raw_tar_header("huge", '0', b256) + std::string(1024, '\0');
    s.expect = img::LayerExpect{"hostile-absurd-size-base256"};
    s.error = "beyond the limit";
    s.entry = "huge";
    out.push_back(s);
  }
  {
    std::string gz = layer_blob(LayerSpec().file("a", std::string(200000, 'a')).file("b", "b"), img::Compression::kGzip);
    HostileSample s;
    s.name = "truncated-gzip";
    s.blob = gz.substr(0, gz.size() / 2);
    s.expect.name = "hostile-truncated-gzip";
    s.error = "corrupt or truncated";
    out.push_back(s);
    s.name = "corrupt-gzip";
    s.blob = gz;
    for (size_t i = 20; i < 60 && i < s.blob.size(); ++i) s.blob[i] = static_cast<char>(s.blob[i] ^ 0x5a);
    s.expect.name = "hostile-corrupt-gzip";
    out.push_back(s);
    std::string tar = layer_blob(LayerSpec().file("a", std::string(4000, 'a')).file("b", "b"));
    s.name = "truncated-tar";
    s.blob = tar.substr(0, 512 + 1000);
    s.expect.name = "hostile-truncated-tar";
    out.push_back(s);
  }
  {
    img::LayerWriter::Result d;
    std::string blob = layer_blob(LayerSpec().file("ok", "fine"), img::Compression::kGzip, &d);
    HostileSample s;
    s.blob = blob;
    s.name = "digest-mismatch";
    s.expect = img::LayerExpect{"hostile-digest-mismatch", img::sha256_digest("something else"),
                                static_cast<int64_t>(d.size), d.diff_id, img::Compression::kGzip};
    s.error = "digest mismatch";
    out.push_back(s);
    s.name = "diff-id-mismatch";
    s.expect = img::LayerExpect{"hostile-diff-id-mismatch", d.digest, static_cast<int64_t>(d.size),
                                img::sha256_digest("other"), img::Compression::kGzip};
    s.error = "diff_id mismatch";
    out.push_back(s);
    s.name = "size-mismatch-short";
    s.expect = img::LayerExpect{"hostile-size-mismatch-short", d.digest, static_cast<int64_t>(d.size) + 10, d.diff_id,
                                img::Compression::kGzip};
    s.error = "size mismatch";
    out.push_back(s);
    s.name = "size-mismatch-long";
    s.expect = img::LayerExpect{"hostile-size-mismatch-long", d.digest, static_cast<int64_t>(d.size) - 10, d.diff_id,
                                img::Compression::kGzip};
    out.push_back(s);
    s.name = "media-type-lie";
    s.expect = img::LayerExpect{"hostile-media-type-lie", "", -1, "", img::Compression::kZstd};
    s.error = "media type says zstd";
    out.push_back(s);
  }
  return out;
}

}  // namespace cowbench::test
