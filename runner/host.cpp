// Host facts and host checks (see host.h).
#include "runner/host.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <liburing.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/log.h"
#include "common/mount.h"
#include "ebpf/kernel_fs.h"
#include "runner/cgroup.h"
#ifdef COWBENCH_HAVE_LIBBPF
#include "ebpf/probe.h"
#endif

extern char** environ;

namespace cowbench {
namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(10);

[[maybe_unused]] bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  size_t start = s.find_first_not_of(" \t");
  return start == std::string::npos ? "" : s.substr(start);
}

std::string read_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

// The executable `name` in $PATH, then /sbin and /usr/sbin (often not in a user's PATH).
std::optional<std::string> find_program(const std::string& name) {
  const char* env = getenv("PATH");
  std::string dirs = std::string(env ? env : "/usr/local/bin:/usr/bin:/bin") + ":/sbin:/usr/sbin:/usr/local/sbin";
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::string path = path_join(dir, name);
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0) return path;
  }
  return std::nullopt;
}

struct CommandResult {
  int status = -1;    // exit status, or -1 when it did not exit normally
  std::string out;    // standard output
  std::string error;  // why it could not be run, or was killed
};

// Runs `path args...` with stdin and stderr on /dev/null and captures stdout; kills it after
// kCommandTimeout.
CommandResult run_command(const std::string& path, const std::vector<std::string>& args) {
  CommandResult r;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    r.error = fmt::format("pipe: {}", std::strerror(errno));
    return r;
  }
  Fd read_end(pipefd[0]), write_end(pipefd[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int err = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (err != 0) {
    r.error = fmt::format("cannot run {}: {}", path, std::strerror(err));
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + kCommandTimeout;
  bool timed_out = false;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    r.out.append(buf, static_cast<size_t>(got));
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    r.error = fmt::format("{} did not finish within {} s", path, kCommandTimeout.count());
  else if (WIFEXITED(status))
    r.status = WEXITSTATUS(status);
  else
    r.error = fmt::format("{} was killed by signal {}", path, WTERMSIG(status));
  return r;
}

// The line of `text` that starts with `name` (tools such as fuse-overlayfs print other
// components' versions first), else the first non-empty line.
std::string version_line(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line, first;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    if (line.rfind(name, 0) == 0) return line;
    if (first.empty()) first = line;
  }
  return first;
}

bool has_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

bool is_root() { return geteuid() == 0 && has_cap(CAP_SYS_ADMIN); }

HostCheck check_root() {
  uid_t euid = geteuid();
  bool admin = has_cap(CAP_SYS_ADMIN);
  if (euid == 0 && admin) return {"root", true, "euid 0 with CAP_SYS_ADMIN"};
  if (euid == 0)
    return {"root", false, "euid 0 but CAP_SYS_ADMIN is not in the effective set (a restricted container?)"};
  return {"root", false, fmt::format("euid {}: most backends and all tracing need root", euid)};
}

HostCheck check_kernel() {
  utsname u{};
  if (uname(&u) != 0) return {"kernel", false, fmt::format("uname: {}", std::strerror(errno))};
  return {"kernel", true, fmt::format("{} {} ({})", u.sysname, u.release, u.machine)};
}

HostCheck check_lockdown() {
  ebpf::Lockdown l = ebpf::read_lockdown();
  if (l.mode.empty()) return {"lockdown", false, "unknown: " + l.how};
  if (l.mode == "none") return {"lockdown", true, fmt::format("none ({})", l.how)};
  return {"lockdown", false,
          fmt::format("{}: the kernel refuses kprobes and fentry; copy-ups are traced with tracepoints ({})", l.mode,
                      l.how)};
}

bool overlay_listed() {
  std::istringstream in(read_or_empty("/proc/filesystems"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string a, b;
    fields >> a >> b;
    if (a == "overlay" || b == "overlay") return true;
  }
  return false;
}

HostCheck check_overlay() {
  if (overlay_listed()) return {"overlay", true, "overlay listed in /proc/filesystems"};
  if (!is_root()) return {"overlay", false, "overlay not in /proc/filesystems (root could try `modprobe overlay`)"};
  auto modprobe = find_program("modprobe");
  if (!modprobe) return {"overlay", false, "overlay not in /proc/filesystems and no modprobe to load it"};
  CommandResult r = run_command(*modprobe, {"overlay"});
  if (overlay_listed()) return {"overlay", true, fmt::format("loaded with `{} overlay`", *modprobe)};
  std::string how = r.error.empty() ? fmt::format("exit status {}", r.status) : r.error;
  return {"overlay", false, fmt::format("overlay not in /proc/filesystems and `modprobe overlay` failed ({})", how)};
}

HostCheck check_fuse() {
  Fd fd(open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (fd) return {"fuse", true, "/dev/fuse opens read-write"};
  int err = errno;
  if (err == ENOENT) return {"fuse", false, "no /dev/fuse (fuse module not loaded? `modprobe fuse`)"};
  return {"fuse", false, fmt::format("cannot open /dev/fuse read-write: {}", std::strerror(err))};
}

// A tool found in PATH (or /sbin, /usr/sbin) that runs and prints its version.
HostCheck check_tool(const std::string& name, const std::string& version_flag) {
  auto path = find_program(name);
  if (!path) return {name, false, fmt::format("{} not found in PATH, /sbin or /usr/sbin", name)};
  CommandResult r = run_command(*path, {version_flag});
  if (!r.error.empty()) return {name, false, fmt::format("{}: {}", *path, r.error)};
  std::string version = version_line(r.out, name);
  if (r.status != 0)
    return {name, false,
            fmt::format("{} {} exited with status {}{}", *path, version_flag, r.status,
                        version.empty() ? "" : ": " + version)};
  return {name, true, fmt::format("{}: {}", *path, version.empty() ? "(printed no version)" : version)};
}

// unionfs-fuse: the program the backend would run ($COWBENCH_UNIONFS_FUSE or $PATH) and its version.
HostCheck check_unionfs_fuse() {
  std::string path;
  try {
    path = unionfs_fuse_binary();
  } catch (const Error& e) {
    return {"unionfs-fuse", false, e.what()};
  }
  CommandResult r = run_command(path, {"--version"});
  if (!r.error.empty()) return {"unionfs-fuse", false, fmt::format("{}: {}", path, r.error)};
  std::string version = version_line(r.out, "unionfs-fuse");
  return {"unionfs-fuse", true, fmt::format("{}: {}", path, version.empty() ? "(printed no version)" : version)};
}

// AUFS, Docker's first storage driver (grown out of UnionFS): never merged into mainline
// Linux, so only a kernel patched with it lists "aufs" in /proc/filesystems.
HostCheck check_aufs() {
  std::string text;
  try {
    text = read_file("/proc/filesystems");
  } catch (const Error& e) {
    return {"aufs", false, fmt::format("cannot read /proc/filesystems: {}", e.what())};
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (trim(line.substr(line.find('\t') == std::string::npos ? 0 : line.find('\t') + 1)) == "aufs")
      return {"aufs", true, "this kernel has aufs (/proc/filesystems), a patched one: cowbench has no aufs backend"};
  return {"aufs", false,
          "AUFS (Docker's first storage driver, which grew out of UnionFS) is not in mainline kernels and cannot be "
          "built here (no aufs in /proc/filesystems; no Debian 12 package provides it); unionfs-fuse is its model"};
}

HostCheck check_loop() {
  Fd ctl(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl) {
    int err = errno;
    if (err == ENOENT) return {"loop", false, "no /dev/loop-control (loop module not loaded? `modprobe loop`)"};
    return {"loop", false, fmt::format("cannot open /dev/loop-control: {}", std::strerror(err))};
  }
  int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
  if (n < 0) return {"loop", false, fmt::format("LOOP_CTL_GET_FREE on /dev/loop-control: {}", std::strerror(errno))};
  return {"loop", true, fmt::format("/dev/loop-control works; next free device /dev/loop{}", n)};
}

HostCheck check_io_uring() {
  io_uring ring{};
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    int err = -rc;
    std::string why = std::strerror(err);
    std::string disabled = trim(read_or_empty("/proc/sys/kernel/io_uring_disabled"));
    if (err == ENOSYS) why += " (kernel built without CONFIG_IO_URING)";
    if (err == EPERM && !disabled.empty() && disabled != "0")
      why += fmt::format(" (sysctl kernel.io_uring_disabled={})", disabled);
    return {"io_uring", false, "io_uring_queue_init: " + why};
  }
  std::unique_ptr<io_uring, void (*)(io_uring*)> exit_ring(&ring, io_uring_queue_exit);
  std::unique_ptr<io_uring_probe, void (*)(io_uring_probe*)> probe(io_uring_get_probe_ring(&ring), io_uring_free_probe);
  if (!probe) return {"io_uring", false, "a ring works but io_uring_get_probe_ring failed (kernel older than 5.6?)"};
  struct Op {
    int op;
    const char* name;
  };
  const Op ops[] = {{IORING_OP_OPENAT, "OPENAT"}, {IORING_OP_STATX, "STATX"}, {IORING_OP_READ, "READ"},
                    {IORING_OP_WRITE, "WRITE"},   {IORING_OP_READV, "READV"}, {IORING_OP_WRITEV, "WRITEV"},
                    {IORING_OP_FSYNC, "FSYNC"}};
  std::string supported, missing;
  for (const auto& o : ops) {
    std::string& list = io_uring_opcode_supported(probe.get(), o.op) ? supported : missing;
    list += (list.empty() ? "" : " ") + std::string(o.name);
  }
  if (!missing.empty())
    return {"io_uring", false,
            fmt::format("ring works; unsupported opcodes: {} (supported: {})", missing,
                        supported.empty() ? "none" : supported)};
  return {"io_uring", true, fmt::format("ring works; opcodes supported: {}", supported)};
}

HostCheck check_cgroups() {
  CgroupSummary s = host_cgroups();
  return {"cgroups", s.accounting, s.detail};
}

HostCheck check_tracefs() {
  ebpf::Tracefs t = ebpf::find_tracefs(is_root());
  if (t.path.empty())
    return {"tracefs", false, is_root() ? t.error : t.error + " (root would mount it at /sys/kernel/tracing)"};
  if (t.mounted_now)
    return {"tracefs", true,
            fmt::format("was not mounted: mounted it at {} and left it mounted for the tracers", t.path)};
  return {"tracefs", true, fmt::format("mounted at {}", t.path)};
}

HostCheck check_drop_caches() {
  Fd fd(open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC));
  if (fd)
    return {"drop_caches", true, "/proc/sys/vm/drop_caches opens for writing (not written): cold-cache runs work"};
  return {
      "drop_caches", false,
      fmt::format("cannot open /proc/sys/vm/drop_caches for writing: {}; only warm-cache runs", std::strerror(errno))};
}

// Each check, by name, in the order of host_check_names().
std::vector<std::pair<std::string, std::function<HostCheck()>>> all_checks() {
  std::vector<std::pair<std::string, std::function<HostCheck()>>> c = {
      {"root", check_root},
      {"kernel", check_kernel},
      {"lockdown", check_lockdown},
      {"overlay", check_overlay},
      {"fuse", check_fuse},
      {"fuse-overlayfs", [] { return check_tool("fuse-overlayfs", "--version"); }},
      {"fusermount3", [] { return check_tool("fusermount3", "--version"); }},
      {"unionfs-fuse", check_unionfs_fuse},
      {"aufs", check_aufs},
      {"mkfs.xfs", [] { return check_tool("mkfs.xfs", "-V"); }},
      {"mkfs.btrfs", [] { return check_tool("mkfs.btrfs", "--version"); }},
      {"loop", check_loop},
      {"io_uring", check_io_uring},
      {"cgroups", check_cgroups},
      {"tracefs", check_tracefs},
      {"drop_caches", check_drop_caches},
  };
#ifdef COWBENCH_HAVE_LIBBPF
  auto row = [](std::string name, std::function<ebpf::ProbeResult()> probe) {
    return std::pair<std::string, std::function<HostCheck()>>(name, [name, probe] {
      ebpf::ProbeResult r = probe();
      return HostCheck{name, r.ok, r.detail};
    });
  };
  c.push_back(row("btf", ebpf::probe_btf));
  c.push_back(row("bpf tracepoint", ebpf::probe_tracepoint));
  c.push_back(row("bpf raw_tracepoint", ebpf::probe_raw_tracepoint));
  c.push_back(row("bpf tp_btf", ebpf::probe_tp_btf));
  c.push_back(row("bpf fentry", [] { return ebpf::probe_fentry(); }));
  c.push_back(row("bpf kprobe", [] {
    // Where the tracer would put its kprobe: an overlayfs copy-up function, else a generic one.
    return ebpf::probe_kprobe(ebpf::first_in_kallsyms(ebpf::overlay_copy_up_functions()).value_or("vfs_read"));
  }));
#else
  c.emplace_back("btf", [] {
    if (exists("/sys/kernel/btf/vmlinux")) return HostCheck{"btf", true, "/sys/kernel/btf/vmlinux present"};
    return HostCheck{"btf", false, "no /sys/kernel/btf/vmlinux (kernel built without CONFIG_DEBUG_INFO_BTF)"};
  });
  c.emplace_back("bpf", [] { return HostCheck{"bpf", false, "cowbench was built without libbpf"}; });
#endif
  return c;
}

}  // namespace

std::vector<std::string> host_check_names() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : all_checks()) names.push_back(name);
  return names;
}

