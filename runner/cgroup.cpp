// Per-container cgroups (see cgroup.h).
#include "runner/cgroup.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "snapshotters/snapshot_keys.h"

namespace cowbench {
namespace {

constexpr const char* kParent = "cowbench";

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool has_word(std::string_view list, std::string_view word, char sep) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(sep, start);
    if (list.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start) == word) return true;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return false;
}

// Reads "key value" lines (memory.stat, cpu.stat) and returns the value of `key`, or -1.
int64_t stat_value(const std::string& file, std::string_view key) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return -1;
  }
  std::istringstream in(text);
  std::string k;
  int64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

int64_t number_in(const std::string& file) {
  try {
    return std::stoll(read_file(file));
  } catch (const std::exception&) {
    return -1;
  }
}


// Writes to a cgroup control file in place (cgroup files cannot be replaced by rename).
void write_control(const std::string& file, const std::string& value) {
  FILE* f = fopen(file.c_str(), "we");
  if (!f) fail_sys("open {}", file);
  size_t n = fwrite(value.data(), 1, value.size(), f);
  int err = (n != value.size() || fflush(f) != 0) ? errno : 0;
  fclose(f);
  if (err) fail_errno(err, "write '{}' to {}", value, file);
}

void make_group(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) fail_sys("create cgroup {}", dir);
}

void remove_group(const std::string& dir) {
  using namespace std::chrono_literals;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) fail_sys("remove cgroup {}", dir);
    std::this_thread::sleep_for(10ms);  // the last member may still be exiting
  }
  fail(Errc::kFailure, "remove cgroup {}: processes are still in it", dir);
}

}  // namespace

std::string CgroupLayout::describe() const {
  std::string mem = v2_memory ? "v2" : !v1_memory.empty() ? "v1 " + v1_memory : "none";
  std::string cpu = v2_cpu ? "v2" : !v1_cpuacct.empty() ? "v1 " + v1_cpuacct : "none";
  std::string kind = v2_root.empty() ? "v1" : (v2_memory && v2_cpu) ? "v2" : "hybrid";
  return fmt::format("{}: unified {}, memory {}, cpu {}", kind, v2_root.empty() ? "absent" : v2_root, mem, cpu);
}

CgroupLayout parse_cgroup_layout(std::string_view mountinfo, std::string_view v2_controllers) {
  CgroupLayout l;
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    auto f = split_ws(line);
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 2 >= f.size()) continue;
    const std::string& mp = f[4];
    const std::string& type = f[dash + 1];
    const std::string super = dash + 3 < f.size() ? f[dash + 3] : "";
    if (type == "cgroup2") {
      if (l.v2_root.empty()) l.v2_root = mp;
    } else if (type == "cgroup") {
      if (has_word(super, "memory", ',') && l.v1_memory.empty()) l.v1_memory = mp;
      if (has_word(super, "cpuacct", ',') && l.v1_cpuacct.empty()) l.v1_cpuacct = mp;
    }
  }
  if (!l.v2_root.empty()) {
    l.v2_memory = has_word(v2_controllers, "memory", ' ');
    l.v2_cpu = has_word(v2_controllers, "cpu", ' ');
  }
  if (l.v2_memory) l.v1_memory.clear();
  if (l.v2_cpu) l.v1_cpuacct.clear();
  return l;
}

CgroupLayout detect_cgroup_layout() {
  std::string mi = read_file("/proc/self/mountinfo");
  CgroupLayout l = parse_cgroup_layout(mi, "");
  if (!l.v2_root.empty()) {
    std::string ctl;
    try {
      ctl = read_file(path_join(l.v2_root, "cgroup.controllers"));
    } catch (const Error&) {
    }
    while (!ctl.empty() && ctl.back() == '\n') ctl.pop_back();
    l = parse_cgroup_layout(mi, ctl);
  }
  return l;
}

Cgroup::Cgroup(const CgroupLayout& layout, const std::string& name) {
  try {
    if (!layout.v2_root.empty()) {
      std::string parent = path_join(layout.v2_root, kParent);
      make_group(parent);
      // Controllers must be delegated down the tree before a child can use them.
      std::string want;
      if (layout.v2_memory) want += "+memory ";
      if (layout.v2_cpu) want += "+cpu ";
      if (!want.empty()) {
        write_control(path_join(layout.v2_root, "cgroup.subtree_control"), want);
        write_control(path_join(parent, "cgroup.subtree_control"), want);
      }
      v2_root_ = layout.v2_root;
      v2_ = path_join(parent, name);
      make_group(v2_);
      struct stat st {};
      if (stat(v2_.c_str(), &st) == 0) id_ = st.st_ino;
    }
    if (!layout.v1_memory.empty()) {
      make_group(path_join(layout.v1_memory, kParent));
      mem_ = path_join(layout.v1_memory, fmt::format("{}/{}", kParent, name));
      make_group(mem_);
    }
    if (!layout.v1_cpuacct.empty()) {
      make_group(path_join(layout.v1_cpuacct, kParent));
      cpu_ = path_join(layout.v1_cpuacct, fmt::format("{}/{}", kParent, name));
      make_group(cpu_);
    }
    if (layout.v2_memory) mem_.clear();
  } catch (...) {
    try {
      close();
    } catch (...) {
    }
    throw;
  }
}

