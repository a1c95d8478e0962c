// Trial load-and-attach of minimal BPF programs (see probe.h).
#include "ebpf/probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "ebpf/bpf_util.h"
#include "ebpf/kernel_fs.h"

namespace cowbench::ebpf {
namespace {

constexpr const char* kVmlinuxBtf = "/sys/kernel/btf/vmlinux";
constexpr const char* kKprobePmuType = "/sys/bus/event_source/devices/kprobe/type";

// r0 = 0; exit — valid for every program type probed here.
const bpf_insn kReturnZero[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};

// Why `step` (load, attach, perf_event_open...) failed with `err` for `what` ("fentry",
// "kprobes"...), plus the verifier's last line if any.
std::string failure(const std::string& step, const std::string& what, int err, const std::string& verifier = "") {
  std::string cause = fmt::format("{} failed: {}", step, err == EPERM ? eperm_cause(what) : errno_text(err));
  if (!verifier.empty()) cause += "; verifier: " + verifier;
  return cause;
}

struct Program {
  Fd fd;
  std::string error;            // why the load failed
  bool raised_memlock = false;  // it loaded only with RLIMIT_MEMLOCK raised
};

// Loads r0 = 0; exit as `type` with `opts` (attach fields); `what` names it in errors.
Program load_program(const std::string& what, bpf_prog_type type, bpf_prog_load_opts opts) {
  std::string log(64 * 1024, '\0');
  opts.sz = sizeof opts;
  opts.log_buf = log.data();
  opts.log_size = static_cast<__u32>(log.size());
  opts.log_level = 1;
  auto load = [&] {
    log.assign(log.size(), '\0');
    int fd = bpf_prog_load(type, "cowbench_probe", "GPL", kReturnZero, std::size(kReturnZero), &opts);
    return fd < 0 ? -errno : fd;
  };
  Program p;
  int rc = load();
  // Kernels without memcg accounting charge BPF memory to RLIMIT_MEMLOCK: retry once with
  // it raised, then put it back (the loaded program keeps its charge).
  rlimit old{};
  if (rc == -EPERM && getrlimit(RLIMIT_MEMLOCK, &old) == 0 && old.rlim_cur != RLIM_INFINITY) {
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_MEMLOCK, &unlimited) == 0) {
      rc = load();
      p.raised_memlock = rc >= 0;
      setrlimit(RLIMIT_MEMLOCK, &old);
    }
  }
  if (rc >= 0) {
    p.fd = Fd(rc);
    return p;
  }
  p.error = failure("load", what, -rc, tail_lines(log.c_str(), 1));
  return p;
}

std::string memlock_note(const Program& p) {
  return p.raised_memlock ? " (loaded only with RLIMIT_MEMLOCK raised: this kernel charges BPF memory to it)" : "";
}

