// Test helpers for the FUSE daemon backends (see fuse_daemons.h).
#include "tests/fuse_daemons.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "common/error.h"
#include "common/fuse_mount.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

// readlink(2) as a string; "" on error.
std::string link_of(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

std::string slurp(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

std::vector<pid_t> daemons_under(const std::string& dir, const std::string& comm) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::string base = "/proc/" + std::string(e->d_name);
    if (!slurp(base + "/comm").starts_with(comm)) continue;
    bool serves = link_of(base + "/cwd").starts_with(dir) || link_of(base + "/root").starts_with(dir);
    if (DIR* fds = opendir((base + "/fd").c_str())) {
      while (dirent* f = readdir(fds)) serves = serves || link_of(base + "/fd/" + f->d_name).starts_with(dir);
      closedir(fds);
    }
    if (serves) out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::string upper_of(const std::vector<Mount>& mounts) {
  for (const auto& m : mounts)
    for (const auto& o : m.options)
      if (o.starts_with("upperdir=")) return o.substr(9);
  return "";
}

const std::vector<FuseBackend>& fuse_backends() {
  static const std::vector<FuseBackend> all{
      {"fuse-overlayfs", "fuse-overlayfs", kFuseOverlayfsEnv, kFuseOverlayfsType, "fuse-overlayfs"},
      // Its comm is "unionfs" or "unionfs-fuse", by the name it was run as.
      {"unionfs-fuse", "unionfs", kUnionfsFuseEnv, kUnionfsFuseType, "unionfs-fuse"},
  };
  return all;
}

const FuseBackend& fuse_backend(const std::string& name) {
  for (const auto& b : fuse_backends())
    if (b.name == name) return b;
  fail(Errc::kInvalidInput, "no FUSE daemon backend '{}'", name);
}

void FuseDaemonFixture::SetUp() {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  tmp_ = std::make_unique<TempDir>(scratch_root(), b_.name);
  auto a = spec().probe(tmp_->path());
  if (!a.available) GTEST_SKIP() << b_.name << " unavailable: " << a.reason;
}

void FuseDaemonFixture::TearDown() {
  if (!tmp_) return;
  auto left = mounts_under(tmp_->path());
  EXPECT_TRUE(left.empty()) << "left mounted: " << left.front();
  for (const auto& m : left) unmount(m);
  EXPECT_TRUE(daemons().empty()) << "a " << b_.program << " daemon outlived its mount";
}

std::unique_ptr<snap::Snapshotter> FuseDaemonFixture::open(const snap::BackendOptions& o) {
  return spec().create(path_join(tmp_->path(), "root" + std::to_string(++roots_)), o);
}

void FuseDaemonFixture::base(snap::Snapshotter& sn, size_t size) {
  with_mounted(sn.prepare("b", ""), tmp_->path(),
               apply_all({create_file("big", std::string(size, 'L')), create_file("small", "lower\n"),
                          create_dir("dir"), create_file("dir/old", "old")}));
  sn.commit("base", "b");
}

std::string FuseDaemonFixture::mount_dir(const std::string& name) {
  std::string d = path_join(tmp_->path(), name);
  make_dirs(d);
  return d;
}

}  // namespace cowbench::test
