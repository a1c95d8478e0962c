// `cowbench image pack`: tarballs and directories into a multi-layer OCI layout that cowbench and umoci both read.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>

#include "common/error.h"
#include "common/fs.h"
#include "images/file_index.h"
#include "images/image.h"
#include "images/pack.h"
#include "tests/image_samples.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class Pack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "pack");
    base_ = path_join(tmp_->path(), "base.tar.gz");
    img::TarEntry console = tar_entry("dev/console", 'c', 0600);
    console.dev_major = 5;
    console.dev_minor = 1;
    write_file_atomic(base_,
                      layer_blob(LayerSpec()
                                     .dir("", 0755)
                                     .add(console)
                                     .file("etc/os-release", "ID=debian\n")
                                     .file("etc/motd", "hello\n")
                                     .file("usr/lib/libc.so", std::string(300000, 'c'), 0755),
                                 img::Compression::kGzip),
                      0644, false);
    app_ = path_join(tmp_->path(), "app");
    make_dirs(path_join(app_, "srv"));
    make_dirs(path_join(app_, "etc"));
    write_file_atomic(path_join(app_, "srv/app.db"), std::string(2 << 20, 'a'), 0640, false);
    write_file_atomic(path_join(app_, "etc/.wh.motd"), "", 0644, false);  // a directory can delete, too
  }

  // The entries of the parent directory of `out` that pack may have left.
  std::vector<std::string> leftovers() {
    std::vector<std::string> out;
    for (const auto& [name, e] : list_tree(tmp_->path()))
      if (name.starts_with(".cowbench-pack")) out.push_back(name);
    return out;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string base_, app_;
};

TEST_F(Pack, TarAndDirectoryMakeTwoLayers) {
  img::PackOptions o;
  o.layers = {base_, app_};
  o.out = path_join(tmp_->path(), "oci");
  o.tag = "v1";
  img::PackResult r = img::pack_image(o);
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_FALSE(r.layers[0].directory);
  EXPECT_TRUE(r.layers[1].directory);
  EXPECT_EQ(r.skipped_devices, 1u);
  EXPECT_EQ(r.skipped_device_paths, std::vector<std::string>{"/dev/console"});
  EXPECT_TRUE(leftovers().empty());

  img::Image im = img::open_image(img::parse_ref("oci:" + o.out + ":v1"), "");
  ASSERT_EQ(im.layers.size(), 2u);
  EXPECT_EQ(im.manifest.digest, r.manifest_digest);
  EXPECT_EQ(im.layers[1].diff_id, r.layers[1].diff_id);
  img::FileIndex merged = img::index_image(im);
  img::FileIndex bottom;
  {
    img::IndexBuilder b;
    b.add_layer(*im.read_layer(0));
    bottom = b.take();
  }
  EXPECT_EQ(merged.file_bytes(), 300000u + 10u + (2u << 20)) << "libc, os-release, the db; motd deleted";
  EXPECT_EQ(bottom.file_bytes(), 300000u + 10u + 6u);

  // umoci unpacks it into the same tree.
  if (std::system("command -v umoci > /dev/null 2>&1") != 0) {
    std::cout << "umoci is not installed: the umoci check is skipped\n";
    return;
  }
  std::string bundle = path_join(tmp_->path(), "bundle");
  std::string cmd = fmt::format("umoci unpack --image {}:v1 {} > {}/umoci.log 2>&1", o.out, bundle, tmp_->path());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(path_join(tmp_->path(), "umoci.log"));
  std::string rootfs = path_join(bundle, "rootfs");
  EXPECT_EQ(read_file(path_join(rootfs, "etc/os-release")), "ID=debian\n");
  EXPECT_EQ(read_file(path_join(rootfs, "srv/app.db")).size(), size_t{2} << 20);
  struct stat st {};
  EXPECT_NE(lstat(path_join(rootfs, "etc/motd").c_str(), &st), 0) << "the directory's whiteout must delete etc/motd";
  EXPECT_NE(lstat(path_join(rootfs, "dev/console").c_str(), &st), 0);
}

TEST_F(Pack, DevicesAllowedAreKept) {
  img::PackOptions o;
  o.layers = {base_};
  o.out = path_join(tmp_->path(), "oci");
  o.devices = img::DevicePolicy::kAllow;
  img::PackResult r = img::pack_image(o);
  EXPECT_EQ(r.skipped_devices, 0u);
  img::Image im = img::open_image(img::parse_ref("oci:" + o.out), "");
  img::FileIndex merged = img::index_image(im);
  EXPECT_EQ(merged.count('c'), 1u);

  o.out = path_join(tmp_->path(), "oci-refuse");
  o.devices = img::DevicePolicy::kRefuse;
  EXPECT_THROW(img::pack_image(o), Error);
  struct stat st {};
  EXPECT_NE(stat(o.out.c_str(), &st), 0) << "a refused pack must leave no --out";
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(Pack, BadInputLeavesNothing) {
  std::string out = path_join(tmp_->path(), "taken");
  make_dirs(out);
  write_file_atomic(path_join(out, "keep"), "mine\n", 0644, false);
  img::PackOptions o;
  o.layers = {base_};
  o.out = out;
  try {
    img::pack_image(o);
    ADD_FAILURE() << "packed onto a non-empty directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kAlreadyExists);
    EXPECT_NE(std::string(e.what()).find(out), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path_join(out, "keep")), "mine\n");

  // A hostile tar as the second layer: refused with the layer check's message, nothing left.
  std::string evil = path_join(tmp_->path(), "evil.tar");
  write_file_atomic(evil, layer_blob(LayerSpec().file("a/../../escape", "x")), 0644, false);
  o.layers = {base_, evil};
  o.out = path_join(tmp_->path(), "empty");
  make_dirs(o.out);  // an empty directory is accepted as --out, and kept on failure
  try {
    img::pack_image(o);
    ADD_FAILURE() << "packed a hostile layer";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("'..' component"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(list_tree(o.out).size() == 1u) << dump_tree(list_tree(o.out));
  EXPECT_TRUE(leftovers().empty());

  // An --out whose parent does not exist: refused, nothing made on the way.
  o.layers = {base_};
  o.out = path_join(tmp_->path(), "none/deeper/out");
  EXPECT_THROW(img::pack_image(o), Error);
  struct stat st {};
  EXPECT_NE(stat(path_join(tmp_->path(), "none").c_str(), &st), 0);

  // The command line: exit 2 and the reason, for a non-empty --out and a missing layer.
  CliResult r = run_cli(COWBENCH_BIN, "image pack --layer " + base_ + " --out " + out);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("not an empty directory"), std::string::npos) << r.out;
  r = run_cli(COWBENCH_BIN, "image pack --layer " + path_join(tmp_->path(), "nope") + " --out " +
                                path_join(tmp_->path(), "new"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  r = run_cli(COWBENCH_BIN, "image pack --layer " + base_ + " --layer " + app_ + " --out " +
                                path_join(tmp_->path(), "cli") + " --tag t");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipped 1 device node (/dev/console); --devices allow to keep them"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("oci:" + path_join(tmp_->path(), "cli") + ":t"), std::string::npos) << r.out;
  EXPECT_TRUE(leftovers().empty());
}

}  // namespace
}  // namespace cowbench::test
