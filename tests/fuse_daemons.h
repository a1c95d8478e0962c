// Test helpers for the FUSE daemon backends (fuse-overlayfs, unionfs-fuse): their running daemons, a fixture with a committed base, bounded waits.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/mount.h"
#include "snapshotters/registry.h"

namespace cowbench::test {

// The contents of a file; "" when it cannot be read.
std::string slurp(const std::string& path);

// Running processes whose comm starts with `comm` that serve files under `dir`: one of their
// open files, their cwd or their root (a chrooted unionfs-fuse) is below it.
std::vector<pid_t> daemons_under(const std::string& dir, const std::string& comm);

// The upperdir= of a snapshot's mounts.
std::string upper_of(const std::vector<Mount>& mounts);

// Runs fn on a thread of its own and waits at most `limit`: a hang fails the test instead
// of hanging it. Returns fn's result, or nullopt after the limit.
template <typename T>
std::optional<T> bounded(std::chrono::milliseconds limit, std::function<T()> fn) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  std::thread([p, fn = std::move(fn)] { p->set_value(fn()); }).detach();
  if (f.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return f.get();
}

// A FUSE daemon backend, as the shared tests need to know it.
struct FuseBackend {
  std::string name;     // the backend
  std::string comm;     // its daemon's comm, or the start of it
  std::string env;      // the variable that overrides its program
  std::string type;     // its mounts' Mount::type
  std::string program;  // how errors name the daemon
};

// fuse-overlayfs and unionfs-fuse.
const std::vector<FuseBackend>& fuse_backends();
const FuseBackend& fuse_backend(const std::string& name);

// A scratch directory for one FUSE daemon backend (skips without root or when the backend's
// probe fails); at the end nothing may be mounted under it and none of its daemons may run.
class FuseDaemonFixture : public ::testing::Test {
 protected:
  explicit FuseDaemonFixture(FuseBackend backend) : b_(std::move(backend)) {}
  void SetUp() override;
  void TearDown() override;

  const snap::BackendSpec& spec() const { return snap::builtin_registry().get(b_.name); }
  std::unique_ptr<snap::Snapshotter> open(const snap::BackendOptions& o = {});
  // A committed "base": a file of `size` bytes ("big", all 'L'), "small" ("lower\n"), "dir/old".
  void base(snap::Snapshotter& sn, size_t size);
  // A new directory under the scratch directory.
  std::string mount_dir(const std::string& name);
  // The backend's daemons serving something under the scratch directory.
  std::vector<pid_t> daemons() const { return daemons_under(tmp_->path(), b_.comm); }

  FuseBackend b_;
  std::unique_ptr<TempDir> tmp_;
  int roots_ = 0;
};

}  // namespace cowbench::test