Fd perf_event_open(uint32_t type, uint64_t config, pid_t pid, int cpu, uint64_t config1 = 0) {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = type;
  a.config = config;
  a.config1 = config1;
  a.sample_period = 1;
  a.wakeup_events = 1;
  return Fd(static_cast<int>(syscall(SYS_perf_event_open, &a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
}

// Attaches the program to a perf event and enables it; returns 0 or an errno.
int attach_to_perf_event(int perf_fd, int prog_fd) {
  if (ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd) != 0) return errno;
  if (ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0) != 0) return errno;
  return 0;
}

// Runs `trigger` with BPF run statistics on; how often the program ran, or -1 when the
// kernel would not count (bpf_enable_stats failed and nothing was counted).
long long run_count(int prog_fd, const std::function<void()>& trigger) {
  Fd stats(bpf_enable_stats(BPF_STATS_RUN_TIME));
  trigger();
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return -1;
  if (!stats && info.run_cnt == 0) return -1;
  return static_cast<long long>(info.run_cnt);
}

// Opens and closes "/" `n` times: n openat system calls by this thread.
void open_root(int n) {
  for (int i = 0; i < n; ++i) {
    int fd = openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
  }
}

// "ran N times" or why the check did not count; sets *ok to false when it never ran.
std::string ran_note(long long runs, bool* ok) {
  if (runs < 0) return "attached (run statistics unavailable, not checked that it fires)";
  if (runs == 0) {
    *ok = false;
    return "attached but never ran";
  }
  return fmt::format("attached and fired ({} runs)", runs);
}

// Reads a tracefs event's numeric id (events/<group>/<name>/id).
std::optional<uint64_t> tracepoint_id(const std::string& tracefs, const std::string& group, const std::string& name,
                                      std::string* error) {
  std::string file = path_join(tracefs, fmt::format("events/{}/{}/id", group, name));
  try {
    return std::stoull(read_file(file));
  } catch (const std::exception& e) {
    *error = e.what();
    return std::nullopt;
  }
}

std::string tracefs_note(const Tracefs& t) {
  return t.mounted_now ? fmt::format("; mounted tracefs at {} (left mounted for the tracers)", t.path)
                       : fmt::format("; tracefs at {}", t.path);
}

// The file descriptor of a kernel module's BTF object (for attach_btf_obj_fd), or empty.
Fd module_btf_fd(const std::string& module) {
  __u32 id = 0;
  while (bpf_btf_get_next_id(id, &id) == 0) {
    Fd fd(bpf_btf_get_fd_by_id(id));
    if (!fd) continue;
    char name[64] = {};
    bpf_btf_info info{};
    info.name = reinterpret_cast<uintptr_t>(name);
    info.name_len = sizeof name;
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.kernel_btf && module == name) return fd;
  }
  return {};
}

// Attaches a tracing program (fentry, tp_btf): bpf_link_create, else raw_tracepoint_open,
// which older kernels use for the same. Returns the link fd or -errno.
int attach_tracing(int prog_fd, bpf_attach_type type) {
  int fd = bpf_link_create(prog_fd, 0, type, nullptr);
  if (fd >= 0) return fd;
  int err = errno;
  if (err != EINVAL && err != kEnotsupp) return -err;
  fd = bpf_raw_tracepoint_open(nullptr, prog_fd);
  return fd < 0 ? -errno : fd;
}

// A legacy kprobe event made through tracefs kprobe_events; removed by the destructor.
class LegacyKprobe {
 public:
  LegacyKprobe(std::string events_file, std::string group, std::string name)
      : file_(std::move(events_file)), group_(std::move(group)), name_(std::move(name)) {}
  LegacyKprobe(const LegacyKprobe&) = delete;
  LegacyKprobe& operator=(const LegacyKprobe&) = delete;
  ~LegacyKprobe() {
    if (created_ && write_line(fmt::format("-:{}/{}\n", group_, name_)) != 0)
      log::warn("could not remove kprobe event {}/{} from {}", group_, name_, file_);
  }

  // Adds "p:group/name func"; returns 0 or an errno.
  int create(const std::string& func) {
    int err = write_line(fmt::format("p:{}/{} {}\n", group_, name_, func));
    created_ = err == 0;
    return err;
  }

 private:
  // Appends one line (O_APPEND: O_TRUNC would delete every kprobe event on the system).
  int write_line(const std::string& line) const {
    Fd fd(open(file_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!fd) return errno;
    if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) return errno;
    return fd.close() == 0 ? 0 : EIO;
  }

  std::string file_, group_, name_;
  bool created_ = false;
};

// Attaches through the kprobe PMU; returns "" on success, else why not. *perf receives the event.
std::string kprobe_via_pmu(const std::string& func, int prog_fd, Fd* perf) {
  if (!path_exists(kKprobePmuType)) return "no kprobe PMU (/sys/bus/event_source/devices/kprobe missing)";
  uint32_t type = 0;
  try {
    type = static_cast<uint32_t>(std::stoul(read_file(kKprobePmuType)));
  } catch (const std::exception& e) {
    return fmt::format("kprobe PMU type unreadable: {}", e.what());
  }
  // config1 carries the function name (kprobe_func), config2 the offset (0), config 0 = entry.
  *perf = perf_event_open(type, 0, -1, 0, reinterpret_cast<uintptr_t>(func.c_str()));
  if (!*perf) {
    int err = errno;
    return "kprobe PMU: " + failure("perf_event_open", "kprobes", err);
  }
  if (int err = attach_to_perf_event(perf->get(), prog_fd)) return "kprobe PMU: " + failure("attach", "kprobes", err);
  return "";
}

}  // namespace

