// overlayfs backend specifics: whole-file copy-up, backend options reach the kernel, unusable roots.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class Overlayfs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "ovl");
    auto a = spec().probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << "overlayfs unavailable: " << a.reason;
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_TRUE(mounts_under(tmp_->path()).empty());
    }
  }
  static const snap::BackendSpec& spec() { return snap::builtin_registry().get("overlayfs"); }

  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {}) {
    return spec().create(path_join(tmp_->path(), "root" + std::to_string(++roots_)), o);
  }

  // A committed base with one file of `size` bytes.
  void base(snap::Snapshotter& sn, size_t size) {
    with_mounted(sn.prepare("b", ""), tmp_->path(), create_file("big", std::string(size, 'L')));
    sn.commit("base", "b");
  }

  std::unique_ptr<TempDir> tmp_;
  int roots_ = 0;
};

TEST_F(Overlayfs, FirstWriteCopiesTheWholeFile) {
  auto sn = open();
  base(*sn, 8 << 20);
  auto before = sn->usage("base");
  with_mounted(sn->prepare("c", "base"), tmp_->path(), [&](const std::string& dir) {
    int fd = ::open((dir + "/big").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "x", 1), 1);
    close(fd);
  });
  auto u = sn->usage("c");
  EXPECT_GE(u.size, 8 << 20) << "file-granular copy-up copies the whole 8 MiB file";
  EXPECT_EQ(u.shared, -1);
  EXPECT_GE(before.size, 8 << 20);
}

TEST_F(Overlayfs, MetacopyCopiesMetadataOnly) {
  auto sn = open({{"metacopy", "on"}});
  base(*sn, 8 << 20);
  with_mounted(sn->prepare("c", "base"), tmp_->path(), chmod_path("big", 0600));
  auto u = sn->usage("c");
  EXPECT_LT(u.size, 1 << 20) << "with metacopy=on a chmod must not copy the data up";
  // The upper inode carries the metacopy marker.
  std::string upper;
  for (const auto& m : sn->mounts("c"))
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) upper = o.substr(9);
  ASSERT_FALSE(upper.empty());
  EXPECT_GE(lgetxattr((upper + "/big").c_str(), "trusted.overlay.metacopy", nullptr, 0), 0);
}

TEST_F(Overlayfs, OptionsAreValidated) {
  EXPECT_THROW(open({{"volatile", "maybe"}}), Error);
  EXPECT_THROW(open({{"index", "on,metacopy=on"}}), Error);
  EXPECT_THROW(open({{"nosuch", "on"}}), Error);
  // A value the kernel refuses fails when the backend opens (a trial mount with the options),
  // as bad input naming the option, with the kernel's reason; nothing stays mounted (TearDown).
  for (const snap::BackendOptions& bad : {snap::BackendOptions{{"redirect_dir", "bogus"}},
                                          snap::BackendOptions{{"metacopy", "maybe"}, {"index", "on"}}}) {
    std::string option = bad.count("metacopy") ? "metacopy=maybe" : "redirect_dir=bogus";
    try {
      open(bad);
      ADD_FAILURE() << option << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
      EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
    }
    snap::Availability a = spec().try_options(tmp_->path(), bad);
    EXPECT_FALSE(a.available);
    EXPECT_NE(a.reason.find("refuses overlay option " + option), std::string::npos) << a.reason;
  }
  // Options the kernel takes only apart: the set is named.
  snap::Availability both = spec().try_options(tmp_->path(), {{"metacopy", "on"}, {"redirect_dir", "off"}});
  EXPECT_FALSE(both.available);
  EXPECT_NE(both.reason.find("together"), std::string::npos) << both.reason;
  EXPECT_TRUE(spec().try_options(tmp_->path(), {{"metacopy", "on"}, {"index", "on"}}).available);
}

// A view of a chain whose layers hold metacopy files (chmod with metacopy=on) reads their data:
// the view is mounted with metacopy=on too.
TEST_F(Overlayfs, ViewOfMetacopyLayersReadsTheirData) {
  auto sn = open({{"metacopy", "on"}});
  base(*sn, 100000);
  with_mounted(sn->prepare("m", "base"), tmp_->path(), chmod_path("big", 0600));
  sn->commit("mid", "m");
  with_mounted(sn->view("v", "mid"), tmp_->path(), [](const std::string& dir) {
    EXPECT_EQ(read_file(dir + "/big"), std::string(100000, 'L'));
    struct stat st {};
    ASSERT_EQ(stat((dir + "/big").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  });
}

TEST_F(Overlayfs, RootOnOverlayIsRefusedWithTheReason) {
  // An overlay's upper layer cannot live on another overlay.
  std::string lower = path_join(tmp_->path(), "l"), upper = path_join(tmp_->path(), "u"),
              work = path_join(tmp_->path(), "w"), merged = path_join(tmp_->path(), "m");
  for (const auto& d : {lower, upper, work, merged}) make_dirs(d);
  ScopedMount m({Mount{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}, merged);
  try {
    spec().create(path_join(merged, "root"), {});
    ADD_FAILURE() << "a root on overlayfs must be refused";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.code(), Errc::kUnsupported) << msg;
    EXPECT_NE(msg.find(merged), std::string::npos) << msg;
    EXPECT_NE(msg.find("overlay"), std::string::npos) << msg;
  }
  EXPECT_EQ(mounts_under(merged).size(), 1u);
  m.close();
}

TEST_F(Overlayfs, MountsDescribeTheLayerChain) {
  auto sn = open({{"volatile", "on"}});
  base(*sn, 1);
  with_mounted(sn->prepare("m", "base"), tmp_->path(), create_file("mid", "m"));
  sn->commit("mid", "m");
  auto mounts = sn->prepare("top", "mid");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].type, "overlay");
  std::string lower;
  bool vol = false;
  for (const auto& o : mounts[0].options) {
    if (o.starts_with("lowerdir=")) lower = o.substr(9);
    vol = vol || o == "volatile";
  }
  EXPECT_TRUE(vol);
  // Nearest parent first.
  auto colon = lower.find(':');
  ASSERT_NE(colon, std::string::npos);
  EXPECT_EQ(access((lower.substr(0, colon) + "/mid").c_str(), F_OK), 0) << "the nearest parent (mid) comes first";
  EXPECT_EQ(access((lower.substr(colon + 1) + "/big").c_str(), F_OK), 0) << "base comes last";
  // A view of a single parent is a read-only bind of the parent itself: no copy, no overlay.
  auto v = sn->view("v", "base");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].type, "bind");
}

}  // namespace
}  // namespace cowbench::test
