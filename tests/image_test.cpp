// Image references, OCI layout reading (indexes, platforms, tags, verification), chain ids, synthetic images.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "images/digest.h"
#include "images/image.h"
#include "images/layout_writer.h"
#include "images/synth.h"
#include "tests/image_samples.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

namespace fs = std::filesystem;

template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(Errc::kFailure, "");
}

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = std::make_unique<TempDir>(scratch_root(), "image"); }
  std::string dir(const std::string& name) { return path_join(tmp_->path(), name); }
  std::unique_ptr<TempDir> tmp_;
};

TEST(ImageRef, Parses) {
  auto r = img::parse_ref("oci:/some/dir:v1.2");
  EXPECT_EQ(r.kind, img::ImageRef::Kind::kOci);
  EXPECT_EQ(r.path, "/some/dir");
  EXPECT_EQ(r.tag, "v1.2");
  r = img::parse_ref("oci:./rel/dir");
  EXPECT_EQ(r.path, "./rel/dir");
  EXPECT_EQ(r.tag, "");
  r = img::parse_ref("docker-archive:/x/image.tar");
  EXPECT_EQ(r.kind, img::ImageRef::Kind::kDockerArchive);
  EXPECT_EQ(r.path, "/x/image.tar");
  r = img::parse_ref("synth:tiny@42");
  EXPECT_EQ(r.kind, img::ImageRef::Kind::kSynth);
  EXPECT_EQ(r.profile, "tiny");
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(img::parse_ref("synth:default").seed, 1u);
  for (const char* bad : {"", "docker://x", "oci:", "oci:dir:", "synth:nope", "synth:tiny@x", "synth:tiny@", "docker-archive:"})
    EXPECT_EQ(error_of([&] { img::parse_ref(bad); }).code(), Errc::kInvalidInput) << bad;
}

TEST(ImageRef, Platforms) {
  auto p = img::parse_platform("linux/arm64/v8");
  EXPECT_EQ(p.os, "linux");
  EXPECT_EQ(p.architecture, "arm64");
  EXPECT_EQ(p.variant, "v8");
  EXPECT_EQ(img::parse_platform("linux/amd64").str(), "linux/amd64");
  for (const char* bad : {"linux", "/amd64", "linux/", "linux/arm/"})
    EXPECT_EQ(error_of([&] { img::parse_platform(bad); }).code(), Errc::kInvalidInput) << bad;
  EXPECT_FALSE(img::host_platform().architecture.empty());
}

TEST(Digest, ChainIds) {
  std::string a = img::sha256_digest("a"), b = img::sha256_digest("b"), c = img::sha256_digest("c");
  auto ids = img::chain_ids({a, b, c});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], a);
  EXPECT_EQ(ids[1], img::sha256_digest(a + " " + b));
  EXPECT_EQ(ids[2], img::sha256_digest(ids[1] + " " + c));
  EXPECT_EQ(img::sha256_digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(img::is_sha256_digest(a));
  EXPECT_FALSE(img::is_sha256_digest("sha256:../../etc/passwd"));
  EXPECT_EQ(error_of([&] { img::digest_hex("sha512:00", "x"); }).code(), Errc::kUnsupported);
}

const LayerSpec kBase = LayerSpec().dir("etc").file("etc/os-release", "ID=test\n").file("bin-a", "A", 0755);

TEST_F(ImageTest, OpensLayoutAndVerifies) {
  std::string d = dir("img");
  write_oci_image(d, {kBase, LayerSpec().file("etc/extra", "x")});
  img::Image im = img::open_image(img::parse_ref("oci:" + d), "");
  EXPECT_EQ(im.format, "oci");
  ASSERT_EQ(im.layers.size(), 2u);
  EXPECT_EQ(im.layers[0].chain_id, im.layers[0].diff_id);
  EXPECT_EQ(im.layers[1].chain_id, img::chain_ids({im.layers[0].diff_id, im.layers[1].diff_id})[1]);
  EXPECT_EQ(im.layers[0].compression, img::Compression::kGzip);
  img::FileIndex view = img::index_image(im);
  EXPECT_EQ(view.entries.count("etc/extra"), 1u);
  EXPECT_EQ(view.entries.at("bin-a").mode, 0755u);

  // Tag selection, and a missing tag.
  EXPECT_NO_THROW(img::open_image(img::parse_ref("oci:" + d + ":latest"), ""));
  auto e = error_of([&] { img::open_image(img::parse_ref("oci:" + d + ":nope"), ""); });
  EXPECT_EQ(e.code(), Errc::kNotFound);
  EXPECT_NE(std::string(e.what()).find("latest"), std::string::npos) << e.what();

  // A manifest blob changed on disk.
  std::string blob = path_join(d, "blobs/sha256/" + im.manifest.digest.substr(7));
  std::string m = read_file(blob);
  m.back() = m.back() == '}' ? ' ' : '}';
  write_file_atomic(blob, m, 0644, false);
  e = error_of([&] { img::open_image(img::parse_ref("oci:" + d), ""); });
  EXPECT_EQ(e.code(), Errc::kInvalidInput);
  EXPECT_NE(std::string(e.what()).find("digest mismatch"), std::string::npos) << e.what();
}

