// The noise-floor probe (see noise_probe.h).
#include "runner/noise_probe.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/sha256.h"
#include "reports/results.h"

namespace cowbench {
namespace {

constexpr size_t kBufferBytes = 256 << 10;  // fits in L2: the probe measures the CPU, not memory

}  // namespace

NoiseProbe::NoiseProbe(int target_ms) : buffer_(kBufferBytes, '\0') {
  for (size_t i = 0; i < buffer_.size(); ++i) buffer_[i] = static_cast<char>(i * 131 + (i >> 7));
  // Calibrate on the fastest of a few single passes, so that a hiccup does not shrink the probe.
  int64_t best = time_passes(1);
  for (int i = 0; i < 4; ++i) best = std::min(best, time_passes(1));
  passes_ = static_cast<int>(std::clamp<int64_t>(target_ms * 1'000'000LL / std::max<int64_t>(best, 1), 1, 100'000));
}

int64_t NoiseProbe::time_passes(int passes) const {
  int64_t t = monotonic_ns();
  Sha256 d;
  for (int i = 0; i < passes; ++i) d.update(buffer_);
  (void)d.hex();
  return monotonic_ns() - t;
}

void NoiseProbe::spin(int ms) {
  int64_t until = monotonic_ns() + ms * 1'000'000LL;
  volatile uint64_t x = 0;
  while (monotonic_ns() < until) x = x + 1;
}

void NoiseProbe::sample() { samples_ns_.push_back(time_passes(passes_)); }

nlohmann::json NoiseProbe::summary() const {
  rep::Spread s = rep::spread(samples_ns_);
  return {{"probe", fmt::format("SHA-256 of {} KiB in memory, {} times, before each measured container", kBufferBytes >> 10, passes_)},
          {"samples", samples_ns_.size()},
          {"median_ns", rep::median_of(samples_ns_)},
          {"cv", s.cv < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.cv)}};
}

}  // namespace cowbench
