// The ground truth of file copy-ups read off a hand-made upper directory: origin xattrs decide.
#include <gtest/gtest.h>
#include <sys/xattr.h>

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

// A file copied up carries its origin; a file made new and renamed over a lower path does not.
TEST(GroundTruth, FilesAtALowerPathCountOnlyWithTheirOrigin) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;  // trusted.* xattrs need root
  TempDir upper(scratch_root(), "truth");
  make_dirs(path_join(upper.path(), "etc"));
  LowerFiles lower{{"/etc/copied", 100}, {"/etc/replaced", 200}, {"/etc/fuse", 300}};
  put(upper.path(), "etc/copied", "grown data", "trusted.overlay.origin");        // copy-up on the kernel overlay
  put(upper.path(), "etc/replaced", "a new file renamed here", nullptr);         // rename over a lower file
  put(upper.path(), "etc/fuse", "x", "user.fuseoverlayfs.origin");               // copy-up by fuse-overlayfs
  put(upper.path(), "etc/moved-away", "twelve bytes", "trusted.overlay.origin"); // copied up, then renamed
  put(upper.path(), "etc/new", "no origin, no lower path", nullptr);             // created
  CopyupTruth t = file_copyups(upper.path(), lower);
  EXPECT_EQ(t.files, 3);
  // The lower sizes where the path is still there; the upper size of the renamed one.
  EXPECT_EQ(t.bytes, 100 + 300 + 12);
  EXPECT_EQ(t.metadata_only, 0);
}

}  // namespace
}  // namespace cowbench
