// Image import into every backend: synthetic round trip, whiteouts and opaque directories, cache reuse, docker-archive, umoci.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "images/digest.h"
#include "images/image.h"
#include "images/import.h"
#include "images/synth.h"
#include "snapshotters/registry.h"
#include "tests/image_samples.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

namespace fs = std::filesystem;

// Runs a shell command; fails the test (with its output) when it exits non-zero.
void sh(const std::string& cmd) {
  std::string full = cmd + " > /tmp/cowbench-image-sh.log 2>&1";
  int rc = std::system(full.c_str());
  ASSERT_EQ(rc, 0) << cmd << "\n" << read_file("/tmp/cowbench-image-sh.log");
}

class ImageImport : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (root_skip_reason()) return;
    shared_ = new TempDir(scratch_root(), "image-import-shared");
    img::SynthOptions o;
    o.profile = "tiny";
    o.seed = 5;
    tiny_ = new img::SynthResult(img::synth_image(o, path_join(shared_->path(), "tiny")));
  }
  static void TearDownTestSuite() {
    delete tiny_;
    delete shared_;
    tiny_ = nullptr;
    shared_ = nullptr;
  }

  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "import-" + GetParam());
    const auto& spec = snap::builtin_registry().get(GetParam());
    auto a = spec.probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << GetParam() << " is unavailable here: " << a.reason;
    sn_ = spec.create(path_join(tmp_->path(), "root"), {});
    opts_.scratch_dir = tmp_->path();
  }

  void TearDown() override {
    if (sn_) sn_->close();
    sn_.reset();
    if (tmp_) {
      auto left = mounts_under(tmp_->path());
      EXPECT_TRUE(left.empty()) << "left mounted: " << left.front();
      for (const auto& m : left) unmount(m);
    }
  }

  // The merged view of a committed snapshot, read through a view mount.
  img::FileIndex view_of(const std::string& top, const std::function<void(const std::string&)>& also = {}) {
    std::string key = "check-" + std::to_string(++views_);
    img::FileIndex out;
    with_mounted(sn_->view(key, top), tmp_->path(), [&](const std::string& dir) {
      out = img::index_directory(dir);
      if (also) also(dir);
    });
    sn_->remove(key);
    return out;
  }

  // What a backend cannot keep, with the reason (containerd marks such cases unsupported):
  // Debian's unionfs-fuse 1.0 is built without xattrs, gives symbolic links the time it made
  // them (libfuse 2 has no lutimes), and copies a hard link whose names are in different layers.
  static bool keeps_symlink_times() { return GetParam() != "unionfs-fuse"; }
  static bool keeps_xattrs() { return GetParam() != "unionfs-fuse"; }
  static bool keeps_cross_layer_links() { return GetParam() != "unionfs-fuse"; }

  void expect_view(const std::string& top, const img::FileIndex& want, bool mtimes = true) {
    img::FileIndex got = view_of(top), expected = want;
    if (!keeps_symlink_times()) {
      for (auto* index : {&got, &expected})
        for (auto& [path, e] : index->entries)
          if (e.type == 'l') e.mtime_ns = 0;
    }
    std::string diff = img::diff_index(expected, got, mtimes);
    EXPECT_TRUE(diff.empty()) << GetParam() << ": the imported view differs:\n" << diff;
  }

  img::Image open(const std::string& ref) { return img::open_image(img::parse_ref(ref), path_join(tmp_->path(), "cache")); }

  static TempDir* shared_;
  static img::SynthResult* tiny_;
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<snap::Snapshotter> sn_;
  img::ImportOptions opts_;
  int views_ = 0;
};
TempDir* ImageImport::shared_ = nullptr;
img::SynthResult* ImageImport::tiny_ = nullptr;

