// erofs backend specifics: layers become EROFS images mounted once and shared, broken images and a missing mkfs.erofs are clear errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <glob.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "snapshotters/erofs/erofs_snapshotter.h"
#include "snapshotters/erofs_image.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using snap::build_erofs_image;
using snap::check_erofs_image;
using snap::find_mkfs_erofs;

// The EROFS mounts in this mount namespace whose source lies under `dir`.
int erofs_mounts_under(const std::string& dir) {
  int n = 0;
  for (const auto& m : parse_mountinfo(read_file("/proc/self/mountinfo")))
    if (m.fs_type == "erofs" && (m.source.starts_with(dir) || m.mount_point.starts_with(dir))) ++n;
  return n;
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  glob_t g{};
  std::vector<std::string> out;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

class Erofs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "erofs");
    auto a = spec().probe(tmp_->path());
    if (!a.available) {
      GTEST_SKIP() << "erofs unavailable: " << a.reason;
    }
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "") << "nothing may stay mounted or attached";
    }
  }
  static const snap::BackendSpec& spec() { return snap::builtin_registry().get("erofs"); }
  std::string root() const { return path_join(tmp_->path(), "root"); }
  std::unique_ptr<snap::Snapshotter> open() { return spec().create(root(), {}); }

  // Two committed layers: base (a 1 MiB file, a directory) and top (deletes base's file).
  void layers(snap::Snapshotter& sn) {
    with_mounted(sn.prepare("b", ""), tmp_->path(),
                 apply_all({create_file("big", std::string(1 << 20, 'L')), create_dir("etc"),
                            create_file("etc/conf", "base")}));
    sn.commit("base", "b");
    with_mounted(sn.prepare("t", "base"), tmp_->path(), apply_all({remove_all("etc/conf"), create_file("top", "t")}));
    sn.commit("top", "t");
  }

  std::unique_ptr<TempDir> tmp_;
};

TEST_F(Erofs, CommittedLayersAreImagesMountedOnceAndShared) {
  auto sn = open();
  layers(*sn);
  // Only the images stay: the directories the layers were applied into are empty.
  auto images = glob_paths(root() + "/snapshots/*/layer.erofs");
  ASSERT_EQ(images.size(), 2u);
  for (const auto& i : images) check_erofs_image(i);
  snap::Usage u = sn->usage("base");
  EXPECT_GT(u.image_bytes, 1 << 20) << "the image holds the 1 MiB file";
  EXPECT_GE(u.inodes, 3);
  EXPECT_EQ(u.size % 512, 0);
  // Mounted on first need: base, once top's active snapshot was prepared on it; top not yet.
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 1);

  // Two containers on top: each layer mounted once, shared by both.
  auto m1 = sn->prepare("c1", "top");
  auto m2 = sn->prepare("c2", "top");
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 2);
  with_mounted(m1, tmp_->path(), [&](const std::string& dir) {
    EXPECT_EQ(read_file(dir + "/top"), "t");
    EXPECT_FALSE(path_exists(dir + "/etc/conf")) << "the whiteout in the top image hides base's file";
    EXPECT_EQ(read_file(dir + "/big").size(), 1u << 20);
    create_file("big", "changed")(dir);  // a copy-up out of the EROFS layer
  });
  EXPECT_GE(sn->usage("c1").size, 4096);
  sn->view("v", "base");  // a view of one layer: a read-only bind of its mount
  with_mounted(sn->mounts("v"), tmp_->path(), [&](const std::string& dir) {
    EXPECT_EQ(read_file(dir + "/etc/conf"), "base");
    EXPECT_LT(::open((dir + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), 0) << "a view is read-only";
  });
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 2);
  sn->remove("c1");
  sn->remove("c2");
  sn->remove("v");
  sn->remove("top");
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 1) << "a removed layer's image is unmounted";
  sn->close();
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 0) << "close unmounts every layer";
  // Only the image stays: the directory base was applied into is empty (its mount point).
  images = glob_paths(root() + "/snapshots/*/layer.erofs");
  ASSERT_EQ(images.size(), 1u);
  std::string fs = path_join(images[0].substr(0, images[0].rfind('/')), "fs");
  EXPECT_EQ(list_tree(fs).size(), 1u) << fs << " must be empty:\n" << dump_tree(list_tree(fs));
}

