// Load from outside the container during a measured run (see host_load.h).
#include "runner/host_load.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "common/clock.h"

namespace cowbench {
namespace {

std::optional<CpuTicks> read_proc_stat() {
  std::ifstream in("/proc/stat");
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return parse_proc_stat(text.str());
}

int64_t own_cpu_ns() {
  struct timespec ts {};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t tick_ns() {
  long hz = sysconf(_SC_CLK_TCK);
  return 1'000'000'000 / (hz > 0 ? hz : 100);
}

}  // namespace

std::optional<CpuTicks> parse_proc_stat(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  std::optional<CpuTicks> out;
  int cpus = 0;
  while (std::getline(in, line)) {
    if (line.rfind("cpu ", 0) == 0) {
      // user nice system idle iowait irq softirq steal [guest guest_nice]
      std::istringstream f(line.substr(4));
      int64_t v[8] = {};
      for (auto& x : v)
        if (!(f >> x) || x < 0) return std::nullopt;
      out = CpuTicks{v[0] + v[1] + v[2] + v[5] + v[6], v[3] + v[4], v[7], 0};
    } else if (line.rfind("cpu", 0) == 0 && line.size() > 3 && line[3] >= '0' && line[3] <= '9') {
      ++cpus;
    }
  }
  if (out) out->cpus = cpus;
  return out;
}

rep::HostLoad host_load_between(const CpuTicks& before, const CpuTicks& after, int64_t window_ns,
                                int64_t container_cpu_ns, int64_t own_cpu_ns, int64_t tick_ns) {
  rep::HostLoad h;
  h.window_ns = std::max<int64_t>(0, window_ns);
  h.cpus = std::max(before.cpus, after.cpus);
  h.steal_ns = std::max<int64_t>(0, after.steal - before.steal) * tick_ns;
  int64_t host_busy = std::max<int64_t>(0, after.busy - before.busy) * tick_ns;
  h.outside_busy_ns = std::max<int64_t>(0, host_busy - std::max<int64_t>(0, container_cpu_ns) - std::max<int64_t>(0, own_cpu_ns));
  h.resolution_ns = (h.cpus + 1) * tick_ns;
  h.busy = rep::busy_host(h);
  return h;
}

void HostLoadWindow::start() {
  before_ = read_proc_stat();
  own0_ = own_cpu_ns();
  t0_ = monotonic_ns();
}

void HostLoadWindow::end() {
  if (!before_ || after_) return;
  t1_ = monotonic_ns();
  own1_ = own_cpu_ns();
  after_ = read_proc_stat();
}

std::optional<rep::HostLoad> HostLoadWindow::figures(int64_t container_cpu_ns) const {
  if (!before_ || !after_ || container_cpu_ns < 0) return std::nullopt;
  return host_load_between(*before_, *after_, t1_ - t0_, container_cpu_ns, own1_ - own0_, tick_ns());
}

}  // namespace cowbench