TEST_P(ImageImport, SynthRoundTrip) {
  img::Image im = open("oci:" + tiny_->dir);
  img::ImportResult r = img::import_image(im, *sn_, opts_);
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.top, im.top_chain_id());
  EXPECT_FALSE(r.reused);
  EXPECT_GT(r.uncompressed_bytes, 0u);
  for (size_t i = 0; i < r.layers.size(); ++i) {
    EXPECT_EQ(sn_->stat(r.layers[i].chain_id).kind, snap::Kind::kCommitted);
    EXPECT_EQ(sn_->stat(r.layers[i].chain_id).parent, i ? r.layers[i - 1].chain_id : "");
    EXPECT_EQ(sn_->stat(r.layers[i].chain_id).labels.at("cowbench.image.diff-id"), im.layers[i].diff_id);
  }
  EXPECT_EQ(r.layers[1].stats.opaques, 1u);
  expect_view(r.top, tiny_->expected);
  view_of(r.top, [&](const std::string& dir) {
    char value[64] = {};
    ssize_t n = getxattr(path_join(dir, "etc/app.conf").c_str(), "user.cowbench.tag", value, sizeof value);
    if (keeps_xattrs()) {
      EXPECT_EQ(std::string(value, n > 0 ? n : 0), "tiny") << GetParam() << ": xattrs must survive";
    }
    struct stat a {}, b {};
    ASSERT_EQ(lstat(path_join(dir, "usr/bin/tool1").c_str(), &a), 0);
    ASSERT_EQ(lstat(path_join(dir, "usr/bin/tool1-copy").c_str(), &b), 0);
    if (keeps_cross_layer_links()) {
      EXPECT_EQ(a.st_ino, b.st_ino) << "a hard link across layers";
    }
  });
  // Every intermediate layer is a valid image of its own.
  img::IndexBuilder b;
  b.add_layer(*im.read_layer(0));
  expect_view(r.layers[0].chain_id, b.index());
}

TEST_P(ImageImport, CacheReuseAndFresh) {
  img::Image im = open("synth:tiny@9");
  img::ImportResult first = img::import_image(im, *sn_, opts_);
  auto t0 = std::chrono::steady_clock::now();
  img::ImportResult second = img::import_image(im, *sn_, opts_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.top, first.top);
  EXPECT_EQ(second.uncompressed_bytes, 0u);
  EXPECT_LT(secs, 1.0) << "a cached import reads nothing";
  img::ImportOptions fresh = opts_;
  fresh.fresh = true;
  img::ImportResult third = img::import_image(im, *sn_, fresh);
  EXPECT_FALSE(third.reused);
  EXPECT_EQ(third.layers.size(), im.layers.size());
  for (const auto& l : third.layers) EXPECT_FALSE(l.reused);
  EXPECT_EQ(third.top, first.top);
  expect_view(third.top, img::index_image(im));
  // --fresh refuses to pull the chain from under a container.
  sn_->prepare("container", third.top);
  EXPECT_THROW(img::import_image(im, *sn_, fresh), Error);
  sn_->remove("container");
}

