// unionfs-fuse backend specifics: whole-file copy-up, its whiteouts in committed layers, a killed daemon, a missing program, mounts inside a container, the aufs row.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "runner/host.h"
#include "runner/sandbox.h"
#include "snapshotters/registry.h"
#include "tests/fuse_daemons.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using namespace std::chrono_literals;

// Running unionfs-fuse processes that serve branches under `dir` (its comm is "unionfs" or
// "unionfs-fuse", by the name it was run as).
std::vector<pid_t> daemons_under(const std::string& dir) { return test::daemons_under(dir, "unionfs"); }

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class UnionfsFuse : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "unionfs");
    auto a = spec().probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << "unionfs-fuse unavailable: " << a.reason;
  }
  void TearDown() override {
    if (!tmp_) return;
    auto left = mounts_under(tmp_->path());
    EXPECT_TRUE(left.empty()) << "left mounted: " << left.front();
    for (const auto& m : left) unmount(m);
    EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "a unionfs-fuse daemon outlived its mount";
  }
  static const snap::BackendSpec& spec() { return snap::builtin_registry().get("unionfs-fuse"); }

  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {}) {
    return spec().create(path_join(tmp_->path(), "root" + std::to_string(++roots_)), o);
  }

  // A committed base: a file of `size` bytes, a small one, a directory with a file.
  void base(snap::Snapshotter& sn, size_t size) {
    with_mounted(sn.prepare("b", ""), tmp_->path(),
                 apply_all({create_file("big", std::string(size, 'L')), create_file("small", "lower\n"),
                            create_dir("dir"), create_file("dir/old", "old")}));
    sn.commit("base", "b");
  }

  std::string mount_dir(const std::string& name) {
    std::string d = path_join(tmp_->path(), name);
    make_dirs(d);
    return d;
  }

  std::unique_ptr<TempDir> tmp_;
  int roots_ = 0;
};

