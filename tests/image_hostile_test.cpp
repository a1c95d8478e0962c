// Layer tars as hostile input: each case is refused, named by layer and entry, and nothing is written outside the root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/error.h"
#include "common/fs.h"
#include "images/apply.h"
#include "images/image.h"
#include "images/import.h"
#include "snapshotters/registry.h"
#include "tests/image_samples.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "hostile");
    sentinel_ = path_join(tmp_->path(), "sentinel");
    make_dirs(sentinel_);
    write_file_atomic(path_join(sentinel_, "file"), "precious\n", 0644, false);
  }

  // The tree next to the root: the sentinel directory and nothing else.
  Tree outside() {
    Tree t = list_tree(tmp_->path());
    for (auto it = t.begin(); it != t.end();)
      it = it->first == "root" || it->first.starts_with("root/") ? t.erase(it) : std::next(it);
    return t;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string sentinel_;
};

TEST_F(Hostile, EveryCaseIsRefused) {
  auto samples = hostile_samples(sentinel_);
  ASSERT_GE(samples.size(), 20u);
  for (const auto& s : samples) {
    SCOPED_TRACE(s.name);
    std::string root = path_join(tmp_->path(), "root");
    make_dirs(root);
    Tree before = outside();
    try {
      img::LayerReader reader(img::memory_source(s.blob, s.name), s.expect);
      img::apply_layer(reader, root);
      ADD_FAILURE() << s.name << ": applied without an error";
    } catch (const Error& e) {
      std::string msg = e.what();
      std::cout << s.name << ": " << msg.substr(0, 240) << "\n";
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << msg;
      EXPECT_NE(msg.find(s.error), std::string::npos) << "message: " << msg;
      EXPECT_NE(msg.find("layer " + s.expect.name), std::string::npos) << "must name the layer: " << msg;
      if (!s.entry.empty()) {
        EXPECT_NE(msg.find("entry '" + s.entry + "'"), std::string::npos) << "must name the entry: " << msg;
      }
    }
    std::string diff = diff_trees(before, outside());
    EXPECT_TRUE(diff.empty()) << s.name << " wrote outside the root:\n" << diff;
    remove_tree(root);
  }
}

// The same layers through the in-memory indexer (index_image's path): refused too.
TEST_F(Hostile, IndexerRefusesEscapes) {
  for (const auto& s : hostile_samples(sentinel_)) {
    if (s.name.find("device") != std::string::npos) continue;  // an index may list devices
    SCOPED_TRACE(s.name);
    EXPECT_THROW(
        {
          img::IndexBuilder b;
          img::LayerReader reader(img::memory_source(s.blob, s.name), s.expect);
          b.add_layer(reader);
        },
        Error)
        << s.name;
  }
}

TEST_F(Hostile, DevicePolicies) {
  img::TarEntry null_dev = tar_entry("dev/null", 'c', 0666);
  null_dev.dev_major = 1;
  null_dev.dev_minor = 3;
  std::string blob = layer_blob(LayerSpec().add(null_dev).file("after", "x"));
  std::string root = path_join(tmp_->path(), "root");
  make_dirs(root);
  img::ApplyOptions skip;
  skip.devices = img::DevicePolicy::kSkip;
  img::LayerReader r1(img::memory_source(blob), {"devices"});
  auto st = img::apply_layer(r1, root, skip);
  EXPECT_EQ(st.skipped, 1u);
  struct stat sb {};
  EXPECT_NE(lstat(path_join(root, "dev/null").c_str(), &sb), 0);
  EXPECT_EQ(lstat(path_join(root, "after").c_str(), &sb), 0);

  img::ApplyOptions allow;
  allow.devices = img::DevicePolicy::kAllow;
  img::LayerReader r2(img::memory_source(blob), {"devices"});
  img::apply_layer(r2, root, allow);
  ASSERT_EQ(lstat(path_join(root, "dev/null").c_str(), &sb), 0);
  EXPECT_TRUE(S_ISCHR(sb.st_mode));
  EXPECT_EQ(sb.st_rdev, makedev(1, 3));
  EXPECT_EQ(img::parse_device_policy("skip"), img::DevicePolicy::kSkip);
  EXPECT_THROW(img::parse_device_policy("maybe"), Error);
}

// A hostile layer in an image imported into a backend: the import fails, the layer's active
// snapshot is removed, nothing is committed and nothing is written outside.
TEST_F(Hostile, ImportLeavesNothing) {
  const auto& spec = snap::builtin_registry().get("overlayfs");
  auto a = spec.probe(tmp_->path());
  if (!a.available) GTEST_SKIP() << "overlayfs: " << a.reason;
  std::string image_dir = path_join(tmp_->path(), "image");
  write_oci_image(image_dir, {LayerSpec().file("ok", "ok").dir("d"),
                              LayerSpec().symlink("d/evil", sentinel_).file("d/evil/pwned", "x")});
  img::Image im = img::open_image(img::parse_ref("oci:" + image_dir), "");
  auto sn = spec.create(path_join(tmp_->path(), "snapshots"), {});
  Tree before = outside();
  img::ImportOptions o;
  o.scratch_dir = tmp_->path();
  try {
    img::import_image(im, *sn, o);
    ADD_FAILURE() << "imported a hostile image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'd/evil/pwned'"), std::string::npos) << e.what();
  }
  std::vector<std::string> names;
  sn->walk([&](const snap::Info& i) { names.push_back(i.name + ":" + snap::kind_name(i.kind)); });
  ASSERT_EQ(names.size(), 1u) << "only the good first layer stays";
  EXPECT_EQ(names[0], im.layers[0].chain_id + ":" + snap::kind_name(snap::Kind::kCommitted));
  Tree after = outside();
  after.erase("image");
  before.erase("image");
  for (auto it = after.begin(); it != after.end();)
    it = it->first.starts_with("snapshots") || it->first.starts_with("image") ? after.erase(it) : std::next(it);
  for (auto it = before.begin(); it != before.end();)
    it = it->first.starts_with("snapshots") || it->first.starts_with("image") ? before.erase(it) : std::next(it);
  EXPECT_EQ(diff_trees(before, after), "");
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  sn->close();
}

}  // namespace
}  // namespace cowbench::test
