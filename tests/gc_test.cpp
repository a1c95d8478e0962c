// `cowbench gc`: what a killed run leaves (mounts, loop devices, scratch dirs) is cleaned, caches stay.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fmt/format.h>

#include "common/fs.h"
#include "common/loop.h"
#include "common/mount.h"
#include "runner/gc.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

TEST(Gc, CleansWhatAKilledProcessLeft) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir work(scratch_root(), "gc");
  std::string w = work.path();
  make_dirs(path_join(w, "images/layer-1"));
  write_file_atomic(path_join(w, "images/layer-1/keep"), "cached layer");
  make_dirs(path_join(w, "containers/c1/rootfs"));
  make_dirs(path_join(w, ".probe-copy.abc/x"));
  std::string image = path_join(w, "scratch.img");
  {
    int fd = open(image.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 16 << 20), 0);
    close(fd);
  }

  // A child mounts and attaches, then dies by SIGKILL without cleaning up.
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      mount_all({Mount{"bind", path_join(w, "images/layer-1"), {"ro"}}}, path_join(w, "containers/c1/rootfs"));
      // A loop device without autoclear outlives its process, as losetup(8) makes them.
      if (system(("losetup -f " + image).c_str()) != 0) _exit(5);
      mount_all({Mount{"tmpfs", "tmpfs", {"size=1m"}}}, path_join(w, ".probe-copy.abc/x"));
    } catch (...) {
      _exit(3);
    }
    if (write(pipefd[1], "k", 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  close(pipefd[1]);
  char c = 0;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1) << "child failed to set up";
  close(pipefd[0]);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_EQ(mounts_under(w).size(), 2u);
  ASSERT_EQ(loops_backed_under(w).size(), 1u);

  GcReport r = collect_garbage(w, false);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_EQ(r.unmounted.size(), 2u);
  EXPECT_EQ(r.detached.size(), 1u);
  EXPECT_TRUE(mounts_under(w).empty());
  EXPECT_TRUE(loops_backed_under(w).empty());
  EXPECT_NE(access(path_join(w, "containers").c_str(), F_OK), 0) << "container scratch dirs are removed";
  EXPECT_NE(access(path_join(w, ".probe-copy.abc").c_str(), F_OK), 0);
  EXPECT_EQ(read_file(path_join(w, "images/layer-1/keep")), "cached layer") << "caches stay";

  GcReport all = collect_garbage(w, true);
  EXPECT_TRUE(all.errors.empty());
  EXPECT_NE(access(w.c_str(), F_OK), 0) << "--all removes the work directory";
}

// A killed `cowbench run` leaves its containers (kept until the end of the matrix) and listings
// as snapshots in the backends' stores; gc removes those of dead processes only.
TEST(Gc, RemovesSnapshotsOfDeadRunsOnly) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir work(scratch_root(), "gc");
  std::string root = path_join(work.path(), "overlayfs");
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  std::string mine = fmt::format("run-{}-2", getpid());
  {
    auto sn = snap::builtin_registry().get("overlayfs").create(root, {});
    sn->prepare("image-active", "");
    sn->commit("image", "image-active");
    sn->prepare(fmt::format("run-{}-1", dead), "image");
    sn->view(fmt::format("list-{}-7", dead), "image");
    sn->prepare(mine, "image");
  }
  GcReport r = collect_garbage(work.path(), false);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  auto sn = snap::builtin_registry().get("overlayfs").create(root, {});
  std::vector<std::string> left;
  sn->walk([&](const snap::Info& i) { left.push_back(i.name); });
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"image", mine})) << "the image and a live process's container stay";
  EXPECT_EQ(std::count_if(r.removed.begin(), r.removed.end(), [](const std::string& s) { return s.starts_with("overlayfs snapshot "); }), 2);
}

TEST(Gc, MissingWorkdirIsNothingToDo) {
  GcReport r = collect_garbage("/var/tmp/cowbench-test/does-not-exist", false);
  EXPECT_TRUE(r.unmounted.empty() && r.removed.empty() && r.errors.empty());
}

}  // namespace
}  // namespace cowbench::test