// A committed layer image cut short: the container's prepare fails with bad input naming the
// image, nothing mounted; the backend stays usable (the intact layer still mounts).
TEST_F(Erofs, TruncatedLayerImageIsNamedAndNothingStaysMounted) {
  {
    auto sn = open();
    layers(*sn);
    sn->close();
  }
  auto images = glob_paths(root() + "/snapshots/*/layer.erofs");
  ASSERT_EQ(images.size(), 2u);
  // The base image (the one with the 1 MiB file): cut in half.
  std::string big = images[0];
  struct stat a {}, b {};
  ASSERT_EQ(::stat(images[0].c_str(), &a), 0);
  ASSERT_EQ(::stat(images[1].c_str(), &b), 0);
  if (b.st_size > a.st_size) big = images[1];
  struct stat st {};
  ASSERT_EQ(::stat(big.c_str(), &st), 0);
  ASSERT_EQ(truncate(big.c_str(), st.st_size / 2), 0);

  auto sn = open();
  try {
    sn->prepare("c", "top");
    ADD_FAILURE() << "a prepare on a truncated layer image must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(big), std::string::npos) << "the error must name the image: " << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_EQ(erofs_mounts_under(tmp_->path()), 0) << "nothing mounted after the failure";
  EXPECT_TRUE(loops_backed_under(tmp_->path()).empty());
  EXPECT_THROW(sn->stat("c"), Error) << "the failed prepare leaves no snapshot";
  sn->close();
}

// The same through `cowbench run`: a cached layer image cut short is exit 2 naming the image,
// with nothing left mounted or attached under the work directory.
TEST_F(Erofs, CliRunOnATruncatedLayerImageExitsTwo) {
  auto lock = hold_host_lock();
  std::string work = path_join(tmp_->path(), "work");
  std::string args = fmt::format("run --backends erofs --workloads startup --repeat 1 --no-warmup --trace off "
                                 "--image synth:tiny --workdir {} --out {}/out",
                                 work, tmp_->path());
  CliResult first = run_cli(COWBENCH_BIN, args);
  ASSERT_EQ(first.code, 0) << first.out;
  auto images = glob_paths(work + "/erofs/snapshots/*/layer.erofs");
  ASSERT_FALSE(images.empty());
  std::string big = images[0];
  for (const auto& i : images) {
    struct stat a {}, b {};
    if (::stat(i.c_str(), &a) == 0 && ::stat(big.c_str(), &b) == 0 && a.st_size > b.st_size) big = i;
  }
  struct stat st {};
  ASSERT_EQ(::stat(big.c_str(), &st), 0);
  ASSERT_EQ(truncate(big.c_str(), st.st_size / 2), 0);
  CliResult second = run_cli(COWBENCH_BIN, args);
  EXPECT_EQ(second.code, 2) << second.out;
  EXPECT_NE(second.out.find(big), std::string::npos) << "the error must name the image: " << second.out;
  EXPECT_NE(second.out.find("truncated"), std::string::npos) << second.out;
  EXPECT_EQ(left_behind(work), "");
}

// mkfs.erofs not on PATH (nor in /sbin, /usr/sbin): the backend is unavailable, saying so.
TEST_F(Erofs, MissingMkfsMakesTheBackendUnavailable) {
  auto where = find_mkfs_erofs();
  ASSERT_TRUE(where);
  if (where->starts_with("/sbin/") || where->starts_with("/usr/sbin/"))
    GTEST_SKIP() << "mkfs.erofs is in " << *where << ", which the lookup always searches";
  std::string empty = path_join(tmp_->path(), "empty-path");
  make_dirs(empty);
  ScopedEnv path("PATH", empty.c_str());
  auto a = spec().probe(tmp_->path());
  EXPECT_FALSE(a.available);
  EXPECT_NE(a.reason.find("mkfs.erofs"), std::string::npos) << a.reason;
  EXPECT_NE(a.reason.find("erofs-utils"), std::string::npos) << a.reason;
  try {
    spec().create(root(), {});
    ADD_FAILURE() << "create without mkfs.erofs must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("mkfs.erofs"), std::string::npos) << e.what();
  }
}

// build_erofs_image keeps what overlayfs reads from a lower layer: whiteouts, opaque directories.
TEST_F(Erofs, ImageKeepsWhiteoutsAndOverlayXattrs) {
  std::string src = path_join(tmp_->path(), "src"), mnt = path_join(tmp_->path(), "mnt");
  make_dirs(src + "/opaque");
  make_dirs(mnt);
  ASSERT_EQ(mknod((src + "/gone").c_str(), S_IFCHR, makedev(0, 0)), 0);
  ASSERT_EQ(setxattr((src + "/opaque").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  create_file("f", "data")(src);
  std::string image = path_join(tmp_->path(), "x.erofs");
  EXPECT_GT(build_erofs_image(src, image), 0u);
  EXPECT_FALSE(path_exists(image + ".tmp"));
  Tree want = list_tree(src);
  {
    snap::ErofsMount m(image, mnt);
    EXPECT_EQ(diff_trees(want, list_tree(mnt)), "");
    char v[2]{};
    EXPECT_EQ(getxattr((mnt + "/opaque").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
    m.close();
  }
  // A source that is not there: mkfs's own words, no image left.
  try {
    build_erofs_image(path_join(tmp_->path(), "nope"), image + "2");
    ADD_FAILURE() << "mkfs.erofs of a missing directory must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mkfs.erofs"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(path_exists(image + "2"));
  EXPECT_FALSE(path_exists(image + "2.tmp"));
}

}  // namespace
}  // namespace cowbench::test
