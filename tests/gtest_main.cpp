// The main() of every test binary: GoogleTest's, except that a run whose every test skipped exits 77, CTest's skip code.
#include <gtest/gtest.h>

#include <cstdio>

namespace cowbench::test {
namespace {

// The SKIP_RETURN_CODE cowbench_add_test gives every suite (cmake/cowbench_helpers.cmake).
constexpr int kSkipExitCode = 77;

// GoogleTest's status, or kSkipExitCode when at least one test ran, none failed and every
// test that ran skipped (GTEST_SKIP, e.g. a root-only suite run unprivileged). When nothing
// ran (--gtest_list_tests, --help, a filter that matches nothing) GoogleTest's status stands.
int exit_status(int gtest_status) {
  const testing::UnitTest& u = *testing::UnitTest::GetInstance();
  if (gtest_status != 0 || u.Failed()) return gtest_status;
  int skipped = u.skipped_test_count();
  int ran = u.successful_test_count() + u.failed_test_count() + skipped;
  if (ran == 0 || skipped != ran) return gtest_status;
  std::printf("cowbench: %d of %d tests skipped, none passed: exit status %d (CTest reports the suite as skipped)\n",
              skipped, ran, kSkipExitCode);
  std::fflush(stdout);
  return kSkipExitCode;
}

}  // namespace
}  // namespace cowbench::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  return cowbench::test::exit_status(RUN_ALL_TESTS());
}