Cgroup::~Cgroup() {
  try {
    close();
  } catch (const std::exception& e) {
    log::warn("{}", e.what());
  }
}

void Cgroup::add(pid_t pid) {
  std::string p = std::to_string(pid);
  for (const auto* dir : {&v2_, &mem_, &cpu_})
    if (!dir->empty()) write_control(path_join(*dir, "cgroup.procs"), p);
}

CgroupStats Cgroup::stats() const {
  CgroupStats s;
  if (!mem_.empty()) {
    s.page_cache_bytes = stat_value(path_join(mem_, "memory.stat"), "total_cache");
    s.memory_bytes = number_in(path_join(mem_, "memory.usage_in_bytes"));
  } else if (!v2_.empty()) {
    s.page_cache_bytes = stat_value(path_join(v2_, "memory.stat"), "file");
    s.memory_bytes = number_in(path_join(v2_, "memory.current"));
  }
  if (!cpu_.empty()) {
    s.user_ns = number_in(path_join(cpu_, "cpuacct.usage_user"));
    s.sys_ns = number_in(path_join(cpu_, "cpuacct.usage_sys"));
  } else if (!v2_.empty()) {
    int64_t u = stat_value(path_join(v2_, "cpu.stat"), "user_usec");
    int64_t k = stat_value(path_join(v2_, "cpu.stat"), "system_usec");
    s.user_ns = u < 0 ? -1 : u * 1000;
    s.sys_ns = k < 0 ? -1 : k * 1000;
  }
  return s;
}

void Cgroup::kill_all() noexcept {
  try {
    if (!v2_.empty() && access(path_join(v2_, "cgroup.kill").c_str(), W_OK) == 0) {
      write_control(path_join(v2_, "cgroup.kill"), "1");
      return;
    }
    for (const auto* dir : {&v2_, &mem_, &cpu_}) {
      if (dir->empty()) continue;
      std::istringstream in(read_file(path_join(*dir, "cgroup.procs")));
      pid_t pid;
      while (in >> pid) ::kill(pid, SIGKILL);
    }
  } catch (const std::exception& e) {
    log::warn("kill processes of cgroup {}: {}", v2_, e.what());
  }
}

void Cgroup::enter_self() {
  if (v2_.empty() || !origin_.empty()) return;
  // "0::/path" is this process's place in the unified hierarchy.
  std::string origin;
  std::istringstream in(read_file("/proc/self/cgroup"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("0::")) origin = path_join(v2_root_, line.substr(3));
  if (origin.empty()) fail(Errc::kUnsupported, "cannot find this process's cgroup v2 group in /proc/self/cgroup");
  write_control(path_join(v2_, "cgroup.procs"), std::to_string(getpid()));
  origin_ = origin;
}

void Cgroup::leave_self() noexcept {
  if (origin_.empty()) return;
  try {
    write_control(path_join(origin_, "cgroup.procs"), std::to_string(getpid()));
  } catch (const std::exception& e) {
    log::warn("moving cowbench back to its cgroup {}: {}", origin_, e.what());
  }
  origin_.clear();
}

void Cgroup::close() {
  leave_self();
  for (auto* dir : {&v2_, &mem_, &cpu_}) {
    if (dir->empty()) continue;
    remove_group(*dir);
    dir->clear();
  }
}

std::vector<std::string> remove_stale_cgroups(const CgroupLayout& layout) {
  std::vector<std::string> removed;
  for (const auto& root : {layout.v2_root, layout.v1_memory, layout.v1_cpuacct}) {
    if (root.empty()) continue;
    std::string parent = path_join(root, kParent);
    DIR* d = opendir(parent.c_str());
    if (!d) continue;
    std::vector<std::string> groups;
    while (dirent* e = readdir(d))
      if (e->d_type == DT_DIR && e->d_name[0] != '.') groups.push_back(path_join(parent, e->d_name));
    closedir(d);
    for (const auto& g : groups) {
      // Groups are named after container keys (run-<pid>-<n>): those of a live run are not stale.
      auto owner = snap::key_owner(g.substr(g.rfind('/') + 1));
      if (owner && *owner != getpid() && !process_gone(*owner)) continue;
      try {
        std::istringstream in(read_file(path_join(g, "cgroup.procs")));
        pid_t pid;
        while (in >> pid) ::kill(pid, SIGKILL);
        remove_group(g);
        removed.push_back(g);
      } catch (const Error& e) {
        log::warn("{}", e.what());
      }
    }
  }
  return removed;
}

}  // namespace cowbench