std::vector<HostCheck> host_checks() {
  std::vector<HostCheck> out;
  for (const auto& [name, fn] : all_checks()) {
    try {
      HostCheck c = fn();
      c.name = name;
      if (!c.ok && c.detail.empty()) c.detail = "failed without a reason";
      out.push_back(std::move(c));
    } catch (const std::exception& e) {
      out.push_back({name, false, fmt::format("check failed: {}", e.what())});
    }
  }
  return out;
}

CgroupSummary summarize_cgroups(std::string_view mountinfo, std::string_view v2_controllers) {
  // The parser keeps a v1 mount only for a controller v2 does not have.
  CgroupLayout l = parse_cgroup_layout(mountinfo, v2_controllers);
  CgroupSummary s;
  bool memory = l.v2_memory || !l.v1_memory.empty();
  bool cpu = l.v2_cpu || !l.v1_cpuacct.empty();
  s.accounting = memory && cpu;
  bool v1 = !l.v1_memory.empty() || !l.v1_cpuacct.empty();
  auto v1_place = [](const char* name, const std::string& mount) {
    return mount.empty() ? fmt::format("no {} controller", name) : fmt::format("{} at {}", name, mount);
  };
  if (l.v2_root.empty() && !v1) {
    s.kind = "none";
    s.detail = "no cgroup2 mount and no v1 memory or cpuacct hierarchy";
  } else if (l.v2_root.empty()) {
    s.kind = "v1";
    s.detail =
        fmt::format("v1: {}, {}; no cgroup2 mount", v1_place("memory", l.v1_memory), v1_place("cpuacct", l.v1_cpuacct));
  } else if (!v1) {
    s.kind = "v2";
    if (l.v2_memory && l.v2_cpu)
      s.detail = fmt::format("v2 at {} with memory and cpu", l.v2_root);
    else
      s.detail = fmt::format("v2 at {} without the {} controller", l.v2_root,
                             !l.v2_memory && !l.v2_cpu ? "memory and cpu"
                             : !l.v2_memory            ? "memory"
                                                       : "cpu");
  } else {
    s.kind = "hybrid";
    if (!l.v2_memory && !l.v2_cpu)
      s.detail = fmt::format("hybrid: v1 {}, v1 {}, v2 at {} without them", v1_place("memory", l.v1_memory),
                             v1_place("cpuacct", l.v1_cpuacct), l.v2_root);
    else
      s.detail = fmt::format("hybrid: v2 at {} with {}; v1 {}", l.v2_root, l.v2_memory ? "memory" : "cpu",
                             l.v2_memory ? v1_place("cpuacct", l.v1_cpuacct) : v1_place("memory", l.v1_memory));
  }
  if (!s.accounting) s.detail += fmt::format(" (cannot measure per-container {})", !memory ? "memory" : "CPU");
  return s;
}