TEST_F(ImageTest, BadLayouts) {
  EXPECT_EQ(error_of([&] { img::open_image(img::parse_ref("oci:" + dir("absent")), ""); }).code(), Errc::kNotFound);
  std::string d = dir("bad");
  make_dirs(d);
  write_file_atomic(path_join(d, "oci-layout"), R"({"imageLayoutVersion":"2.0.0"})", 0644, false);
  write_file_atomic(path_join(d, "index.json"), R"({"manifests":[]})", 0644, false);
  EXPECT_EQ(error_of([&] { img::open_image(img::parse_ref("oci:" + d), ""); }).code(), Errc::kInvalidInput);
  write_file_atomic(path_join(d, "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})", 0644, false);
  EXPECT_EQ(error_of([&] { img::open_image(img::parse_ref("oci:" + d), ""); }).code(), Errc::kNotFound);
  write_file_atomic(path_join(d, "index.json"), "{not json", 0644, false);
  EXPECT_EQ(error_of([&] { img::open_image(img::parse_ref("oci:" + d), ""); }).code(), Errc::kInvalidInput);

  // A layer media type that is not a tar layer, and too few diff_ids.
  std::string d2 = dir("types");
  img::LayoutWriter w(d2);
  img::Descriptor layer = w.put_blob("not a layer", "application/vnd.example.thing");
  nlohmann::json config = {{"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
  img::Descriptor cfg = w.put_blob(config.dump(), "application/vnd.oci.image.config.v1+json");
  auto manifest_with = [&](const std::string& layer_type) {
    nlohmann::json m = {{"schemaVersion", 2},
                        {"config", {{"mediaType", cfg.media_type}, {"digest", cfg.digest}, {"size", cfg.size}}},
                        {"layers", {{{"mediaType", layer_type}, {"digest", layer.digest}, {"size", layer.size}}}}};
    img::Descriptor md = w.put_blob(m.dump(), "application/vnd.oci.image.manifest.v1+json");
    nlohmann::json index = {{"schemaVersion", 2}, {"manifests", {{{"mediaType", md.media_type}, {"digest", md.digest}, {"size", md.size}}}}};
    write_file_atomic(path_join(d2, "index.json"), index.dump(), 0644, false);
  };
  manifest_with("application/vnd.example.thing");
  EXPECT_EQ(error_of([&] { img::open_image(img::parse_ref("oci:" + d2), ""); }).code(), Errc::kUnsupported);
  manifest_with("application/vnd.oci.image.layer.v1.tar");
  auto e = error_of([&] { img::open_image(img::parse_ref("oci:" + d2), ""); });
  EXPECT_EQ(e.code(), Errc::kInvalidInput);
  EXPECT_NE(std::string(e.what()).find("0 diff_ids for 1 layers"), std::string::npos) << e.what();
}

// An index of an index with two platforms (and an attestation-like entry that is no image).
TEST_F(ImageTest, PicksPlatformFromNestedIndex) {
  std::string a = dir("amd"), b = dir("arm");
  write_oci_image(a, {LayerSpec().file("arch", "amd64")});
  write_oci_image(b, {LayerSpec().file("arch", "arm64")});
  for (const auto& f : fs::directory_iterator(path_join(b, "blobs/sha256")))
    fs::copy_file(f.path(), path_join(a, "blobs/sha256/" + f.path().filename().string()), fs::copy_options::skip_existing);
  auto top = [](const std::string& d) { return nlohmann::json::parse(read_file(path_join(d, "index.json")))["manifests"][0]; };
  nlohmann::json ma = top(a), mb = top(b);
  ma["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  mb["platform"] = {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
  ma.erase("annotations");
  mb.erase("annotations");
  nlohmann::json att = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", mb["digest"]}, {"size", mb["size"]},
                        {"platform", {{"os", "unknown"}, {"architecture", "unknown"}}}};
  nlohmann::json inner = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", {ma, mb, att}}};
  std::string inner_text = inner.dump();
  std::string inner_digest = img::sha256_digest(inner_text);
  write_file_atomic(path_join(a, "blobs/sha256/" + inner_digest.substr(7)), inner_text, 0644, false);
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests", {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                          {"digest", inner_digest},
                                          {"size", inner_text.size()},
                                          {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  write_file_atomic(path_join(a, "index.json"), index.dump(), 0644, false);

  auto arch_of = [&](const std::string& platform) {
    img::Image im = img::open_image(img::parse_ref("oci:" + a + ":multi"), "", {platform});
    img::FileIndex v = img::index_image(im);
    return v.entries.at("arch").sha256;
  };
  EXPECT_EQ(arch_of("linux/amd64"), img::sha256_digest("amd64"));
  EXPECT_EQ(arch_of("linux/arm64"), img::sha256_digest("arm64"));
  EXPECT_EQ(arch_of("linux/arm64/v8"), img::sha256_digest("arm64"));
  EXPECT_EQ(error_of([&] { arch_of("linux/s390x"); }).code(), Errc::kNotFound);
}

TEST_F(ImageTest, SynthIsDeterministicAndIndexMatchesGenerator) {
  img::SynthOptions o;
  o.profile = "tiny";
  o.seed = 11;
  img::SynthResult r1 = img::synth_image(o, dir("s1"));
  img::SynthResult r2 = img::synth_image(o, dir("s2"));
  EXPECT_EQ(r1.manifest_digest, r2.manifest_digest);
  std::set<std::string> b1, b2;
  for (const auto& f : fs::directory_iterator(path_join(r1.dir, "blobs/sha256"))) b1.insert(f.path().filename());
  for (const auto& f : fs::directory_iterator(path_join(r2.dir, "blobs/sha256"))) b2.insert(f.path().filename());
  EXPECT_EQ(b1, b2);
  o.seed = 12;
  EXPECT_NE(img::synth_image(o, dir("s3")).manifest_digest, r1.manifest_digest);
  EXPECT_EQ(error_of([&] { img::synth_image(o, dir("s3")); }).code(), Errc::kAlreadyExists);

  // Reading the layers back gives the generator's own model of the merged view.
  img::Image im = img::open_image(img::parse_ref("oci:" + r1.dir), "");
  EXPECT_EQ(im.layers.size(), 3u);
  EXPECT_EQ(im.declared_shell(), r1.shell);
  std::string diff = img::diff_index(r1.expected, img::index_image(im));
  EXPECT_TRUE(diff.empty()) << diff;
  // The tiny profile covers whiteouts, an opaque directory, links and replacements.
  auto sum = img::summarize_layers(im);
  EXPECT_GT(sum[1].whiteouts, 0u);
  EXPECT_EQ(sum[1].opaques, 1u);
  EXPECT_GT(sum[0].hardlinks + sum[2].hardlinks, 1u);
  EXPECT_EQ(r1.expected.entries.count("usr/share/doc/pkg3"), 0u);
  EXPECT_EQ(r1.expected.entries.at("opt/old").type, 'd');
  EXPECT_EQ(r1.expected.entries.at("run/ctl.fifo").type, 'p');
}

TEST_F(ImageTest, SynthZstdAndCache) {
  img::SynthOptions o;
  o.profile = "tiny";
  o.compression = img::Compression::kZstd;
  o.shell = img::ShellMode::kNone;
  img::SynthResult r = img::synth_image(o, dir("z"));
  img::Image im = img::open_image(img::parse_ref("oci:" + r.dir), "");
  EXPECT_EQ(im.layers[0].compression, img::Compression::kZstd);
  EXPECT_EQ(im.layers[0].blob.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_TRUE(img::diff_index(r.expected, img::index_image(im, dir("cache"))).empty());
  // The second index comes from the cache.
  EXPECT_TRUE(fs::exists(path_join(dir("cache"), "index/" + im.manifest.digest.substr(7) + ".json")));
  EXPECT_EQ(img::index_image(im, dir("cache")), r.expected);

  // synth: references are generated into the cache once.
  img::Image s1 = img::open_image(img::parse_ref("synth:tiny@3"), dir("cache"));
  img::Image s2 = img::open_image(img::parse_ref("synth:tiny@3"), dir("cache"));
  EXPECT_EQ(s1.location, s2.location);
  EXPECT_EQ(s1.manifest.digest, s2.manifest.digest);
}

TEST_F(ImageTest, DefaultProfileShape) {
  img::SynthOptions o;
  o.profile = "default";
  auto t0 = std::chrono::steady_clock::now();
  img::SynthResult r = img::synth_image(o, dir("default"));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.layers, 5u);
  EXPECT_GT(r.uncompressed_bytes, 180u << 20);
  EXPECT_LT(r.uncompressed_bytes, 250u << 20);
  EXPECT_LT(r.compressed_bytes, r.uncompressed_bytes);
  EXPECT_GT(r.expected.count('f'), 5000u);
  uint64_t biggest = 0;
  for (const auto& [p, f] : r.expected.entries) biggest = std::max(biggest, f.size);
  EXPECT_GE(biggest, 32u << 20) << "a large database-like file";
  RecordProperty("generate_seconds", std::to_string(secs));
  std::cout << "default profile: " << r.uncompressed_bytes / 1e6 << " MB in " << r.layers << " layers, "
            << r.compressed_bytes / 1e6 << " MB compressed, generated in " << secs << " s\n";
}

// The family: one base layer in every member, one of two runtime layers, an app layer each;
// byte-identical files in different layers; the seed picks the family.
TEST_F(ImageTest, FamilyMembersShareLayersAndContent) {
  auto member = [&](int m, uint64_t seed) {
    return img::open_image(img::parse_ref(fmt::format("synth:family-{}@{}", m, seed)), dir("cache"));
  };
  img::Image f1 = member(1, 1), f2 = member(2, 1), f3 = member(3, 1), g1 = member(1, 2);
  ASSERT_EQ(f1.layers.size(), 3u);
  ASSERT_EQ(f2.layers.size(), 3u);
  EXPECT_EQ(f1.layers[0].chain_id, f2.layers[0].chain_id) << "one base in every member";
  EXPECT_EQ(f1.layers[0].chain_id, f3.layers[0].chain_id);
  EXPECT_EQ(f1.layers[1].chain_id, f3.layers[1].chain_id) << "odd members share runtime A";
  EXPECT_NE(f1.layers[1].chain_id, f2.layers[1].chain_id) << "even members have runtime B";
  EXPECT_NE(f1.layers[2].chain_id, f3.layers[2].chain_id) << "every app layer is its own";
  EXPECT_NE(f1.layers[0].chain_id, g1.layers[0].chain_id) << "another seed, another family";
  EXPECT_EQ(f1.declared_shell(), "");
  img::FileIndex i1 = img::index_image(f1), i2 = img::index_image(f2), i3 = img::index_image(f3);
  // The library both runtimes vendor: one content at two paths in two different layers.
  const auto& crypto_a = i1.entries.at("usr/lib/x86_64-linux-gnu/libcrypto.so.3");
  const auto& crypto_b = i2.entries.at("usr/lib/runb/vendor/libcrypto.so.3");
  EXPECT_EQ(crypto_a.sha256, crypto_b.sha256);
  EXPECT_EQ(i2.entries.count("usr/lib/x86_64-linux-gnu/libcrypto.so.3"), 0u);
  // The library every app vendors: one content in every app layer.
  EXPECT_EQ(i1.entries.at("app1/lib/vendor/libvendored.so.2").sha256, i3.entries.at("app3/lib/vendor/libvendored.so.2").sha256);
  EXPECT_NE(i1.entries.at("app1/bin/service").sha256, i3.entries.at("app3/bin/service").sha256);
  uint64_t bytes = 0;
  for (const auto& [p, f] : i1.entries) bytes += f.size;
  EXPECT_GT(bytes, 30u << 20);
  EXPECT_LT(bytes, 60u << 20);
  for (const char* bad : {"synth:family-0", "synth:family-65", "synth:family-", "synth:family-x", "synth:family-01", "synth:family"})
    EXPECT_EQ(error_of([&] { img::parse_ref(bad); }).code(), Errc::kInvalidInput) << bad;
}

struct CliRun {
  int code = -1;
  std::string out;
};
CliRun cowbench_cli(const std::string& args) {
  CliRun r;
  std::string cmd = std::string(COWBENCH_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST_F(ImageTest, Cli) {
  for (const char* help : {"image --help", "image synth --help", "image inspect --help"}) {
    CliRun r = cowbench_cli(help);
    EXPECT_EQ(r.code, 0) << help << "\n" << r.out;
  }
  std::string out = dir("cli-image");
  CliRun r = cowbench_cli("image synth --profile tiny --seed 4 --shell none --out " + out + " --manifest " + dir("m.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = cowbench_cli("image inspect --json oci:" + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["layers"][1]["opaque_dirs"], 1);
  EXPECT_GT(j["layers"][1]["whiteouts"].get<int>(), 0);
  auto expected = img::file_index_from_json(nlohmann::json::parse(read_file(dir("m.json"))));
  EXPECT_EQ(j["merged"]["files"].get<size_t>(), expected.count('f'));
  r = cowbench_cli("image inspect oci:" + out);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("opq"), std::string::npos) << r.out;

  // Bad input exits 2.
  for (const std::string& bad : std::vector<std::string>{"image inspect synth:nope", "image inspect oci:" + dir("absent"), "image inspect docker://x",
                          "image synth --profile nope --out " + dir("x"), "image synth --seed abc --out " + dir("y"),
                          "image synth --out " + out, "image synth --shell maybe --out " + dir("z"), "image"}) {
    CliRun b = cowbench_cli(bad);
    EXPECT_EQ(b.code, 2) << bad << "\n" << b.out;
  }
}

}  // namespace
}  // namespace cowbench::test
