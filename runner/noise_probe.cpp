// The noise-floor probes (see noise_probe.h).
#include "runner/noise_probe.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/sha256.h"
#include "reports/results.h"

namespace cowbench {
namespace {

constexpr size_t kBufferBytes = 256 << 10;  // fits in L2: the probe measures the CPU, not memory

// How many units of `timed` make about target_ms, from the fastest of a few single units (so
// that a hiccup does not shrink the probe).
int calibrate(int target_ms, int unit, const std::function<int64_t(int)>& timed) {
  int64_t best = timed(unit);
  for (int i = 0; i < 4; ++i) best = std::min(best, timed(unit));
  int64_t n = target_ms * 1'000'000LL * unit / std::max<int64_t>(best, 1);
  return static_cast<int>(std::clamp<int64_t>(n, 1, 10'000'000));
}

nlohmann::json describe(const std::string& probe, const std::vector<int64_t>& samples) {
  rep::Spread s = rep::spread(samples);
  return {{"probe", probe},
          {"samples", samples.size()},
          {"median_ns", rep::median_of(samples)},
          {"cv", s.cv < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.cv)}};
}

}  // namespace

NoiseProbe::NoiseProbe(int target_ms) : buffer_(kBufferBytes, '\0'), memfd_(memfd_create("cowbench-probe", MFD_CLOEXEC)) {
  if (!memfd_) fail_sys("memfd_create for the noise probe");
  for (size_t i = 0; i < buffer_.size(); ++i) buffer_[i] = static_cast<char>(i * 131 + (i >> 7));
  passes_ = calibrate(target_ms, 1, [this](int n) { return time_passes(n); });
  rounds_ = calibrate(target_ms, 100, [this](int n) { return time_syscalls(n); });
}

int64_t NoiseProbe::time_passes(int passes) const {
  int64_t t = monotonic_ns();
  Sha256 d;
  for (int i = 0; i < passes; ++i) d.update(buffer_);
  (void)d.hex();
  return monotonic_ns() - t;
}

int64_t NoiseProbe::time_syscalls(int rounds) const {
  char record[64] = {};
  struct stat st {};
  int64_t t = monotonic_ns();
  for (int i = 0; i < rounds; ++i) {
    (void)fchmod(memfd_.get(), (i & 1) ? 0600 : 0640);
    (void)fstat(memfd_.get(), &st);
    (void)pwrite(memfd_.get(), record, sizeof record, (i & 63) * static_cast<off_t>(sizeof record));
  }
  return monotonic_ns() - t;
}

void NoiseProbe::spin(int ms) {
  int64_t until = monotonic_ns() + ms * 1'000'000LL;
  volatile uint64_t x = 0;
  while (monotonic_ns() < until) x = x + 1;
}

void NoiseProbe::sample() {
  cpu_ns_.push_back(time_passes(passes_));
  kernel_ns_.push_back(time_syscalls(rounds_));
}

nlohmann::json NoiseProbe::summary() const {
  nlohmann::json j = describe(
      fmt::format("SHA-256 of {} KiB in memory, {} times, before each measured container", kBufferBytes >> 10, passes_),
      cpu_ns_);
  j["kernel"] = describe(fmt::format("{} rounds of fchmod + fstat + a 64-byte pwrite on a memfd, before each measured "
                                     "container",
                                     rounds_),
                         kernel_ns_);
  return j;
}

nlohmann::json measure_host_noise(int samples, int gap_ms) {
  NoiseProbe probe;
  for (int i = 0; i < samples; ++i) {
    usleep(static_cast<useconds_t>(gap_ms) * 1000);
    NoiseProbe::spin(5);
    probe.sample();
  }
  nlohmann::json j = probe.summary();
  double worst = std::max(j.value("cv", 0.0), j["kernel"].value("cv", 0.0));
  j["advice"] = worst <= 0.03
                    ? std::string("steady: run-to-run variation of a few percent is reachable here")
                    : fmt::format("this host's own speed varies by up to {:.1f} % between moments: expect wall-time "
                                  "variation of that order between repeats; use more repeats (--repeat) and compare "
                                  "medians (cowbench compare)",
                                  worst * 100);
  return j;
}

}  // namespace cowbench
