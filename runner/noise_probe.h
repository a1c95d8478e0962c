// The host's own noise floor: fixed amounts of work that never touch storage, timed around
// every measured container, so that a report can tell the variation a backend shows from the
// variation the machine shows. Two probes: in-memory hashing (the CPU) and a loop of cheap
// system calls on a memfd (the kernel's entry, metadata and page-cache paths, which on a
// shared VM slow down far more than plain arithmetic when the host is busy).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fd.h"

namespace cowbench {

class NoiseProbe {
 public:
  // Sizes each probe to about `target_ms` of work on this machine.
  explicit NoiseProbe(int target_ms = 5);
  // Runs both probes and keeps their times.
  void sample();
  // Keeps this CPU busy for `ms`: after a settle (sync, waiting for writeback) a virtual CPU has
  // idled, and its first milliseconds back run measurably slower (host scheduling, idle states).
  static void spin(int ms);
  // host.noise_floor of results.json: each probe, its samples, median and coefficient of variation.
  nlohmann::json summary() const;

 private:
  // Hashes the buffer `passes` times; returns how long that took, in ns.
  int64_t time_passes(int passes) const;
  // `rounds` of fchmod + fstat + a 64-byte pwrite on the memfd; ns.
  int64_t time_syscalls(int rounds) const;

  std::string buffer_;
  int passes_ = 1;
  Fd memfd_;
  int rounds_ = 1;
  std::vector<int64_t> cpu_ns_, kernel_ns_;
};

// The host's variation on its own (for `cowbench doctor`): both probes, `samples` times,
// `gap_ms` apart; NoiseProbe::summary() of that plus a line of advice.
nlohmann::json measure_host_noise(int samples = 40, int gap_ms = 50);

}  // namespace cowbench
