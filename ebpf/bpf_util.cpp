// The libbpf helpers shared by the tracer and the probes (see bpf_util.h).
#include "ebpf/bpf_util.h"

#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <utility>

#include "common/log.h"
#include "ebpf/kernel_fs.h"

namespace cowbench::ebpf {
namespace {

// Where captured messages go; guarded because libbpf may print from any thread.
std::mutex g_sink_mutex;
std::string* g_sink = nullptr;

int quiet_print(libbpf_print_level, const char*, va_list) { return 0; }

// A message longer than this keeps its head and its tail: a failed load's verifier log can be
// megabytes, and the verifier says why it refused a program at the end.
constexpr size_t kMessageHead = 2048, kMessageTail = 8192;

int capture_print(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list again;
  va_copy(again, args);
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, format, args);
  std::string line;
  if (n > 0 && static_cast<size_t>(n) < sizeof buf) {
    line.assign(buf, static_cast<size_t>(n));
  } else if (n > 0) {
    line.resize(static_cast<size_t>(n) + 1);
    vsnprintf(line.data(), line.size(), format, again);
    line.resize(static_cast<size_t>(n));
    if (line.size() > kMessageHead + kMessageTail)
      line.replace(kMessageHead, line.size() - kMessageHead - kMessageTail, "\n...\n");
  }
  va_end(again);
  if (line.empty()) return 0;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  {
    std::lock_guard<std::mutex> lock(g_sink_mutex);
    if (g_sink) *g_sink += line + "\n";
  }
  log::debug("libbpf: {}", line);
  return 0;
}

bool has_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

}  // namespace

LibbpfLog::LibbpfLog() {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  previous_sink_ = g_sink;
  previous_print_ = libbpf_set_print(quiet_print);
}

LibbpfLog::LibbpfLog(std::string* sink) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  previous_sink_ = std::exchange(g_sink, sink);
  previous_print_ = libbpf_set_print(capture_print);
}

LibbpfLog::~LibbpfLog() {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = previous_sink_;
  libbpf_set_print(previous_print_);
}

std::string tail_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

LoadFailure load_failure(const std::string& libbpf_log) {
  LoadFailure f;
  // "prog 'NAME': failed to load: -13" (libbpf 0.8 to 1.x); the last one is the program that
  // stopped the object's load.
  const std::string marker = "': failed to load";
  if (size_t end = libbpf_log.rfind(marker); end != std::string::npos) {
    size_t begin = libbpf_log.rfind("prog '", end);
    if (begin != std::string::npos) f.program = libbpf_log.substr(begin + 6, end - begin - 6);
  }
  // The verifier's log of that program: its last line that is not a statistic.
  size_t log_end = libbpf_log.rfind("-- END PROG LOAD LOG --");
  size_t log_begin = log_end == std::string::npos ? std::string::npos : libbpf_log.rfind("-- BEGIN PROG LOAD LOG --", log_end);
  if (log_begin == std::string::npos) return f;
  std::istringstream in(libbpf_log.substr(log_begin, log_end - log_begin));
  std::string line;
  std::getline(in, line);  // the BEGIN line
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    static constexpr const char* kStatistics[] = {"processed ", "verification time", "stack depth", "..."};
    bool statistic = std::any_of(std::begin(kStatistics), std::end(kStatistics),
                                 [&](const char* s) { return line.rfind(s, 0) == 0; });
    if (!statistic) f.reason = line;
  }
  return f;
}

std::string errno_name(int err) {
  if (err == kEnotsupp) return "ENOTSUPP";
  const char* n = strerrorname_np(err);
  return n ? n : fmt::format("errno {}", err);
}

std::string errno_text(int err) {
  return fmt::format("{}: {}", errno_name(err), err == kEnotsupp ? "operation not supported" : std::strerror(err));
}

std::string eperm_cause(const std::string& what) {
  Lockdown l = read_lockdown();
  if (!l.mode.empty() && l.mode != "none") return fmt::format("kernel lockdown={} refuses {} (EPERM)", l.mode, what);
  std::string lockdown = l.mode.empty() ? "lockdown unknown: " + l.how : "lockdown=none";
  return fmt::format("the kernel refuses {} (EPERM; {}): a capability or an LSM policy (SELinux, AppArmor, BPF LSM)?",
                     what, lockdown);
}

std::optional<std::string> privilege_problem() {
  if (geteuid() != 0) return fmt::format("needs root (running as uid {})", geteuid());
  // Root without the capabilities (a container, capsh --drop) is refused by the kernel too.
  if (!has_cap(CAP_SYS_ADMIN) && !(has_cap(CAP_BPF) && has_cap(CAP_PERFMON)))
    return std::string("needs root with CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); they are not in the effective set");
  return std::nullopt;
}

void for_each_key_bytes(int map_fd, size_t key_size, const std::function<void(const void* key)>& fn) {
  std::vector<unsigned char> key(key_size), next(key_size);
  // The first call (no previous key) returns the first key; each next call the one after.
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, next.data()) == 0) {
    key.swap(next);
    previous = key.data();
    fn(key.data());
  }
}

void clear_map(int map_fd, size_t key_size) {
  // The keys first, then the deletes: asking for the first key after each delete rescans the
  // hash table from its first bucket every time (quadratic: 0.8 s for 9,000 inherited files).
  // Entries the BPF side adds meanwhile are taken by the next pass.
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<unsigned char> keys;
    for_each_key_bytes(map_fd, key_size, [&](const void* k) {
      const auto* b = static_cast<const unsigned char*>(k);
      keys.insert(keys.end(), b, b + key_size);
    });
    auto count = static_cast<uint32_t>(keys.size() / key_size);
    if (count == 0) return;
    uint32_t deleted = count;
    if (bpf_map_delete_batch(map_fd, keys.data(), &deleted, nullptr) != 0) {
      // No batch operations (kernels before 5.6, some map types): one by one.
      deleted = 0;
      for (uint32_t i = 0; i < count; ++i) deleted += bpf_map_delete_elem(map_fd, keys.data() + i * key_size) == 0;
    }
    if (deleted == 0) return;  // the kernel will not delete them
  }
}

std::vector<uint64_t> percpu_sums(int map_fd, uint32_t entries) {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> sums(entries, 0), values(static_cast<size_t>(std::max(ncpu, 1)));
  for (uint32_t k = 0; k < entries; ++k) {
    if (bpf_map_lookup_elem(map_fd, &k, values.data()) != 0) continue;
    for (uint64_t v : values) sums[k] += v;
  }
  return sums;
}

void zero_percpu(int map_fd, uint32_t entries) {
  std::vector<uint64_t> zero(static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1)), 0);
  for (uint32_t k = 0; k < entries; ++k) bpf_map_update_elem(map_fd, &k, zero.data(), BPF_ANY);
}

}  // namespace cowbench::ebpf
