// Host hygiene around measurements: writeback settled, caches dropped, the CPU awake, the host's noise sampled, CPU pinning.
#pragma once

#include <sched.h>

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/noise_probe.h"

namespace cowbench {

namespace snap {
class Snapshotter;
}

// The sum of the /proc/meminfo-style fields `keys` in `text`, in KiB; nullopt when none of
// them is there. Pure.
std::optional<int64_t> parse_meminfo_kb(std::string_view text, std::initializer_list<std::string_view> keys);
// The same from this host's /proc/meminfo (nullopt also when it cannot be read).
std::optional<int64_t> meminfo_kb(std::initializer_list<std::string_view> keys);

// Bytes the page cache grew by between two "Cached" readings in KiB; -1 (not measured) when
// either reading is missing.
int64_t page_cache_growth_bytes(std::optional<int64_t> before_kb, std::optional<int64_t> after_kb);

// Writes back what earlier work left dirty, so that its writeback does not land inside the next
// measurement: sync twice (a loop-backed scratch file system's writeback lands as dirty pages
// of its image file in the host file system, which only the second sync writes), then, when
// `wait`, waits up to 5 s for the kernel's dirty and writeback counters to drain. Returns false
// when they did not (something else on the host keeps writing).
bool settle(bool wait);

// Drops the page cache, dentries and inodes, after writing back what is dirty (dirty pages
// cannot be dropped). Warns once per call when /proc/sys/vm/drop_caches cannot be written, and
// returns whether the caches were dropped.
//
// It also ends the wake of recent deletions on ext4 without a journal: there, a new inode
// skips every free inode deleted in the last 60 s (300 s more while its inode-table block is
// dirty) as long as that block is in the buffer cache, so file creation right after a large
// deletion scans past all of them. Once written back and dropped, those blocks are gone from
// the cache and their inodes are reused (only those the inode-table readahead of a lookup
// brings back are skipped again; measured in docs/results-schema.md, "Start from dropped
// caches").
bool drop_caches();

// The steps before every measurement, in order: quiesce the backends' scratch file systems
// (their logs and metadata written back), settle writeback (waiting for it until it once fails
// to drain, then only syncing), drop the caches (cold runs), wake the CPU, and sample the
// host's noise floor (recorded runs only).
class Hygiene {
 public:
  explicit Hygiene(bool cold) : cold_(cold) {}
  void before_measurement(const std::vector<snap::Snapshotter*>& backends, bool record_noise);
  // host.noise_floor for results.json, or null before two samples.
  nlohmann::json noise_floor() const;

 private:
  bool cold_;
  bool wait_for_writeback_ = true;  // until a settle times out once
  NoiseProbe noise_;
};

// The CPUs this thread may use, ascending.
std::vector<int> allowed_cpus();

// The CPU `want` ("none" | "last" | N) names among those this process may use; -1 for none.
// Throws kInvalidInput for a CPU it may not use or a word it does not know.
int choose_container_cpu(const std::string& want);

// Every thread of this process (the tracer's reader too) off one CPU, and the processes it
// starts with them, until the end of the scope; then back to what they had. cpu < 0: nothing.
class KeepOffCpu {
 public:
  explicit KeepOffCpu(int cpu);
  KeepOffCpu(const KeepOffCpu&) = delete;
  KeepOffCpu& operator=(const KeepOffCpu&) = delete;
  ~KeepOffCpu();

 private:
  cpu_set_t saved_{};
  bool active_ = false;
};

}  // namespace cowbench