CgroupSummary host_cgroups() {
  std::string mountinfo = read_or_empty("/proc/self/mountinfo");
  std::string controllers;
  CgroupLayout l = parse_cgroup_layout(mountinfo, "");
  if (!l.v2_root.empty()) controllers = trim(read_or_empty(path_join(l.v2_root, "cgroup.controllers")));
  return summarize_cgroups(mountinfo, controllers);
}

HostFacts host_facts() {
  HostFacts f;
  utsname u{};
  if (uname(&u) == 0) {
    f.kernel = u.release;
    f.arch = u.machine;
    f.hostname = u.nodename;
  }
  f.boot_id = trim(read_or_empty("/proc/sys/kernel/random/boot_id"));
  // x86 says "model name"; arm64 and others say "Model", "Hardware" or "cpu model".
  std::istringstream in(read_or_empty("/proc/cpuinfo"));
  std::string line;
  std::string fallback;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "model name") {
      f.cpu_model = value;
      break;
    }
    if (fallback.empty() && (key == "Model" || key == "Hardware" || key == "cpu model" || key == "cpu"))
      fallback = value;
  }
  if (f.cpu_model.empty()) f.cpu_model = fallback;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  f.cpus = cpus > 0 ? static_cast<unsigned>(cpus) : 0;
  struct sysinfo si {};
  if (sysinfo(&si) == 0) f.memory_bytes = static_cast<uint64_t>(si.totalram) * si.mem_unit;
  ebpf::Lockdown l = ebpf::read_lockdown();
  f.lockdown = l.mode.empty() ? "unknown" : l.mode;
  try {
    f.cgroup_layout = host_cgroups().detail;
  } catch (const std::exception&) {
  }
  return f;
}

