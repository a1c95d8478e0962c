// Device nodes in layers under each policy: refuse, skip (counted, named, recorded on the snapshot), allow (mknod, cached apart).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "images/apply.h"
#include "images/image.h"
#include "images/import.h"
#include "snapshotters/registry.h"
#include "tests/image_samples.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

img::TarEntry device(const std::string& path, char type, uint32_t major, uint32_t minor) {
  img::TarEntry e = tar_entry(path, type, 0620);
  e.dev_major = major;
  e.dev_minor = minor;
  return e;
}

// A rootfs-like layer: /dev with a console (5:1) and a loop device (block 7:0), and files.
LayerSpec rootfs_with_devices() {
  return LayerSpec()
      .dir("dev")
      .add(device("dev/console", 'c', 5, 1))
      .add(device("dev/loop0", 'b', 7, 0))
      .file("etc/hostname", "box\n")
      .file("usr/bin/tool", "#!/bin/sh\n", 0755);
}

class Devices : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "devices");
  }
  void TearDown() override {
    if (sn_) sn_->close();
    sn_.reset();
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "");
    }
  }

  std::string apply(const LayerSpec& spec, img::DevicePolicy p, img::LayerStats* stats, const std::string& name) {
    std::string root = path_join(tmp_->path(), name);
    make_dirs(root);
    std::string blob = layer_blob(spec);
    img::LayerReader r(img::memory_source(blob, name), {name});
    img::ApplyOptions o;
    o.devices = p;
    *stats = img::apply_layer(r, root, o);
    return root;
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<snap::Snapshotter> sn_;
};

TEST_F(Devices, ApplyUnderEachPolicy) {
  img::LayerStats st;
  try {
    apply(rootfs_with_devices(), img::DevicePolicy::kRefuse, &st, "refuse");
    ADD_FAILURE() << "refuse applied a device node";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("entry 'dev/console'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("character device 5:1 refused"), std::string::npos) << e.what();
  }

  std::string skipped = apply(rootfs_with_devices(), img::DevicePolicy::kSkip, &st, "skip");
  EXPECT_EQ(st.skipped_devices, 2u);
  EXPECT_EQ(st.skipped_device_paths, (std::vector<std::string>{"/dev/console", "/dev/loop0"}));
  struct stat sb {};
  EXPECT_NE(lstat(path_join(skipped, "dev/console").c_str(), &sb), 0);
  EXPECT_EQ(lstat(path_join(skipped, "dev").c_str(), &sb), 0);
  EXPECT_TRUE(S_ISDIR(sb.st_mode));
  EXPECT_EQ(read_file(path_join(skipped, "etc/hostname")), "box\n");

  std::string allowed = apply(rootfs_with_devices(), img::DevicePolicy::kAllow, &st, "allow");
  EXPECT_EQ(st.skipped_devices, 0u);
  EXPECT_EQ(st.specials, 2u);
  ASSERT_EQ(lstat(path_join(allowed, "dev/console").c_str(), &sb), 0);
  EXPECT_TRUE(S_ISCHR(sb.st_mode));
  EXPECT_EQ(sb.st_rdev, makedev(5, 1));
  ASSERT_EQ(lstat(path_join(allowed, "dev/loop0").c_str(), &sb), 0);
  EXPECT_TRUE(S_ISBLK(sb.st_mode));
}

// Imports into overlayfs: refuse commits nothing; skip commits under the chain id and a reuse
// still reports the count (from the snapshot's labels); allow is another snapshot, with the nodes.
TEST_F(Devices, ImportUnderEachPolicy) {
  const auto& spec = snap::builtin_registry().get("overlayfs");
  auto a = spec.probe(tmp_->path());
  if (!a.available) GTEST_SKIP() << "overlayfs: " << a.reason;
  sn_ = spec.create(path_join(tmp_->path(), "root"), {});
  std::string dir = path_join(tmp_->path(), "image");
  write_oci_image(dir, {rootfs_with_devices(), LayerSpec().file("app/run", "app\n")});
  img::Image im = img::open_image(img::parse_ref("oci:" + dir), "");
  img::ImportOptions o;
  o.scratch_dir = tmp_->path();

  o.apply.devices = img::DevicePolicy::kRefuse;
  EXPECT_THROW(img::import_image(im, *sn_, o), Error);
  size_t n = 0;
  sn_->walk([&](const snap::Info&) { ++n; });
  EXPECT_EQ(n, 0u) << "a refused import left snapshots";

  o.apply.devices = img::DevicePolicy::kSkip;
  img::ImportResult skip = img::import_image(im, *sn_, o);
  EXPECT_EQ(skip.top, im.top_chain_id());
  EXPECT_EQ(skip.skipped_devices, 2u);
  EXPECT_EQ(skip.skipped_device_paths, (std::vector<std::string>{"/dev/console", "/dev/loop0"}));
  img::ImportResult again = img::import_image(im, *sn_, o);
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.skipped_devices, 2u) << "a reused layer must still report its skipped device nodes";
  EXPECT_EQ(again.skipped_device_paths, skip.skipped_device_paths);

  o.apply.devices = img::DevicePolicy::kAllow;
  img::ImportResult allow = img::import_image(im, *sn_, o);
  EXPECT_FALSE(allow.reused) << "allow changes the layer's content: it must not reuse the skip import";
  EXPECT_NE(allow.top, skip.top);
  EXPECT_EQ(allow.top, img::layer_snapshot_name(im.top_chain_id(), img::DevicePolicy::kAllow));
  EXPECT_EQ(allow.skipped_devices, 0u);
  auto check = [&](const std::string& top, bool has_console) {
    std::string key = "check-" + top.substr(7, 8);
    with_mounted(sn_->view(key, top), tmp_->path(), [&](const std::string& root) {
      struct stat sb {};
      EXPECT_EQ(lstat(path_join(root, "dev/console").c_str(), &sb) == 0, has_console) << top;
      if (has_console) {
        EXPECT_TRUE(S_ISCHR(sb.st_mode));
      }
      EXPECT_EQ(read_file(path_join(root, "app/run")), "app\n");
    });
    sn_->remove(key);
  };
  check(skip.top, false);
  check(allow.top, true);
  // refuse shares skip's snapshots: a layer refuse accepts has no device nodes.
  EXPECT_EQ(img::layer_snapshot_name(im.top_chain_id(), img::DevicePolicy::kRefuse), im.top_chain_id());
}

}  // namespace
}  // namespace cowbench::test