// Layer 1 makes a tree; layer 2 deletes files and a directory and makes d opaque; layer 3
// brings some names back. Every backend must show the same merged view.
TEST_P(ImageImport, WhiteoutsAndOpaqueDirectories) {
  std::string dir = path_join(tmp_->path(), "wh");
  write_oci_image(dir, {LayerSpec()
                            .dir("a").dir("a/b").file("a/f1", "one").file("a/b/f2", "two").file("a/keep", "k")
                            .dir("d").file("d/x", "x").file("d/y", "y").dir("d/sub").file("d/sub/z", "z")
                            .file("top", "t").symlink("link", "a/keep"),
                        LayerSpec()
                            .dir("a").whiteout("a/f1").whiteout("a/b")
                            .dir("d", 0750).opaque("d").file("d/new", "n")
                            .whiteout("link").whiteout("nonexistent"),
                        LayerSpec().file("a/f1", "one again").dir("a/b").file("d/x", "x2").whiteout("top")});
  img::Image im = open("oci:" + dir);
  img::ImportResult r = img::import_image(im, *sn_, opts_);
  img::FileIndex want = img::index_image(im);
  for (const char* gone : {"a/b/f2", "d/y", "d/sub", "d/sub/z", "top", "link"})
    EXPECT_EQ(want.entries.count(gone), 0u) << gone;
  for (const char* kept : {"a/keep", "a/f1", "a/b", "d/new", "d/x"}) EXPECT_EQ(want.entries.count(kept), 1u) << kept;
  EXPECT_EQ(want.entries.at("d").mode, 0750u);
  expect_view(r.top, want);
  // The middle layer's view: a/f1 and a/b gone, d holds only "new".
  img::IndexBuilder b;
  b.add_layer(*im.read_layer(0));
  b.add_layer(*im.read_layer(1));
  expect_view(r.layers[1].chain_id, b.index());
  EXPECT_EQ(b.index().entries.count("a/f1"), 0u);

  // How each backend stores the deletions: kernel overlayfs as whiteouts in its layer
  // directories; a backend that is not file-granular (its mounts are binds of its own
  // trees: reflink, btrfs, copy) as real deletions.
  std::string key = "inspect-upper";
  auto mounts = sn_->view(key, r.layers[1].chain_id);
  const snap::Granularity granularity = snap::builtin_registry().get(GetParam()).caps.cow_granularity;
  if (GetParam() == "overlayfs") {
    std::string lower;
    for (const auto& o : mounts.at(0).options)
      if (o.starts_with("lowerdir=")) lower = o.substr(9);
    std::string upper = lower.substr(0, lower.find(':'));  // the nearest layer comes first
    ASSERT_FALSE(upper.empty());
    for (const char* wh : {"a/f1", "a/b", "link"}) {
      struct stat st {};
      ASSERT_EQ(lstat(path_join(upper, wh).c_str(), &st), 0) << wh << " in " << upper;
      EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) << wh << " must be a 0/0 whiteout";
    }
    char v[8] = {};
    ssize_t n = getxattr(path_join(upper, "d").c_str(), "trusted.overlay.opaque", v, sizeof v);
    EXPECT_EQ(std::string(v, n > 0 ? n : 0), "y") << "d must be an opaque directory";
    struct stat st {};
    EXPECT_NE(lstat(path_join(upper, "d/y").c_str(), &st), 0) << "an opaque directory needs no whiteouts inside";
  } else if (granularity != snap::Granularity::kFile) {
    with_mounted(mounts, tmp_->path(), [&](const std::string& d) {
      for (const auto& [p, f] : img::index_directory(d).entries)
        EXPECT_NE(f.type, 'c') << GetParam() << " stores a deletion as a deletion, not " << p;
    });
  }
  sn_->remove(key);
}