const std::vector<std::string>& overlay_copy_up_functions() {
  static const std::vector<std::string> functions{"ovl_copy_up_one", "ovl_copy_up_flags", "ovl_copy_up"};
  return functions;
}

std::optional<std::string> first_in_kallsyms(const std::vector<std::string>& names) {
  std::string text;
  try {
    text = read_file("/proc/kallsyms");
  } catch (const Error&) {
    return std::nullopt;
  }
  // "address type name [module]"; the first name of `names` that appears wins.
  size_t best = names.size();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string addr, type, name;
    if (!(fields >> addr >> type >> name)) continue;
    for (size_t i = 0; i < best; ++i)
      if (names[i] == name) best = i;
    if (best == 0) break;
  }
  if (best == names.size()) return std::nullopt;
  return names[best];
}

ProbeResult probe_btf() {
  if (!path_exists(kVmlinuxBtf))
    return {false, fmt::format("no {} (kernel built without CONFIG_DEBUG_INFO_BTF)", kVmlinuxBtf)};
  LibbpfLog quiet;
  BtfPtr vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) return {false, fmt::format("cannot parse {}: {}", kVmlinuxBtf, errno_text(errno))};
  size_t modules = 0;
  try {
    Fd dir = open_dir("/sys/kernel/btf");
    std::unique_ptr<DIR, int (*)(DIR*)> d(fdopendir(dir.release()), closedir);
    while (dirent* e = d ? readdir(d.get()) : nullptr)
      if (e->d_name[0] != '.' && std::strcmp(e->d_name, "vmlinux") != 0) ++modules;
  } catch (const Error&) {
  }
  return {true, fmt::format("{} ({} types), {} module BTFs", kVmlinuxBtf, btf__type_cnt(vmlinux.get()), modules)};
}

ProbeResult probe_tracepoint() {
  if (auto why = privilege_problem()) return {false, *why};
  LibbpfLog quiet;
  Tracefs tracefs = find_tracefs(true);
  if (tracefs.path.empty()) return {false, tracefs.error};
  std::string error;
  auto id = tracepoint_id(tracefs.path, "syscalls", "sys_enter_openat", &error);
  if (!id)
    return {false, fmt::format("no syscalls:sys_enter_openat tracepoint ({}; kernel without CONFIG_FTRACE_SYSCALLS?){}",
                               error, tracefs_note(tracefs))};
  Program prog = load_program("tracepoint programs", BPF_PROG_TYPE_TRACEPOINT, {});
  if (!prog.fd) return {false, prog.error + tracefs_note(tracefs)};
  // Opened for this thread on any CPU, so that our own openat calls are sure to fire it.
  Fd perf = perf_event_open(PERF_TYPE_TRACEPOINT, *id, 0, -1);
  if (!perf) {
    int err = errno;
    return {false, failure("perf_event_open", "tracepoints", err) + tracefs_note(tracefs)};
  }
  if (int err = attach_to_perf_event(perf.get(), prog.fd.get()))
    return {false, failure("PERF_EVENT_IOC_SET_BPF", "tracepoints", err) + tracefs_note(tracefs)};
  bool ok = true;
  std::string ran = ran_note(run_count(prog.fd.get(), [] { open_root(3); }), &ok);
  // The program runs for every process's openat (BPF on a tracepoint ignores the perf
  // event's task), so the count is at least 3, not exactly.
  return {ok, fmt::format("syscalls:sys_enter_openat (id {}) via perf_event_open + PERF_EVENT_IOC_SET_BPF: {} while "
                          "this thread made 3 openat calls{}{}",
                          *id, ran, tracefs_note(tracefs), memlock_note(prog))};
}

