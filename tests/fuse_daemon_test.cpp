// What every FUSE daemon backend (fuse-overlayfs, unionfs-fuse) must do: whole-file copy-up, a killed daemon named, a missing or failing program named, mounts inside a container, relative paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/mount.h"
#include "runner/sandbox.h"
#include "tests/fuse_daemons.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using namespace std::chrono_literals;

// WithParamInterface first: GetParam() works once it is constructed.
class FuseDaemons : public ::testing::WithParamInterface<FuseBackend>, public FuseDaemonFixture {
 protected:
  FuseDaemons() : FuseDaemonFixture(GetParam()) {}
};

TEST_P(FuseDaemons, FirstSmallWriteCopiesTheWholeFile) {
  auto sn = open();
  base(*sn, 64 << 20);
  auto mounts = sn->prepare("c", "base");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].type, b_.type);
  EXPECT_EQ(mounts[0].source, b_.program);
  with_mounted(mounts, tmp_->path(), [&](const std::string& dir) {
    int fd = ::open((dir + "/big").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::string block(4096, 'W');
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), 1 << 20), 4096);
    close(fd);
    EXPECT_EQ(daemons().size(), 1u) << "one daemon serves the mount";
  });
  EXPECT_TRUE(daemons().empty()) << "the daemon ends with its mount";
  EXPECT_GE(sn->usage("c").size, 64 << 20) << "a 4 KiB write copies the whole 64 MiB file up";
  std::string upper = read_file(path_join(upper_of(mounts), "big"));
  EXPECT_EQ(upper.size(), size_t{64} << 20);
  EXPECT_EQ(upper.substr(1 << 20, 4), "WWWW");
  EXPECT_EQ(upper.substr(0, 4), "LLLL");
  EXPECT_NE(access(path_join(upper_of(mounts), "small").c_str(), F_OK), 0) << "only the written file is copied";
}

TEST_P(FuseDaemons, KilledDaemonIsAnErrorNotAHang) {
  auto sn = open();
  base(*sn, 10);
  std::string dir = mount_dir("merged");
  ScopedMount m(sn->prepare("c", "base"), dir);
  EXPECT_EQ(fuse_mount_failure(dir), std::nullopt);
  auto pids = daemons();
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
    EXPECT_NE(msg.find(b_.program + " (pid " + std::to_string(pids[0])), std::string::npos) << msg;
    EXPECT_NE(msg.find("killed by signal 9"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  }
  // Cleanup still works: nothing mounted, the daemon reaped (not even a zombie).
  m.close();
  EXPECT_TRUE(mounts_under(tmp_->path()).empty());
  EXPECT_NE(access(("/proc/" + std::to_string(pids[0])).c_str(), F_OK), 0) << "the dead daemon was not reaped";
}

TEST_P(FuseDaemons, MissingProgramIsNamed) {
  std::string missing = "/nonexistent/" + b_.program;
  {
    ScopedEnv env(b_.env.c_str(), missing.c_str());
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_NE(a.reason.find(b_.env + "=" + missing), std::string::npos) << a.reason;
    try {
      open();
      ADD_FAILURE() << "create() must refuse a missing program";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported) << e.what();
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    }
  }
  {
    ScopedEnv env(b_.env.c_str(), nullptr);
    ScopedEnv path("PATH", tmp_->path().c_str());
    std::string want = fmt::format("{} not installed (apt-get install {})", b_.program, b_.program);
    auto a = spec().probe(tmp_->path());
    EXPECT_FALSE(a.available);
    EXPECT_EQ(a.reason, want);
    try {
      open();
      ADD_FAILURE() << "create() must refuse a missing program";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported);
      EXPECT_EQ(std::string(e.what()), want);
    }
  }
}

TEST_P(FuseDaemons, DaemonThatCannotStartIsReported) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  std::string dir = mount_dir("merged");
  // A program that exits at once: its status is in the error, nothing stays mounted.
  ScopedEnv env(b_.env.c_str(), "/bin/false");
  try {
    mount_all(mounts, dir);
    ADD_FAILURE() << "a daemon that exits must fail the mount";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exited with status 1"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(mounts_under(dir).empty());
}

TEST_P(FuseDaemons, MountsInsideAContainerAndLeavesNothingBehind) {
  auto sn = open();
  base(*sn, 10);
  auto mounts = sn->prepare("c", "base");
  SandboxOptions o;
  o.mounts = mounts;
  o.rootfs = mount_dir("rootfs");
  o.timeout = 60s;
  // Reads a lower file, writes a new one, makes a directory, deletes a lower file: the daemons
  // resolve their layers by path while they serve (fuse-overlayfs sets a new directory's ACL
  // by absolute path), which breaks if pivot_root re-roots the daemon onto its own mount.
  SandboxResult r = run_in_sandbox(o, [] {
    std::string lower = read_file("/small");
    write_file_atomic("/out", "written in the container\n", 0644, false);
    make_dirs("/newdir/sub");
    if (symlink("out", "/link") != 0) fail_sys("symlink");
    if (unlink("/dir/old") != 0) fail_sys("unlink /dir/old");
    return nlohmann::json{{"lower", lower}, {"out", read_file("/link")}, {"gone", access("/dir/old", F_OK) != 0}};
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result["lower"], "lower\n");
  EXPECT_EQ(r.result["out"], "written in the container\n");
  EXPECT_EQ(r.result["gone"], true);
  EXPECT_TRUE(mounts_under(tmp_->path()).empty()) << "the container's mount stayed";
  EXPECT_TRUE(daemons().empty()) << "the container's daemon outlived it";
  std::string upper = upper_of(mounts);
  EXPECT_EQ(read_file(path_join(upper, "out")), "written in the container\n");
  struct stat st {};
  EXPECT_EQ(::stat(path_join(upper, "newdir/sub").c_str(), &st), 0);
}

TEST_P(FuseDaemons, RelativePathsMount) {
  // The CLI's default work dir is relative; the daemon runs elsewhere and must still find it.
  char old[4096];
  ASSERT_NE(getcwd(old, sizeof old), nullptr);
  ASSERT_EQ(chdir(tmp_->path().c_str()), 0);
  auto a = spec().probe("./work");
  ASSERT_EQ(chdir(old), 0);
  EXPECT_TRUE(a.available) << a.reason;
}

std::string backend_name(const ::testing::TestParamInfo<FuseBackend>& info) {
  std::string n = info.param.name;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Backends, FuseDaemons, ::testing::ValuesIn(fuse_backends()), backend_name);

}  // namespace
}  // namespace cowbench::test