// A `docker save`-style archive built here: manifest.json, the config named by its digest,
// an uncompressed layer, a gzip layer, and a layer that is a symlink to an earlier one.
TEST_P(ImageImport, DockerArchive) {
  std::string d = path_join(tmp_->path(), "docker");
  make_dirs(d);
  std::vector<std::string> layers, diff_ids;
  auto put = [&](const LayerSpec& spec, img::Compression c) {
    img::LayerWriter::Result res;
    std::string blob = layer_blob(spec, c, &res);
    std::string id = img::sha256_digest(blob).substr(7);
    make_dirs(path_join(d, id));
    write_file_atomic(path_join(d, id + "/layer.tar"), blob, 0644, false);
    layers.push_back(id + "/layer.tar");
    diff_ids.push_back(res.diff_id);
    return id;
  };
  std::string first = put(LayerSpec().dir("etc").file("etc/a", "A").file("etc/b", "B"), img::Compression::kNone);
  put(LayerSpec().whiteout("etc/a").file("etc/c", "C", 0600, 1000, 1000), img::Compression::kGzip);
  make_dirs(path_join(d, "again"));
  ASSERT_EQ(symlink(("../" + first + "/layer.tar").c_str(), path_join(d, "again/layer.tar").c_str()), 0);
  layers.push_back("again/layer.tar");
  diff_ids.push_back(diff_ids.front());
  nlohmann::json config = {{"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string config_text = config.dump();
  std::string config_name = img::sha256_digest(config_text).substr(7) + ".json";
  write_file_atomic(path_join(d, config_name), config_text, 0644, false);
  nlohmann::json manifest = nlohmann::json::array({{{"Config", config_name}, {"RepoTags", {"test:latest"}}, {"Layers", layers}}});
  write_file_atomic(path_join(d, "manifest.json"), manifest.dump(), 0644, false);
  std::string archive = path_join(tmp_->path(), "image.tar");
  sh("tar -cf " + archive + " -C " + d + " .");

  img::Image im = open("docker-archive:" + archive);
  EXPECT_EQ(im.format, "docker-archive");
  ASSERT_EQ(im.layers.size(), 3u);
  img::ImportResult r = img::import_image(im, *sn_, opts_);
  img::FileIndex v = view_of(r.top);
  EXPECT_EQ(v.entries.at("etc/a").sha256, img::sha256_digest("A")) << "the third layer brings etc/a back";
  EXPECT_EQ(v.entries.at("etc/c").uid, 1000u);
  EXPECT_EQ(v.entries.at("etc/c").mode, 0600u);
  expect_view(r.top, img::index_image(im));

  // A config that does not match its name is refused.
  write_file_atomic(path_join(d, config_name), config_text + " ", 0644, false);
  sh("tar -cf " + archive + " -C " + d + " .");
  EXPECT_THROW(open("docker-archive:" + archive), Error);
}

// An image written by umoci (unpack, change the rootfs, repack, twice) imports to exactly
// the rootfs umoci packed.
TEST_P(ImageImport, UmociImage) {
  if (access("/usr/bin/umoci", X_OK) != 0) GTEST_SKIP() << "umoci is not installed (scripts/install-deps.sh installs it)";
  std::string t = tmp_->path();
  std::string layout = path_join(t, "umoci"), b1 = path_join(t, "bundle1"), b2 = path_join(t, "bundle2");
  sh("umoci init --layout " + layout);
  sh("umoci new --image " + layout + ":latest");
  sh("umoci unpack --image " + layout + ":latest " + b1);
  std::string r1 = path_join(b1, "rootfs");
  sh("cd " + r1 + " && mkdir -p etc usr/bin var/lib/app home/u && echo hello > etc/motd && printf 'x%.0s' $(seq 1 5000) > usr/bin/tool"
     " && chmod 4755 usr/bin/tool && ln usr/bin/tool usr/bin/tool2 && ln -s ../usr/bin/tool etc/tool-link"
     " && echo data > var/lib/app/db && echo gone > var/lib/app/old && chown -R 1000:1000 home/u && mkfifo var/lib/app/fifo"
     " && setfattr -n user.umoci -v yes etc/motd && touch -d 2023-05-01T10:00:00 etc/motd");
  sh("umoci repack --image " + layout + ":latest " + b1);
  sh("umoci unpack --image " + layout + ":latest " + b2);
  std::string r2 = path_join(b2, "rootfs");
  sh("cd " + r2 + " && rm var/lib/app/old && rm -rf home/u && echo changed > etc/motd && mkdir -p opt/new && echo n > opt/new/f");
  sh("umoci repack --image " + layout + ":latest " + b2);

  img::Image im = open("oci:" + layout + ":latest");
  ASSERT_GE(im.layers.size(), 2u);
  img::ImportResult r = img::import_image(im, *sn_, opts_);
  img::FileIndex want = img::index_directory(r2);
  for (auto& [p, f] : want.entries)  // umoci's tar rounds mtimes to whole seconds
    f.mtime_ns = (f.mtime_ns + 500'000'000) / 1'000'000'000 * 1'000'000'000;
  expect_view(r.top, want);
  EXPECT_EQ(want.entries.count("var/lib/app/old"), 0u);
  EXPECT_EQ(want.entries.at("usr/bin/tool").mode, 04755u);
}

std::vector<std::string> backends() { return snap::builtin_registry().names(); }

INSTANTIATE_TEST_SUITE_P(Backends, ImageImport, ::testing::ValuesIn(backends()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace cowbench::test