TEST_F(UnionfsFuse, FirstSmallWriteCopiesTheWholeFile) {
  auto sn = open();
  base(*sn, 16 << 20);
  auto mounts = sn->prepare("c", "base");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].type, "fuse.unionfs-fuse");
  EXPECT_EQ(mounts[0].source, "unionfs-fuse");
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    int fd = ::open((dir + "/big").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::string block(4096, 'W');
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 1 << 20), 4096);
    close(fd);
    EXPECT_EQ(daemons_under(tmp_->path()).size(), 1u) << "one daemon serves the mount";
  });
  EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "the daemon ends with its mount";
  EXPECT_GE(sn->usage("c").size, 16 << 20) << "a 4 KiB write copies the whole 16 MiB file up";
  std::string upper = read_file(path_join(upper_of(mounts), "big"));
  EXPECT_EQ(upper.size(), size_t{16} << 20);
  EXPECT_EQ(upper.substr(1 << 20, 4), "WWWW");
  EXPECT_EQ(upper.substr(0, 4), "LLLL");
  EXPECT_FALSE(exists(path_join(upper_of(mounts), "small"))) << "only the written file is copied";
}

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
  EXPECT_TRUE(exists(path_join(branch, ".unionfs/small_HIDDEN~"))) << "the whiteout of a deleted lower file";
  EXPECT_TRUE(exists(path_join(branch, ".unionfs/dir_HIDDEN~"))) << "the whiteout of a deleted lower directory";
  sn->commit("l1", "l1-active");
  auto m2 = sn->prepare("l2-active", "l1");
  with_mounted(m2, tmp_->path(), [&](const std::string& dir) {
    EXPECT_FALSE(exists(dir + "/small")) << "deleted in the committed layer below";
    EXPECT_FALSE(exists(dir + "/dir/old")) << "the old directory's contents stay hidden";
    EXPECT_EQ(read_file(dir + "/dir/new"), "new");
    Tree t = list_tree(dir);
    EXPECT_EQ(t.count(".unionfs"), 0u) << "the whiteout directory is not listed:\n" << dump_tree(t);
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

TEST_F(UnionfsFuse, KilledDaemonIsAnErrorNotAHang) {
  auto sn = open();
  base(*sn, 10);
  std::string dir = mount_dir("merged");
  ScopedMount m(sn->prepare("c", "base"), dir);
  EXPECT_EQ(fuse_mount_failure(dir), std::nullopt);
  auto pids = daemons_under(tmp_->path());
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);

  auto err = bounded<int>(10s, [dir] {
    int fd = ::open((dir + "/small").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return fd >= 0 ? 0 : errno;
  });
  ASSERT_TRUE(err.has_value()) << "an operation on the dead mount hung";
  EXPECT_TRUE(*err == ENOTCONN || *err == ECONNABORTED) << strerror(*err);
  try {
    check_fuse_mount(dir);
    ADD_FAILURE() << "check_fuse_mount must throw for a dead daemon";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.sys_errno(), ENOTCONN);
    EXPECT_NE(msg.find("unionfs-fuse (pid " + std::to_string(pids[0])), std::string::npos) << msg;
    EXPECT_NE(msg.find("killed by signal 9"), std::string::npos) << msg;
  }
  m.close();
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  EXPECT_NE(access(("/proc/" + std::to_string(pids[0])).c_str(), F_OK), 0) << "the dead daemon was not reaped";
}

TEST_F(UnionfsFuse, MissingProgramIsNamed) {
  {
    ScopedEnv env(kUnionfsFuseEnv, "/nonexistent/unionfs-fuse");
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_NE(a.reason.find("COWBENCH_UNIONFS_FUSE=/nonexistent/unionfs-fuse"), std::string::npos) << a.reason;
    try {
      open();
      ADD_FAILURE() << "create() must refuse a missing program";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
    }
  }
  {
    ScopedEnv env(kUnionfsFuseEnv, nullptr);
    ScopedEnv path("PATH", tmp_->path().c_str());
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_EQ(a.reason, "unionfs-fuse not installed (apt-get install unionfs-fuse)");
  }
}

TEST_F(UnionfsFuse, DaemonThatCannotStartIsReported) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  std::string dir = mount_dir("merged");
  {
    ScopedEnv env(kUnionfsFuseEnv, "/bin/false");
    try {
      mount_all(mounts, dir);
      ADD_FAILURE() << "a daemon that exits must fail the mount";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("exited with status 1"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(mounts_under(dir).empty());
  }
  // An option libfuse does not know: the daemon's own complaint reaches the error.
  mounts[0].options.push_back("bogus=1");
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
    auto pids = daemons_under(tmp_->path());
    ASSERT_EQ(pids.size(), 1u);
    std::string cmd = slurp("/proc/" + std::to_string(pids[0]) + "/cmdline");
    for (const char* o : {"max_files=4096", "attr_timeout=0", "kernel_cache", "cow", "hide_meta_files"})
      EXPECT_NE(cmd.find(o), std::string::npos) << o << " missing from the daemon's command line";
    EXPECT_EQ(cmd.find("max_files=32768"), std::string::npos) << "the user's max_files replaces the default";
    EXPECT_EQ(cmd.find("direct_io"), std::string::npos);
    EXPECT_EQ(read_file(dir + "/small"), "lower\n");
  });
}

TEST_F(UnionfsFuse, MountsInsideAContainerAndLeavesNothingBehind) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  SandboxOptions o;
  o.mounts = mounts;
  o.rootfs = mount_dir("rootfs");
  o.timeout = 60s;
  // The daemon resolves its branches by path while it serves: this breaks if the container's
  // pivot_root re-roots it onto its own mount.
  SandboxResult r = run_in_sandbox(o, [] {
    std::string lower = read_file("/small");
    write_file_atomic("/out", "written in the container\n", 0644, false);
    make_dirs("/newdir/sub");
    if (symlink("out", "/link") != 0) fail_sys("symlink");
    if (unlink("/big") != 0) fail_sys("unlink /big");
    return nlohmann::json{{"lower", lower}, {"out", read_file("/link")}};
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result["lower"], "lower\n");
  EXPECT_EQ(r.result["out"], "written in the container\n");
  EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "the container's mount stayed";
  EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "the container's daemon outlived it";
  std::string upper = upper_of(mounts);
  EXPECT_EQ(read_file(path_join(upper, "out")), "written in the container\n");
  EXPECT_TRUE(exists(path_join(upper, "newdir/sub")));
  EXPECT_TRUE(exists(path_join(upper, ".unionfs/big_HIDDEN~")));
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
