// The keys cowbench mints for its snapshots and the sweeper of dead runs' keys, on a real backend.
#include "snapshotters/snapshot_keys.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <set>

#include "snapshotters/registry.h"
#include "test_util.h"

namespace cowbench::test {
namespace {

// A key of `kind` minted by a child process that has exited since: a dead run's key.
std::string key_of_dead_process(snap::KeyKind kind, const std::string& rest = "") {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    std::string k = snap::mint_key(kind, rest);
    ssize_t n = write(fds[1], k.data(), k.size());
    _exit(n == static_cast<ssize_t>(k.size()) ? 0 : 1);
  }
  close(fds[1]);
  char buf[256];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_GT(n, 0);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

TEST(SnapshotKeys, MintedKeysNameTheirProcessAndAreUnique) {
  std::set<std::string> seen;
  for (snap::KeyKind k : {snap::KeyKind::kContainer, snap::KeyKind::kListing, snap::KeyKind::kImport, snap::KeyKind::kLayer}) {
    for (int i = 0; i < 3; ++i) {
      std::string key = snap::mint_key(k);
      EXPECT_TRUE(key.starts_with(snap::key_prefix(k))) << key;
      EXPECT_EQ(snap::key_owner(key), getpid()) << key;
      EXPECT_FALSE(snap::is_stale_key(key)) << key << ": this process is alive";
      EXPECT_TRUE(seen.insert(key).second) << key << " minted twice";
    }
  }
  EXPECT_EQ(snap::mint_key(snap::KeyKind::kImport, "abc"), fmt::format("cowbench-import-{}-abc", getpid()));
  EXPECT_EQ(snap::key_owner("sha256:0123"), std::nullopt);
  EXPECT_EQ(snap::key_owner("run-x-1"), std::nullopt);
  EXPECT_FALSE(snap::is_stale_key("user-snapshot"));
}

TEST(SnapshotKeys, KeysOfADeadProcessAreStale) {
  std::string dead = key_of_dead_process(snap::KeyKind::kContainer);
  ASSERT_TRUE(dead.starts_with("run-")) << dead;
  EXPECT_NE(snap::key_owner(dead), getpid());
  EXPECT_TRUE(snap::is_stale_key(dead)) << dead;
}

// The sweeper removes the dead run's container, listing and layers — children before parents —
// and leaves this process's keys and keys cowbench did not make.
TEST(SnapshotKeys, SweeperRemovesDeadRunsSnapshotsChildrenFirst) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir dir(scratch_root(), "keys");
  auto sn = snap::builtin_registry().get("overlayfs").create(dir.path(), {});
  std::string layer = key_of_dead_process(snap::KeyKind::kLayer, "9-layer-0");
  std::string layer_active = layer + "-active";
  sn->prepare(layer_active, "");
  sn->commit(layer, layer_active);
  std::string dead_container = key_of_dead_process(snap::KeyKind::kContainer);
  std::string dead_listing = key_of_dead_process(snap::KeyKind::kListing);
  sn->prepare(dead_container, layer);
  sn->view(dead_listing, layer);
  sn->prepare("base-active", "");
  sn->commit("base", "base-active");
  std::string live = snap::mint_key(snap::KeyKind::kContainer);
  sn->prepare(live, "base");
  sn->prepare("someone-elses", "base");

  std::vector<std::string> removed = snap::remove_stale_snapshots(*sn);
  ASSERT_EQ(removed.size(), 3u);
  EXPECT_EQ(removed.back(), layer) << "the parent goes last";
  EXPECT_EQ(std::set<std::string>(removed.begin(), removed.end() - 1), (std::set<std::string>{dead_container, dead_listing}));
  std::set<std::string> left;
  sn->walk([&](const snap::Info& i) { left.insert(i.name); });
  EXPECT_EQ(left, (std::set<std::string>{"base", live, "someone-elses"}));
  EXPECT_TRUE(snap::remove_stale_snapshots(*sn).empty()) << "nothing stale is left";
  sn->remove(live);
  sn->remove("someone-elses");
  sn->remove("base");
}

}  // namespace
}  // namespace cowbench::test
