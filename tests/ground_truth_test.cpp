// The ground truth of file copy-ups read off hand-made upper and lower directories.
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "runner/ground_truth.h"
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

}  // namespace
}  // namespace cowbench
