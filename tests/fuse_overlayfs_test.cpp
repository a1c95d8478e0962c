// fuse-overlayfs backend specifics: its own complaints, its options (the shared FUSE daemon cases: fuse_daemon_test.cpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>


#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "tests/fuse_daemons.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

class FuseOverlayfs : public FuseDaemonFixture {
 protected:
  FuseOverlayfs() : FuseDaemonFixture(fuse_backend("fuse-overlayfs")) {}
};

// fuse-overlayfs's own complaint (a missing layer) reaches the error.
TEST_F(FuseOverlayfs, DaemonComplaintIsReported) {
  std::string dir = mount_dir("merged");
  Mount bad{kFuseOverlayfsType, "fuse-overlayfs", {"lowerdir=" + path_join(tmp_->path(), "no-such-layer")}};
  try {
    mount_all({bad}, dir);
    ADD_FAILURE() << "a missing lower layer must fail the mount";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-layer"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mounts_under(dir).empty());
}

TEST_F(FuseOverlayfs, OptionsAreValidatedAndReachTheDaemon) {
  EXPECT_THROW(open({{"threaded", "2"}}), Error);
  EXPECT_THROW(open({{"timeout", "soon"}}), Error);
  EXPECT_THROW(open({{"noacl", "yes"}}), Error);
  EXPECT_THROW(open({{"nosuch", "1"}}), Error);
  auto sn = open({{"fsync", "0"}, {"threaded", "1"}, {"timeout", "0"}, {"fast_ino", "1"}, {"noacl", "on"},
                  {"static_nlink", "off"}});
  base(*sn, 10);
  with_mounted(sn->prepare("c", "base"), tmp_->path(), [&](const std::string& dir) {
    auto pids = daemons();
    ASSERT_EQ(pids.size(), 1u);
    std::string cmd = slurp("/proc/" + std::to_string(pids[0]) + "/cmdline");
    for (const char* o : {"fsync=0", "threaded=1", "timeout=0", "fast_ino=1", "noacl"})
      EXPECT_NE(cmd.find(o), std::string::npos) << o << " missing from the daemon's command line";
    EXPECT_EQ(cmd.find("static_nlink"), std::string::npos);
    EXPECT_EQ(read_file(dir + "/small"), "lower\n");
  });
  // An option this fuse-overlayfs does not know fails the mount instead of being ignored.
  auto mounts = sn->prepare("d", "base");
  mounts[0].options.push_back("bogus=1");
  try {
    with_mounted(mounts, tmp_->path(), [](const std::string&) {});
    ADD_FAILURE() << "an unknown option must fail the mount";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find("bogus=1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cowbench::test
