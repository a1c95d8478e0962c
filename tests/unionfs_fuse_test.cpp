// unionfs-fuse backend specifics: its whiteouts in committed layers, its own complaints, its options, the aufs row (the shared FUSE daemon cases: fuse_daemon_test.cpp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "runner/host.h"
#include "tests/fuse_daemons.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class UnionfsFuse : public FuseDaemonFixture {
 protected:
  UnionfsFuse() : FuseDaemonFixture(fuse_backend("unionfs-fuse")) {}
};

// unionfs-fuse's whiteouts stay as they are in a committed layer and hide what is below it
// in the snapshots above; a name made again in a later layer shows again, and a directory
// made again over a deleted one stays empty of the old contents.
TEST_F(UnionfsFuse, CommittedWhiteoutsStack) {
  auto sn = open();
  base(*sn, 10);
  auto m1 = sn->prepare("l1-active", "base");
  with_mounted(m1, tmp_->path(), apply_all({remove_all("small"), remove_all("dir"), create_dir("dir"),
                                             create_file("dir/new", "new")}));
  std::string branch = upper_of(m1);
  EXPECT_TRUE(exists(path_join(branch, std::string(kUnionfsMetaDir) + "/small_HIDDEN~"))) << "the whiteout of a deleted lower file";
  EXPECT_TRUE(exists(path_join(branch, std::string(kUnionfsMetaDir) + "/dir_HIDDEN~"))) << "the whiteout of a deleted lower directory";
  sn->commit("l1", "l1-active");
  auto m2 = sn->prepare("l2-active", "l1");
  with_mounted(m2, tmp_->path(), [&](const std::string& dir) {
    EXPECT_FALSE(exists(dir + "/small")) << "deleted in the committed layer below";
    EXPECT_FALSE(exists(dir + "/dir/old")) << "the old directory's contents stay hidden";
    EXPECT_EQ(read_file(dir + "/dir/new"), "new");
    Tree t = list_tree(dir);
    EXPECT_EQ(t.count(kUnionfsMetaDir), 0u) << "the whiteout directory is not listed:\n" << dump_tree(t);
    create_file("small", "again\n")(dir);
  });
  sn->commit("l2", "l2-active");
  with_mounted(sn->view("v", "l2"), tmp_->path(), [&](const std::string& dir) {
    EXPECT_EQ(read_file(dir + "/small"), "again\n");
    EXPECT_EQ(read_file(dir + "/big"), std::string(10, 'L'));
    EXPECT_FALSE(exists(dir + "/dir/old"));
    EXPECT_EQ(read_file(dir + "/dir/new"), "new");
  });
  sn->remove("v");
}

// An option libfuse does not know: the daemon's own complaint reaches the error.
TEST_F(UnionfsFuse, DaemonComplaintIsReported) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  mounts[0].options.push_back("bogus=1");
  std::string dir = mount_dir("merged");
  try {
    mount_all(mounts, dir);
    ADD_FAILURE() << "an unknown option must fail the mount";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bogus"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mounts_under(dir).empty());
}

TEST_F(UnionfsFuse, OptionsAreValidatedAndReachTheDaemon) {
  EXPECT_THROW(open({{"max_files", "many"}}), Error);
  EXPECT_THROW(open({{"attr_timeout", "soon"}}), Error);
  EXPECT_THROW(open({{"direct_io", "yes"}}), Error);
  EXPECT_THROW(open({{"nosuch", "1"}}), Error);
  auto sn = open({{"max_files", "4096"}, {"attr_timeout", "0"}, {"kernel_cache", "on"}, {"direct_io", "off"}});
  base(*sn, 10);
  with_mounted(sn->prepare("c", "base"), tmp_->path(), [&](const std::string& dir) {
    auto pids = daemons();
    ASSERT_EQ(pids.size(), 1u);
    std::string cmd = slurp("/proc/" + std::to_string(pids[0]) + "/cmdline");
    for (const char* o : {"max_files=4096", "attr_timeout=0", "kernel_cache", "cow", "hide_meta_files"})
      EXPECT_NE(cmd.find(o), std::string::npos) << o << " missing from the daemon's command line";
    EXPECT_EQ(cmd.find("direct_io"), std::string::npos);
    EXPECT_EQ(read_file(dir + "/small"), "lower\n");
  });
}

// `cowbench doctor` says why there is no aufs backend (or that this kernel has aufs).
TEST(UnionfsFuseDoctor, AufsRowSaysWhy) {
  bool kernel_has = slurp("/proc/filesystems").find("\taufs\n") != std::string::npos;
  for (const auto& c : host_checks()) {
    if (c.name != "aufs") continue;
    EXPECT_EQ(c.ok, kernel_has) << c.detail;
    if (!kernel_has) {
      EXPECT_NE(c.detail.find("not in mainline kernels"), std::string::npos) << c.detail;
    }
    return;
  }
  ADD_FAILURE() << "no aufs row";
}

}  // namespace
}  // namespace cowbench::test
