// The ground truth of file copy-ups read off hand-made upper and lower directories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "runner/ground_truth.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/scratch_fs.h"
#include "tests/test_util.h"

namespace cowbench {
namespace {

using test::root_skip_reason;
using test::scratch_root;

void put(const std::string& dir, const std::string& name, const std::string& data, const char* origin) {
  std::string p = path_join(dir, name);
  write_file_atomic(p, data, 0644, false);
  if (origin) {
    ASSERT_EQ(::setxattr(p.c_str(), origin, "o", 1, 0), 0) << p << ": " << origin;
  }
}

// Origins count, and so does a file at a lower path without one (a copy-up the kernel's overlay
// recorded no origin for, or a replacement: the known overcount); a new file does not.
TEST(GroundTruth, OriginsAndLowerPathsDecideWhatWasCopiedUp) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;  // trusted.* xattrs need root
  TempDir tmp(scratch_root(), "truth");
  std::string upper = path_join(tmp.path(), "upper"), low = path_join(tmp.path(), "lower");
  make_dirs(path_join(upper, "etc"));
  make_dirs(path_join(low, "etc"));
  for (const char* f : {"etc/copied", "etc/replaced", "etc/fuse", "etc/h1"}) put(low, f, "lower", nullptr);
  ASSERT_EQ(::link(path_join(low, "etc/h1").c_str(), path_join(low, "etc/h2").c_str()), 0);
  LowerFiles lower{{"/etc/copied", 100}, {"/etc/replaced", 200}, {"/etc/fuse", 300}, {"/etc/h1", 500}, {"/etc/h2", 500}};
  put(upper, "etc/copied", "grown data", "trusted.overlay.origin");         // copy-up, kernel overlay
  put(upper, "etc/replaced", "a new file renamed here", nullptr);           // rename over a lower file
  put(upper, "etc/fuse", "x", "user.fuseoverlayfs.origin");                 // copy-up by fuse-overlayfs
  put(upper, "etc/moved-away", "twelve bytes", "trusted.overlay.origin");   // copied up, then renamed
  put(upper, "etc/h1", "hard link copied up", nullptr);                     // index=off: no origin
  put(upper, "etc/new", "no origin, no lower path", nullptr);               // created
  CopyupTruth t = file_copyups(upper, lower, {low});
  EXPECT_EQ(t.files, 5);
  // The lower sizes where the path is still there; the upper size of the renamed one.
  EXPECT_EQ(t.bytes, 100 + 200 + 300 + 12 + 500);
  EXPECT_EQ(file_copyups(upper, lower).files, 5);
}

// FICLONE of `from` into a new file `to`.
void clone_file(const std::string& from, const std::string& to) {
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  Fd out(open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!in || !out || ioctl(out.get(), FICLONE, in.get()) != 0) fail_sys("clone {} to {}", from, to);
}

// Kinds on a file system that clones: an upper file sharing extents with its own lower file is
// cloned; one sharing extents with another file only, or none, is data copied; one marked
// trusted.overlay.metacopy is metadata only.
TEST(GroundTruth, KindsByFiemapAgainstTheLowerFile) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  TempDir tmp(scratch_root(), "truth-kinds");
  snap::ScratchFsOptions o;
  o.cache = false;
  o.trial = snap::reflink_trial;
  std::unique_ptr<snap::ScratchFs> fs;
  try {
    fs = std::make_unique<snap::ScratchFs>(path_join(tmp.path(), "root"), o);
  } catch (const Error& e) {
    if (e.code() == Errc::kUnsupported) GTEST_SKIP() << "no file system that clones: " << e.what();
    throw;
  }
  std::string upper = path_join(fs->path(), "upper"), low = path_join(fs->path(), "lower");
  make_dirs(upper);
  make_dirs(low);
  std::string block(64 * 1024, 'l');
  for (const char* f : {"cloned", "copied", "meta", "other", "elsewhere"}) put(low, f, block, nullptr);
  clone_file(path_join(low, "cloned"), path_join(upper, "cloned"));
  put(upper, "copied", block, "trusted.overlay.origin");
  clone_file(path_join(low, "elsewhere"), path_join(upper, "other"));  // shared, but not with its own lower file
  put(upper, "meta", "", "trusted.overlay.metacopy");
  sync();
  LowerFiles lower{{"/cloned", 65536}, {"/copied", 65536}, {"/meta", 65536}, {"/other", 65536}, {"/elsewhere", 65536}};
  CopyupTruth t = file_copyups(upper, lower, {low});
  EXPECT_EQ(t.files, 4);
  EXPECT_EQ(t.metadata_only, 1);
  EXPECT_EQ(t.cloned, 1);
  EXPECT_EQ(t.cloned_bytes, 65536);
  CopyupKinds k = kinds_of(t);
  EXPECT_EQ(k.data.events, 2);
  EXPECT_EQ(k.data.bytes, 2 * 65536);
  EXPECT_EQ(k.cloned.events, 1);
  EXPECT_EQ(k.metadata.events, 1);
  EXPECT_EQ(k.metadata.bytes, 0);
  fs->close();
}

}  // namespace
}  // namespace cowbench