ProbeResult probe_raw_tracepoint() {
  if (auto why = privilege_problem()) return {false, *why};
  LibbpfLog quiet;
  Program prog = load_program("raw tracepoint programs", BPF_PROG_TYPE_RAW_TRACEPOINT, {});
  if (!prog.fd) return {false, prog.error};
  int link = bpf_raw_tracepoint_open("sys_enter", prog.fd.get());
  if (link < 0) return {false, failure("bpf_raw_tracepoint_open(sys_enter)", "raw tracepoints", -link)};
  Fd link_fd(link);
  bool ok = true;
  std::string ran = ran_note(run_count(prog.fd.get(), [] { open_root(3); }), &ok);
  return {ok, fmt::format("sys_enter via bpf_raw_tracepoint_open: {}{}", ran, memlock_note(prog))};
}

ProbeResult probe_tp_btf() {
  if (auto why = privilege_problem()) return {false, *why};
  LibbpfLog quiet;
  BtfPtr vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) return {false, fmt::format("no vmlinux BTF ({}): tp_btf needs it", errno_text(errno))};
  constexpr const char* kTypedef = "btf_trace_sched_process_exec";
  int btf_id = btf__find_by_name_kind(vmlinux.get(), kTypedef, BTF_KIND_TYPEDEF);
  if (btf_id < 0) return {false, fmt::format("no typedef {} in vmlinux BTF", kTypedef)};
  bpf_prog_load_opts opts{};
  opts.expected_attach_type = BPF_TRACE_RAW_TP;
  opts.attach_btf_id = static_cast<__u32>(btf_id);
  Program prog = load_program("tp_btf", BPF_PROG_TYPE_TRACING, opts);
  if (!prog.fd) return {false, prog.error};
  int link = attach_tracing(prog.fd.get(), BPF_TRACE_RAW_TP);
  if (link < 0) return {false, failure("attach", "tp_btf", -link)};
  Fd link_fd(link);
  return {true, fmt::format("sched_process_exec ({} BTF id {}): loaded and attached{}", kTypedef, btf_id,
                            memlock_note(prog))};
}

ProbeResult probe_fentry(const std::vector<std::string>& candidates) {
  if (auto why = privilege_problem()) return {false, *why};
  LibbpfLog quiet;
  BtfPtr vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) return {false, fmt::format("no vmlinux BTF ({}): fentry needs it", errno_text(errno))};
  // overlayfs may be a module with its own BTF, split on top of vmlinux's.
  BtfPtr overlay;
  if (path_exists("/sys/kernel/btf/overlay")) overlay.reset(btf__load_module_btf("overlay", vmlinux.get()));

  std::string func, where;
  int btf_id = -1;
  for (const auto& name : candidates) {
    if ((btf_id = btf__find_by_name_kind(vmlinux.get(), name.c_str(), BTF_KIND_FUNC)) > 0) {
      func = name, where = "vmlinux";
      break;
    }
    if (overlay && (btf_id = btf__find_by_name_kind(overlay.get(), name.c_str(), BTF_KIND_FUNC)) > 0) {
      func = name, where = "overlay";
      break;
    }
  }
  std::string fallback;
  if (func.empty()) {
    func = "vfs_read", where = "vmlinux";
    btf_id = btf__find_by_name_kind(vmlinux.get(), func.c_str(), BTF_KIND_FUNC);
    std::string tried;
    for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c;
    fallback = fmt::format(" (none of {} is in BTF: checked with vfs_read instead)", tried.empty() ? "-" : tried);
    if (btf_id <= 0)
      return {false, fmt::format("no function to attach to{}: vfs_read is not in vmlinux BTF", fallback)};
  }

  bpf_prog_load_opts opts{};
  opts.expected_attach_type = BPF_TRACE_FENTRY;
  opts.attach_btf_id = static_cast<__u32>(btf_id);
  Fd module_fd;
  if (where != "vmlinux") {
    module_fd = module_btf_fd(where);
    if (!module_fd)
      return {false, fmt::format("{} is in the {} module's BTF but its BTF object was not found", func, where)};
    opts.attach_btf_obj_fd = static_cast<__u32>(module_fd.get());
  }
  std::string target = fmt::format("fentry on {} ({} BTF id {}){}", func, where, btf_id, fallback);
  Program prog = load_program("fentry", BPF_PROG_TYPE_TRACING, opts);
  if (!prog.fd) return {false, fmt::format("{}: {}", target, prog.error)};
  int link = attach_tracing(prog.fd.get(), BPF_TRACE_FENTRY);
  if (link < 0) return {false, fmt::format("{}: {}", target, failure("attach", "fentry", -link))};
  Fd link_fd(link);
  return {true, fmt::format("{}: loaded and attached{}", target, memlock_note(prog))};
}

