// Host hygiene around measurements (see hygiene.h).
#include "runner/hygiene.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "snapshotters/snapshotter.h"

namespace cowbench {
namespace {

// The CPUs this thread may use, as a set.
cpu_set_t own_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) fail_sys("sched_getaffinity");
  return set;
}

// Sets the affinity of every thread of this process.
void set_all_threads(const cpu_set_t& set) {
  DIR* d = opendir("/proc/self/task");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
    if (tid > 0 && sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH)
      log::warn("cannot set the CPU affinity of thread {}: {}", tid, std::strerror(errno));
  }
  closedir(d);
}

}  // namespace

std::optional<int64_t> parse_meminfo_kb(std::string_view text, std::initializer_list<std::string_view> keys) {
  std::istringstream in{std::string(text)};
  std::string line;
  std::optional<int64_t> sum;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string k;
    int64_t v = 0;
    if (!(fields >> k >> v)) continue;
    if (!k.empty() && k.back() == ':') k.pop_back();
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) sum = sum.value_or(0) + v;
  }
  return sum;
}

std::optional<int64_t> meminfo_kb(std::initializer_list<std::string_view> keys) {
  std::ifstream in("/proc/meminfo");
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return parse_meminfo_kb(text.str(), keys);
}

int64_t page_cache_growth_bytes(std::optional<int64_t> before_kb, std::optional<int64_t> after_kb) {
  if (!before_kb || !after_kb) return -1;
  return (*after_kb - *before_kb) * 1024;
}

bool settle(bool wait) {
  sync();
  sync();
  if (!wait) return true;
  int64_t until = monotonic_ns() + 5'000'000'000;
  // Unreadable counters count as drained: there is nothing to wait for then.
  while (meminfo_kb({"Dirty", "Writeback"}).value_or(0) > 1024) {
    if (monotonic_ns() >= until) return false;
    sync();
    usleep(20'000);
  }
  return true;
}

bool drop_caches() {
  settle(false);
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  if (f.flush()) return true;
  log::warn("cannot drop caches (/proc/sys/vm/drop_caches): cold-cache runs are warm");
  return false;
}

void Hygiene::before_measurement(const std::vector<snap::Snapshotter*>& backends, bool record_noise) {
  // What prepare (and earlier runs) left dirty is written back before the clock starts: the
  // scratch file systems' logs and metadata too (then the loop images' pages, by settle()).
  for (snap::Snapshotter* sn : backends) sn->quiesce();
  if (!settle(wait_for_writeback_)) {
    wait_for_writeback_ = false;
    log::warn("dirty pages did not drain within 5 s (another process keeps writing?): no longer waiting for "
              "writeback before measurements; expect noisier results");
  }
  if (cold_) drop_caches();
  NoiseProbe::spin(20);
  if (record_noise) noise_.sample();
}

nlohmann::json Hygiene::noise_floor() const {
  nlohmann::json n = noise_.summary();
  return n["samples"].get<size_t>() >= 2 ? n : nlohmann::json(nullptr);
}

std::vector<int> allowed_cpus() {
  cpu_set_t set = own_affinity();
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

int choose_container_cpu(const std::string& want) {
  std::vector<int> cpus = allowed_cpus();
  if (want == "none") return -1;
  // One CPU only: pinning would put the containers on the runner's CPU, which is no better.
  if (want == "last") return cpus.size() >= 2 ? cpus.back() : -1;
  int n = -1;
  auto [end, ec] = std::from_chars(want.data(), want.data() + want.size(), n);
  if (ec != std::errc() || end != want.data() + want.size() || n < 0)
    fail(Errc::kInvalidInput, "--cpu takes none, last or a CPU number, not '{}'", want);
  if (std::find(cpus.begin(), cpus.end(), n) == cpus.end())
    fail(Errc::kInvalidInput, "--cpu {}: cowbench may not run on CPU {} here (it may use {})", n, n, fmt::join(cpus, ","));
  return n;
}

KeepOffCpu::KeepOffCpu(int cpu) {
  if (cpu < 0) return;
  saved_ = own_affinity();
  cpu_set_t rest = saved_;
  CPU_CLR(cpu, &rest);
  if (CPU_COUNT(&rest) == 0) return;
  set_all_threads(rest);
  active_ = true;
}

KeepOffCpu::~KeepOffCpu() {
  if (active_) set_all_threads(saved_);
}

}  // namespace cowbench
