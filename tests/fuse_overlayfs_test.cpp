// fuse-overlayfs backend specifics: whole-file copy-up, a killed daemon, a missing program, mounts inside a container.
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
#include "runner/sandbox.h"
#include "snapshotters/registry.h"
#include "tests/fuse_daemons.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using namespace std::chrono_literals;

// Running fuse-overlayfs processes that serve layers under `dir`.
std::vector<pid_t> daemons_under(const std::string& dir) { return test::daemons_under(dir, "fuse-overlayfs"); }

class FuseOverlayfs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    tmp_ = std::make_unique<TempDir>(scratch_root(), "fuse");
    auto a = spec().probe(tmp_->path());
    if (!a.available) GTEST_SKIP() << "fuse-overlayfs unavailable: " << a.reason;
  }
  void TearDown() override {
    if (!tmp_) return;
    auto left = mounts_under(tmp_->path());
    EXPECT_TRUE(left.empty()) << "left mounted: " << left.front();
    for (const auto& m : left) unmount(m);
    EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "a fuse-overlayfs daemon outlived its mount";
  }
  static const snap::BackendSpec& spec() { return snap::builtin_registry().get("fuse-overlayfs"); }

  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {}) {
    return spec().create(path_join(tmp_->path(), "root" + std::to_string(++roots_)), o);
  }

  // A committed base with one file of `size` bytes and a small one.
  void base(snap::Snapshotter& sn, size_t size) {
    with_mounted(sn.prepare("b", ""), tmp_->path(),
                 apply_all({create_file("big", std::string(size, 'L')), create_file("small", "lower\n")}));
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

TEST_F(FuseOverlayfs, FirstSmallWriteCopiesTheWholeFile) {
  auto sn = open();
  base(*sn, 64 << 20);
  auto mounts = sn->prepare("c", "base");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].type, "fuse3.fuse-overlayfs");
  EXPECT_EQ(mounts[0].source, "fuse-overlayfs");
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    int fd = ::open((dir + "/big").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::string block(4096, 'W');
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 1 << 20), 4096);
    close(fd);
    EXPECT_EQ(daemons_under(tmp_->path()).size(), 1u) << "one daemon serves the mount";
  });
  EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "the daemon ends with its mount";
  auto u = sn->usage("c");
  EXPECT_GE(u.size, 64 << 20) << "a 4 KiB write copies the whole 64 MiB file up";
  std::string upper = read_file(path_join(upper_of(mounts), "big"));
  EXPECT_EQ(upper.size(), size_t{64} << 20);
  EXPECT_EQ(upper.substr(1 << 20, 4), "WWWW");
  EXPECT_EQ(upper.substr(0, 4), "LLLL");
}

TEST_F(FuseOverlayfs, KilledDaemonIsAnErrorNotAHang) {
  auto sn = open();
  base(*sn, 10);
  std::string dir = mount_dir("merged");
  ScopedMount m(sn->prepare("c", "base"), dir);
  EXPECT_EQ(fuse_mount_failure(dir), std::nullopt);
  auto pids = daemons_under(tmp_->path());
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);

  // The next operation fails at once ...
  auto err = bounded<int>(10s, [dir] {
    int fd = ::open((dir + "/small").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return fd >= 0 ? 0 : errno;
  });
  ASSERT_TRUE(err.has_value()) << "an operation on the dead mount hung";
  // ENOTCONN, or ECONNABORTED for a request that was under way when the daemon died.
  EXPECT_TRUE(*err == ENOTCONN || *err == ECONNABORTED) << strerror(*err);
  // ... and the mount layer says why.
  try {
    check_fuse_mount(dir);
    ADD_FAILURE() << "check_fuse_mount must throw for a dead daemon";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.sys_errno(), ENOTCONN);
    EXPECT_NE(msg.find("killed by signal 9"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(pids[0])), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  }
  // Cleanup still works: nothing mounted, the daemon reaped (not even a zombie).
  m.close();
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  EXPECT_NE(access(("/proc/" + std::to_string(pids[0])).c_str(), F_OK), 0) << "the dead daemon was not reaped";
}

TEST_F(FuseOverlayfs, MissingProgramIsNamed) {
  {
    ScopedEnv env(kFuseOverlayfsEnv, "/nonexistent/fuse-overlayfs");
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_NE(a.reason.find("COWBENCH_FUSE_OVERLAYFS=/nonexistent/fuse-overlayfs"), std::string::npos) << a.reason;
    try {
      open();
      ADD_FAILURE() << "create() must refuse a missing program";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find("/nonexistent/fuse-overlayfs"), std::string::npos) << e.what();
    }
  }
  {
    ScopedEnv env(kFuseOverlayfsEnv, nullptr);
    ScopedEnv path("PATH", tmp_->path().c_str());
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_EQ(a.reason, "fuse-overlayfs not installed (apt-get install fuse-overlayfs)");
    try {
      open();
      ADD_FAILURE() << "create() must refuse a missing program";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported);
      EXPECT_STREQ(e.what(), "fuse-overlayfs not installed (apt-get install fuse-overlayfs)");
    }
  }
}

TEST_F(FuseOverlayfs, RelativePathsMount) {
  // The CLI's default work dir is relative; the daemon runs elsewhere and must still find it.
  char old[4096];
  ASSERT_NE(getcwd(old, sizeof old), nullptr);
  ASSERT_EQ(chdir(tmp_->path().c_str()), 0);
  auto a = spec().probe("./work");
  ASSERT_EQ(chdir(old), 0);
  EXPECT_TRUE(a.available) << a.reason;
}

TEST_F(FuseOverlayfs, DaemonThatCannotStartIsReported) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  std::string dir = mount_dir("merged");
  {
    // A program that exits at once: its status is in the error, nothing stays mounted.
    ScopedEnv env(kFuseOverlayfsEnv, "/bin/false");
    try {
      mount_all(mounts, dir);
      ADD_FAILURE() << "a daemon that exits must fail the mount";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("exited with status 1"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(mounts_under(dir).empty());
  }
  // fuse-overlayfs's own complaint (a missing layer) reaches the error.
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
    auto pids = daemons_under(tmp_->path());
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

TEST_F(FuseOverlayfs, MountsInsideAContainerAndLeavesNothingBehind) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  SandboxOptions o;
  o.mounts = mounts;
  o.rootfs = mount_dir("rootfs");
  o.timeout = 60s;
  // Reads a lower file, writes a new one, makes a directory (fuse-overlayfs sets its ACL
  // by absolute path: this breaks if pivot_root re-roots the daemon onto its own mount).
  SandboxResult r = run_in_sandbox(o, [] {
    std::string lower = read_file("/small");
    write_file_atomic("/out", "written in the container\n", 0644, false);
    make_dirs("/newdir/sub");
    if (symlink("out", "/link") != 0) fail_sys("symlink");
    return nlohmann::json{{"lower", lower}, {"out", read_file("/link")}};
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result["lower"], "lower\n");
  EXPECT_EQ(r.result["out"], "written in the container\n");
  EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "the container's mount stayed";
  EXPECT_TRUE(daemons_under(tmp_->path()).empty()) << "the container's daemon outlived it";
  std::string upper = upper_of(mounts);
  EXPECT_EQ(read_file(path_join(upper, "out")), "written in the container\n");
  struct stat st {};
  EXPECT_EQ(::stat(path_join(upper, "newdir/sub").c_str(), &st), 0);
}

}  // namespace
}  // namespace cowbench::test