ProbeResult probe_kprobe(const std::string& func) {
  if (auto why = privilege_problem()) return {false, *why};
  LibbpfLog quiet;
  Program prog = load_program("kprobes", BPF_PROG_TYPE_KPROBE, {});
  if (!prog.fd) return {false, fmt::format("kprobe on {}: {}", func, prog.error)};

  // The kprobe PMU first (what libbpf prefers), then the legacy tracefs interface.
  Fd pmu_event;
  std::string pmu_error = kprobe_via_pmu(func, prog.fd.get(), &pmu_event);
  if (pmu_error.empty())
    return {true, fmt::format("kprobe on {} via the kprobe PMU: loaded and attached{}", func, memlock_note(prog))};
  pmu_event.reset();

  Tracefs tracefs = find_tracefs(true);
  std::string legacy_error, no_id;
  if (tracefs.path.empty()) {
    legacy_error = tracefs.error;
  } else {
    static std::atomic<unsigned> counter{0};
    std::string name = fmt::format("cowbench_probe_{}_{}", getpid(), counter++);
    std::string events = path_join(tracefs.path, "kprobe_events");
    // Declared before the perf event, so that the event is closed before the kprobe is removed.
    LegacyKprobe kprobe(events, "cowbench", name);
    if (!path_exists(events)) {
      legacy_error = fmt::format("no {} (kernel without CONFIG_KPROBE_EVENTS)", events);
    } else if (int err = kprobe.create(func)) {
      legacy_error = fmt::format("writing {}: {}", events, err == EPERM ? eperm_cause("kprobes") : errno_text(err));
    } else if (auto id = tracepoint_id(tracefs.path, "cowbench", name, &no_id); !id) {
      legacy_error = "the new kprobe event has no id: " + no_id;
    } else if (Fd perf = perf_event_open(PERF_TYPE_TRACEPOINT, *id, -1, 0); !perf) {
      int err = errno;
      legacy_error = failure("perf_event_open", "kprobes", err);
    } else if (int aerr = attach_to_perf_event(perf.get(), prog.fd.get())) {
      legacy_error = failure("PERF_EVENT_IOC_SET_BPF", "kprobes", aerr);
    } else {
      return {true, fmt::format("kprobe on {} via legacy kprobe_events ({}): loaded and attached{}{}", func, events,
                                memlock_note(prog), tracefs_note(tracefs))};
    }
  }
  std::string detail =
      fmt::format("kprobe on {}: {} and legacy kprobe_events refused: {}", func, pmu_error, legacy_error);
  // Name lockdown even when something else failed first: it would refuse kprobes as well.
  Lockdown lockdown = read_lockdown();
  if (!lockdown.mode.empty() && lockdown.mode != "none" && detail.find("lockdown") == std::string::npos)
    detail += fmt::format("; kernel lockdown={} would refuse kprobes too", lockdown.mode);
  return {false, detail};
}

}  // namespace cowbench::ebpf