std::vector<std::string> workdir_caveats(const std::string& workdir) {
  std::vector<std::string> out;
  MountEntry m;
  try {
    m = mount_of(workdir);
  } catch (const Error&) {
    return out;
  }
  if (m.fs_type != "ext4" || !m.source.starts_with("/dev/")) return out;
  // A journaled ext4 file system has a jbd2 entry named after its device.
  std::string dev = m.source.substr(m.source.rfind('/') + 1);
  if (access(fmt::format("/proc/fs/ext4/{}", dev).c_str(), F_OK) != 0) return out;
  bool journal = false;
  if (DIR* d = opendir("/proc/fs/jbd2")) {
    while (dirent* e = readdir(d))
      if (std::string_view(e->d_name).starts_with(dev + "-")) journal = true;
    closedir(d);
  }
  if (!journal)
    out.push_back(fmt::format("{} is ext4 without a journal: it skips inodes deleted in the last minutes one by one "
                              "when it creates files, so deleting many files slows the file creations that follow "
                              "(cowbench run keeps containers until the end of the matrix for this reason)",
                              m.source));
  return out;
}

nlohmann::json describe_host(const std::string& workdir) {
  HostFacts f = host_facts();
  nlohmann::json h{{"kernel", f.kernel},
                   {"arch", f.arch},
                   {"cpu_model", f.cpu_model},
                   {"cpus", f.cpus},
                   {"memory_bytes", f.memory_bytes},
                   {"lockdown", f.lockdown},
                   {"cgroups", f.cgroup_layout},
                   {"hostname", f.hostname},
                   {"boot_id", f.boot_id},
                   {"filesystems", nlohmann::json::object()},
                   {"mount_options", nlohmann::json::object()}};
  record_filesystem(h, "workdir", workdir);
  return h;
}

void record_filesystem(nlohmann::json& host, const std::string& role, const std::string& path) {
  try {
    MountEntry m = mount_of(path);
    host["filesystems"][role] = m.fs_type;
    host["mount_options"][role] = m.options + (m.super_options.empty() ? "" : "," + m.super_options);
  } catch (const Error& e) {
    log::warn("cannot tell the file system of {}: {}", path, e.what());
  }
}

}  // namespace cowbench
