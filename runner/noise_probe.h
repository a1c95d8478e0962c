// The host's own noise floor: a fixed amount of in-memory work, timed before every measured
// container, so that a report can tell the variation a backend shows from the variation the
// machine shows on work that never touches storage.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cowbench {

class NoiseProbe {
 public:
  // Sizes the probe to about `target_ms` of work on this machine.
  explicit NoiseProbe(int target_ms = 10);
  // Runs the probe once and keeps its time.
  void sample();
  // Keeps this CPU busy for `ms`: after a settle (sync, waiting for writeback) a virtual CPU has
  // idled, and its first milliseconds back run measurably slower (host scheduling, idle states).
  static void spin(int ms);
  // host.noise_floor of results.json: the probe, its samples, median and coefficient of variation.
  nlohmann::json summary() const;

 private:
  // Hashes the buffer `passes` times; returns how long that took, in ns.
  int64_t time_passes(int passes) const;

  std::string buffer_;
  int passes_ = 1;
  std::vector<int64_t> samples_ns_;
};

}  // namespace cowbench
