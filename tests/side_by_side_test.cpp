// side_by_side: every job once, never more at a time than asked, failures after all ran.
#include "common/side_by_side.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cowbench {
namespace {

// Jobs that sleep a little so that the threads overlap; counts how many ran at once.
struct Overlap {
  std::atomic<int> now{0}, most{0};
  void job() {
    int n = ++now;
    for (int m = most.load(); n > m && !most.compare_exchange_weak(m, n);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --now;
  }
};

TEST(SideBySide, RunsEveryJobOnceAndAtMostWidthAtATime) {
  for (unsigned width : {1u, 2u, 4u}) {
    std::vector<std::atomic<int>> runs(20);
    Overlap o;
    side_by_side(runs.size(), width, [&](size_t i) {
      ++runs[i];
      o.job();
    });
    for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].load(), 1) << "job " << i << ", width " << width;
    EXPECT_LE(o.most.load(), static_cast<int>(width)) << "width " << width;
    EXPECT_GE(o.most.load(), 1);
  }
}

TEST(SideBySide, NoJobsReturnsAtOnce) {
  bool called = false;
  side_by_side(0, 4, [&](size_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(SideBySide, TheLowestFailingJobIsRethrownAfterEveryJobRan) {
  std::atomic<int> ran{0};
  try {
    side_by_side(10, 3, [&](size_t i) {
      ++ran;
      if (i == 7 || i == 4) throw std::runtime_error("job " + std::to_string(i));
    });
    ADD_FAILURE() << "a failing job must fail the call";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "job 4");
  }
  EXPECT_EQ(ran.load(), 10) << "the other jobs still run";
}

}  // namespace
}  // namespace cowbench
