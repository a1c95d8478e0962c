// Monotonic time for measurements.
#pragma once

#include <time.h>

#include <cstdint>

namespace cowbench {

// CLOCK_MONOTONIC in nanoseconds: for intervals, never for dates.
inline int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace cowbench
