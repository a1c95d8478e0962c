// The eBPF copy-up and block-CoW tracer (see tracer.h): mode choice, loading, per-container windows, counts.
#include "ebpf/tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/log.h"
#include "ebpf/kernel_fs.h"
#include "ebpf/probe.h"
#include "ebpf/trace_events.h"
// The skeleton (generated in the build tree by bpftool) needs struct cb_window from above.
#include "ebpf/copyup.skel.h"

namespace cowbench::ebpf {
namespace {

using nlohmann::json;

constexpr uint32_t kFmodeCreated = 1u << 20;  // FMODE_CREATED since Linux 4.19

// --- libbpf's messages: kept for error reports, shown at debug level --------------------

std::mutex g_libbpf_mutex;
std::string* g_libbpf_sink = nullptr;

int libbpf_print(libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, format, args);
  if (n <= 0) return 0;
  std::string line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  {
    std::lock_guard<std::mutex> lock(g_libbpf_mutex);
    if (g_libbpf_sink && level != LIBBPF_DEBUG) *g_libbpf_sink += line + "\n";
  }
  if (level != LIBBPF_DEBUG) log::debug("libbpf: {}", line);
  return 0;
}

// Routes libbpf's messages into `sink` while alive (libbpf's callback is process-global).
class LibbpfLog {
 public:
  explicit LibbpfLog(std::string* sink) {
    std::lock_guard<std::mutex> lock(g_libbpf_mutex);
    g_libbpf_sink = sink;
    previous_ = libbpf_set_print(libbpf_print);
  }
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;
  ~LibbpfLog() {
    std::lock_guard<std::mutex> lock(g_libbpf_mutex);
    g_libbpf_sink = nullptr;
    libbpf_set_print(previous_);
  }

 private:
  libbpf_print_fn_t previous_ = nullptr;
};

// The last few lines libbpf said (where it names what failed).
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

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return fmt::format("{}: {}", name ? name : std::to_string(err), std::strerror(err));
}

// Why the kernel says EPERM to `what`: lockdown when it is on.
std::string eperm_cause(const std::string& what) {
  Lockdown l = read_lockdown();
  if (!l.mode.empty() && l.mode != "none") return fmt::format("kernel lockdown={} refuses {}", l.mode, what);
  return fmt::format("the kernel refuses {} (a capability or an LSM policy?)", what);
}

// --- RAII for libbpf objects -------------------------------------------------------------

struct SkelDeleter {
  void operator()(copyup* s) const noexcept { copyup__destroy(s); }
};
struct RingDeleter {
  void operator()(ring_buffer* r) const noexcept { ring_buffer__free(r); }
};
struct LinkDeleter {
  void operator()(bpf_link* l) const noexcept { bpf_link__destroy(l); }
};
struct BtfDeleter {
  void operator()(btf* b) const noexcept { btf__free(b); }
};
using SkelPtr = std::unique_ptr<copyup, SkelDeleter>;
using RingPtr = std::unique_ptr<ring_buffer, RingDeleter>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

// --- kernel facts --------------------------------------------------------------------------

// dev_t as the kernel stores it in super_block.s_dev (MKDEV: major << 20 | minor).
uint32_t kernel_dev(unsigned major, unsigned minor) { return (major << 20) | minor; }
std::string dev_text(uint32_t kdev) { return fmt::format("{}:{}", kdev >> 20, kdev & 0xfffff); }

// The super block dev of the file system holding `path`, from /proc/self/mountinfo (not
// stat(2): btrfs reports a per-subvolume st_dev).
uint32_t super_dev(const std::string& path) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) fail_sys("resolve {}", path);
  std::string p = resolved;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line, best_mp;
  uint32_t best = 0;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, majmin, root, mp;
    if (!(f >> id >> parent >> majmin >> root >> mp)) continue;
    bool under = mp == "/" || p == mp || (p.starts_with(mp) && p[mp.size()] == '/');
    if (!under || mp.size() < best_mp.size()) continue;
    unsigned ma = 0, mi = 0;
    if (sscanf(majmin.c_str(), "%u:%u", &ma, &mi) != 2) continue;
    best_mp = mp;
    best = kernel_dev(ma, mi);
    found = true;
  }
  if (!found) fail(Errc::kNotFound, "no mount holds {} in /proc/self/mountinfo", path);
  return best;
}

std::string fs_name(long magic) {
  switch (static_cast<unsigned long>(magic)) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    default: return fmt::format("fs magic {:#x}", static_cast<unsigned long>(magic));
  }
}

// The syscalls that cause copy-ups (and a few more), by number on this architecture.
const std::map<long, std::string>& syscall_names() {
  static const std::map<long, std::string> names = [] {
    std::map<long, std::string> m;
#define CB_SYSCALL(n) m[SYS_##n] = #n
#ifdef SYS_open
    CB_SYSCALL(open);
#endif
#ifdef SYS_creat
    CB_SYSCALL(creat);
#endif
#ifdef SYS_chmod
    CB_SYSCALL(chmod);
#endif
#ifdef SYS_chown
    CB_SYSCALL(chown);
#endif
#ifdef SYS_lchown
    CB_SYSCALL(lchown);
#endif
#ifdef SYS_utimes
    CB_SYSCALL(utimes);
#endif
#ifdef SYS_utime
    CB_SYSCALL(utime);
#endif
#ifdef SYS_futimesat
    CB_SYSCALL(futimesat);
#endif
#ifdef SYS_rename
    CB_SYSCALL(rename);
#endif
#ifdef SYS_link
    CB_SYSCALL(link);
#endif
#ifdef SYS_unlink
    CB_SYSCALL(unlink);
#endif
#ifdef SYS_mkdir
    CB_SYSCALL(mkdir);
#endif
#ifdef SYS_rmdir
    CB_SYSCALL(rmdir);
#endif
#ifdef SYS_fchmodat2
    CB_SYSCALL(fchmodat2);
#endif
#ifdef SYS_openat2
    CB_SYSCALL(openat2);
#endif
    CB_SYSCALL(openat);
    CB_SYSCALL(truncate);
    CB_SYSCALL(ftruncate);
    CB_SYSCALL(fchmod);
    CB_SYSCALL(fchmodat);
    CB_SYSCALL(fchown);
    CB_SYSCALL(fchownat);
    CB_SYSCALL(utimensat);
    CB_SYSCALL(setxattr);
    CB_SYSCALL(lsetxattr);
    CB_SYSCALL(fsetxattr);
    CB_SYSCALL(removexattr);
    CB_SYSCALL(lremovexattr);
    CB_SYSCALL(fremovexattr);
    CB_SYSCALL(renameat);
    CB_SYSCALL(renameat2);
    CB_SYSCALL(linkat);
    CB_SYSCALL(unlinkat);
    CB_SYSCALL(mkdirat);
    CB_SYSCALL(write);
    CB_SYSCALL(pwrite64);
    CB_SYSCALL(writev);
    CB_SYSCALL(fallocate);
    CB_SYSCALL(copy_file_range);
    CB_SYSCALL(sendfile);
    CB_SYSCALL(io_uring_enter);
    CB_SYSCALL(read);
    CB_SYSCALL(readv);
    CB_SYSCALL(close);
    CB_SYSCALL(fsync);
    CB_SYSCALL(fdatasync);
    CB_SYSCALL(mount);
    CB_SYSCALL(fsconfig);
    CB_SYSCALL(getpid);
#undef CB_SYSCALL
    return m;
  }();
  return names;
}

std::string syscall_name(long nr) {
  if (nr < 0) return "none";
  auto it = syscall_names().find(nr);
  return it == syscall_names().end() ? fmt::format("syscall {}", nr) : it->second;
}

// FUSE opcodes by number (include/uapi/linux/fuse.h).
std::string fuse_opcode_name(uint32_t op) {
  static const char* const names[] = {
      nullptr,        "LOOKUP",      "FORGET",        "GETATTR",     "SETATTR",  "READLINK",    "SYMLINK",
      nullptr,        "MKNOD",       "MKDIR",         "UNLINK",      "RMDIR",    "RENAME",      "LINK",
      "OPEN",         "READ",        "WRITE",         "STATFS",      "RELEASE",  nullptr,       "FSYNC",
      "SETXATTR",     "GETXATTR",    "LISTXATTR",     "REMOVEXATTR", "FLUSH",    "INIT",        "OPENDIR",
      "READDIR",      "RELEASEDIR",  "FSYNCDIR",      "GETLK",       "SETLK",    "SETLKW",      "ACCESS",
      "CREATE",       "INTERRUPT",   "BMAP",          "DESTROY",     "IOCTL",    "POLL",        "NOTIFY_REPLY",
      "BATCH_FORGET", "FALLOCATE",   "READDIRPLUS",   "RENAME2",     "LSEEK",    "COPY_FILE_RANGE",
      "SETUPMAPPING", "REMOVEMAPPING", "SYNCFS",      "TMPFILE",     "STATX"};
  if (op < std::size(names) && names[op]) return std::string("FUSE_") + names[op];
  if (op == 4096) return "CUSE_INIT";
  return fmt::format("FUSE_OP_{}", op);
}

// Which tracepoints the kernel has, by their BTF typedef btf_trace_<name> (what tp_btf needs),
// in vmlinux or in a loaded module's BTF.
class TracepointIndex {
 public:
  TracepointIndex() {
    vmlinux_.reset(btf__load_vmlinux_btf());
    if (!vmlinux_) {
      error_ = fmt::format("no vmlinux BTF ({})", errno_text(errno));
      return;
    }
    DIR* d = opendir("/sys/kernel/btf");
    if (!d) return;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == ".." || n == "vmlinux") continue;
      if (btf* m = btf__load_module_btf(n.c_str(), vmlinux_.get())) modules_.emplace_back(n, BtfPtr(m));
    }
    closedir(d);
  }
  // "" when the tracepoint is there, else why not.
  std::string missing(const std::string& tracepoint) const {
    if (!vmlinux_) return error_;
    std::string name = "btf_trace_" + tracepoint;
    if (btf__find_by_name_kind(vmlinux_.get(), name.c_str(), BTF_KIND_TYPEDEF) > 0) return "";
    for (const auto& [mod, b] : modules_)
      if (btf__find_by_name_kind(b.get(), name.c_str(), BTF_KIND_TYPEDEF) > 0) return "";
    return fmt::format("no tracepoint {} in this kernel (or its module is not loaded)", tracepoint);
  }
  // Where function `name` is (vmlinux or a module), or "".
  std::string function(const std::string& name) const {
    if (!vmlinux_) return "";
    if (btf__find_by_name_kind(vmlinux_.get(), name.c_str(), BTF_KIND_FUNC) > 0) return "vmlinux";
    for (const auto& [mod, b] : modules_)
      if (btf__find_by_name_kind(b.get(), name.c_str(), BTF_KIND_FUNC) > 0) return mod;
    return "";
  }

 private:
  BtfPtr vmlinux_;
  std::vector<std::pair<std::string, BtfPtr>> modules_;
  std::string error_;
};

// The tracepoint programs, one row each: what they attach to and what they are for.
struct TpRow {
  const char* program;
  const char* tracepoint;
  const char* role;
};
constexpr TpRow kTracepointPrograms[] = {
    {"cb_mark_inode_dirty", "writeback_mark_inode_dirty", "overlayfs copy-ups (the upper O_TMPFILE) and dirtied files"},
    {"cb_sys_exit", "sys_exit", "the end of a copy-up's syscall; the FUSE daemon's creates"},
    {"cb_fuse_send", "fuse_request_send", "FUSE requests"},
    {"cb_fuse_end", "fuse_request_end", "FUSE request latency and fuse-overlayfs copy-ups"},
    {"cb_xfs_cow_remap", "xfs_reflink_cow_remap_from", "XFS reflink CoW extents"},
    {"cb_btrfs_ordered", "btrfs_ordered_extent_add", "btrfs CoW extents"},
    {"cb_btrfs_inode_new", "btrfs_inode_new", "btrfs files the container creates (not CoW)"},
};

bool has_privilege(std::string* why) {
  if (geteuid() != 0) {
    *why = fmt::format("needs root (running as uid {})", geteuid());
    return false;
  }
  return true;
}

// --- the session -------------------------------------------------------------------------

enum class Mode { kFentry, kKprobe, kTracepoint };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kFentry: return "fentry";
    case Mode::kKprobe: return "kprobe";
    case Mode::kTracepoint: return "tracepoint";
  }
  return "?";
}

// What one window watches.
struct Window {
  uint32_t kind = CB_KIND_NONE;
  std::string upper;    // upper dir / writable dir
  std::string workdir;  // overlay / fuse workdir
  uint32_t upper_dev = 0;
  uint64_t upper_ino = 0;
  uint64_t fuse_workdir = 0;
  std::string upper_fs;
  bool observable = true;
  std::string why_not;  // when !observable
};

class BpfTracer final : public TraceSession {
 public:
  BpfTracer(Mode mode, const TracerOptions& options) : mode_(mode), options_(options) {}
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;
  ~BpfTracer() override { stop_reader(); }

  // Opens, loads and attaches; throws Error(kUnsupported, why) when this mode cannot work.
  void load(const TracepointIndex& index);

  std::string mode() const override { return mode_name(mode_); }
  void begin(const TraceTarget& target) override;
  TraceCounts end() override;
  json details() const override { return details_; }

  void set_why_not(const json& why) {
    if (!why.empty()) details_["why_not"] = why;
  }

 private:
  Window describe(const TraceTarget& target) const;
  void reset_maps();
  void start_reader();
  void stop_reader() noexcept;
  static int on_record(void* ctx, void* data, size_t size);
  std::vector<uint64_t> percpu_sums(bpf_map* map, uint32_t entries) const;
  bool attached(const char* program) const { return attached_.count(program) > 0; }
  json event_json(const cb_event& e) const;

  Mode mode_;
  TracerOptions options_;
  std::string copy_up_function_;  // fentry / kprobe target
  // Destroyed in reverse order: the ring buffer, then the links, then the skeleton.
  SkelPtr skel_;
  std::vector<LinkPtr> links_;
  RingPtr ring_;
  std::set<std::string> attached_;
  json details_ = json::object();

  // The open window.
  bool open_ = false;
  Window window_;
  uint64_t window_start_ns_ = 0;
  std::thread reader_;
  std::atomic<bool> reading_{false};
  std::mutex ring_mutex_;  // ring_buffer__consume and what on_record fills
  std::vector<cb_event> kept_;    // the first max_kept_events records
  int64_t not_kept_ = 0;          // records beyond those
  std::vector<int64_t> latencies_;  // of every copy-up record
  int64_t records_ = 0;          // copy-up and CoW records read
  int64_t syscall_records_ = 0;  // CB_EV_SYSCALL records read
};

void BpfTracer::load(const TracepointIndex& index) {
  std::string why;
  if (!has_privilege(&why)) fail(Errc::kUnsupported, "{}", why);

  // fentry / kprobe: find the overlayfs copy-up function and check the program type works.
  const auto& candidates = overlay_copy_up_functions();
  if (mode_ == Mode::kFentry) {
    for (const auto& f : candidates) {
      if (!index.function(f).empty()) {
        copy_up_function_ = f;
        break;
      }
    }
    if (copy_up_function_.empty())
      fail(Errc::kUnsupported, "none of the overlayfs copy-up functions ({}) is in BTF (inlined, or overlay not loaded)",
           fmt::join(candidates, ", "));
    ProbeResult p = probe_fentry({copy_up_function_});
    if (!p.ok) fail(Errc::kUnsupported, "{}", p.detail);
  } else if (mode_ == Mode::kKprobe) {
    auto f = first_in_kallsyms(candidates);
    if (!f) fail(Errc::kUnsupported, "none of {} is in /proc/kallsyms", fmt::join(candidates, ", "));
    copy_up_function_ = *f;
    ProbeResult p = probe_kprobe(copy_up_function_);
    if (!p.ok) fail(Errc::kUnsupported, "{}", p.detail);
  }

  std::string libbpf_said;
  LibbpfLog capture(&libbpf_said);
  // open → configure → load → attach → ring buffer, one step at a time.
  skel_.reset(copyup__open());
  if (!skel_) fail(Errc::kUnsupported, "opening the BPF object failed: {}", errno_text(errno));

  auto* ro = skel_->rodata;
#ifdef SYS_open
  ro->nr_open = SYS_open;
#endif
#ifdef SYS_creat
  ro->nr_creat = SYS_creat;
#endif
  ro->nr_openat = SYS_openat;
#ifdef SYS_openat2
  ro->nr_openat2 = SYS_openat2;
#endif
  int ignored[] = {SYS_fsconfig, SYS_fsmount, SYS_fsopen, SYS_move_mount, SYS_mount_setattr, SYS_open_tree,
#ifdef SYS_mount
                   SYS_mount
#else
                   -1
#endif
  };
  for (size_t i = 0; i < std::size(ignored) && i < std::size(ro->nr_ignored); ++i) ro->nr_ignored[i] = ignored[i];
  ro->o_tmpfile = O_TMPFILE;
  ro->o_creat = O_CREAT;
  ro->fmode_created = kFmodeCreated;
  ro->wake_bytes = std::max<size_t>(options_.ringbuf_bytes / 8, 4096);
  if (int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<uint32_t>(options_.ringbuf_bytes)))
    fail(Errc::kInvalidInput, "ring buffer size {}: {}", options_.ringbuf_bytes, errno_text(-err));

  // Tracepoint programs this kernel lacks are left out (and said so); the probe programs
  // load only in their mode.
  json programs = json::object();
  for (const TpRow& row : kTracepointPrograms) {
    bpf_program* p = bpf_object__find_program_by_name(skel_->obj, row.program);
    std::string missing = index.missing(row.tracepoint);
    if (!missing.empty()) {
      bpf_program__set_autoload(p, false);
      programs[row.program] = {{"tracepoint", row.tracepoint}, {"for", row.role}, {"status", missing}};
    } else {
      programs[row.program] = {{"tracepoint", row.tracepoint}, {"for", row.role}, {"status", "loading"}};
    }
  }
  bool fentry = mode_ == Mode::kFentry, kprobe = mode_ == Mode::kKprobe;
  bpf_program__set_autoload(skel_->progs.cb_copy_up_entry, fentry);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_exit, fentry);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_kprobe, kprobe);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_kretprobe, kprobe);
  if (fentry) {
    for (bpf_program* p : {skel_->progs.cb_copy_up_entry, skel_->progs.cb_copy_up_exit})
      if (int err = bpf_program__set_attach_target(p, 0, copy_up_function_.c_str()))
        fail(Errc::kUnsupported, "fentry target {}: {}", copy_up_function_, errno_text(-err));
  }

  if (int err = copyup__load(skel_.get())) {
    err = -err;
    std::string cause = err == EPERM ? eperm_cause(fmt::format("{} programs", mode_name(mode_))) : errno_text(err);
    fail(Errc::kUnsupported, "loading the BPF programs failed: {} (libbpf: {})", cause, tail_lines(libbpf_said, 3));
  }

  auto attach_one = [&](bpf_program* p, const std::function<bpf_link*()>& how) -> std::string {
    bpf_link* l = how();
    if (!l) {
      int err = errno;
      return err == EPERM ? eperm_cause("attaching") : errno_text(err);
    }
    links_.emplace_back(l);
    attached_.insert(bpf_program__name(p));
    return "";
  };
  for (const TpRow& row : kTracepointPrograms) {
    bpf_program* p = bpf_object__find_program_by_name(skel_->obj, row.program);
    if (!bpf_program__autoload(p)) continue;
    std::string err = attach_one(p, [p] { return bpf_program__attach(p); });
    programs[row.program]["status"] = err.empty() ? "attached" : "attach failed: " + err;
  }
  if (fentry || kprobe) {
    std::vector<std::pair<bpf_program*, bool>> probes =
        fentry ? std::vector<std::pair<bpf_program*, bool>>{{skel_->progs.cb_copy_up_entry, false},
                                                           {skel_->progs.cb_copy_up_exit, true}}
               : std::vector<std::pair<bpf_program*, bool>>{{skel_->progs.cb_copy_up_kprobe, false},
                                                           {skel_->progs.cb_copy_up_kretprobe, true}};
    for (auto [p, ret] : probes) {
      std::string err = fentry ? attach_one(p, [p] { return bpf_program__attach(p); })
                               : attach_one(p, [&, p = p, ret = ret] {
                                   return bpf_program__attach_kprobe(p, ret, copy_up_function_.c_str());
                                 });
      if (!err.empty())
        fail(Errc::kUnsupported, "attaching {} to {} failed: {}", bpf_program__name(p), copy_up_function_, err);
      programs[bpf_program__name(p)] = {{"function", copy_up_function_}, {"status", "attached"}};
    }
  }
  if (!attached("cb_mark_inode_dirty") || !attached("cb_sys_exit"))
    fail(Errc::kUnsupported, "the core tracepoints did not attach: {}", programs.dump());

  ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), on_record, this, nullptr));
  if (!ring_) fail(Errc::kUnsupported, "ring buffer: {}", errno_text(errno));
  kept_.reserve(options_.max_kept_events);
  start_reader();

  details_["mode"] = mode_name(mode_);
  details_["programs"] = programs;
  details_["ringbuf_bytes"] = options_.ringbuf_bytes;
  if (!copy_up_function_.empty()) details_["copy_up_function"] = copy_up_function_;
  details_["method"] = {
      {"overlayfs", "a copy-up is the O_TMPFILE overlayfs makes on the upper file system (a regular inode whose link "
                    "count d_tmpfile() drops to 0 before it has a name, writeback_mark_inode_dirty) in a container task; "
                    "its bytes are that inode's size when the task's syscall ends (sys_exit)"},
      {"fuse-overlayfs", "a copy-up is a file the daemon creates in <workdir>/work (sys_exit of its open call), "
                         "completed when it answers the FUSE request it serves (fuse_request_end)"},
      {"block CoW", "XFS: CoW fork extents remapped into the file (xfs_reflink_cow_remap_from); btrfs: ordered "
                    "extents that are not NOCOW/PREALLOC (btrfs_ordered_extent_add); for files the container "
                    "dirtied and did not create, after syncfs at the end of the window"}};
}

int BpfTracer::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfTracer*>(ctx);
  if (size < sizeof(cb_event)) return 0;
  const auto* e = static_cast<const cb_event*>(data);
  if (e->type == CB_EV_SYSCALL) {
    ++self->syscall_records_;
    return 0;
  }
  ++self->records_;
  if (e->type == CB_EV_COPYUP || e->type == CB_EV_FUSE_COPYUP)
    self->latencies_.push_back(static_cast<int64_t>(e->latency_ns));
  if (self->kept_.size() < self->options_.max_kept_events)
    self->kept_.push_back(*e);
  else
    ++self->not_kept_;
  return 0;
}

// One reader thread for the tracer's whole life, started at load: no thread is created
// around the forks that start containers (a thread starting up while another forks can leave
// the child with a runtime lock held, e.g. under AddressSanitizer). It waits on the ring
// buffer's epoll fd and drains it under ring_mutex_, which begin()/end() take as well.
void BpfTracer::start_reader() {
  reading_ = true;
  reader_ = std::thread([this] {
    int efd = ring_buffer__epoll_fd(ring_.get());
    while (reading_.load(std::memory_order_relaxed)) {
      pollfd p{efd, POLLIN, 0};
      int n = ::poll(&p, 1, 50);
      if (n < 0 && errno != EINTR) {
        log::warn("tracer: waiting for the ring buffer failed: {}", std::strerror(errno));
        break;
      }
      std::lock_guard<std::mutex> lock(ring_mutex_);
      int rc = ring_buffer__consume(ring_.get());
      if (rc < 0 && rc != -EINTR) log::warn("tracer: reading the ring buffer failed: {}", errno_text(-rc));
    }
  });
}

void BpfTracer::stop_reader() noexcept {
  if (!reader_.joinable()) return;
  reading_ = false;
  reader_.join();
}

std::vector<uint64_t> BpfTracer::percpu_sums(bpf_map* map, uint32_t entries) const {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> sums(entries, 0), values(static_cast<size_t>(std::max(ncpu, 1)));
  for (uint32_t k = 0; k < entries; ++k) {
    if (bpf_map_lookup_elem(bpf_map__fd(map), &k, values.data()) != 0) continue;
    for (uint64_t v : values) sums[k] += v;
  }
  return sums;
}

// Empties every map a window fills.
void BpfTracer::reset_maps() {
  for (bpf_map* m : {skel_->maps.tasks, skel_->maps.reqs, skel_->maps.conns, skel_->maps.fuse_ops, skel_->maps.fuse_hist,
                     skel_->maps.dirtied, skel_->maps.created, skel_->maps.cow_files, skel_->maps.syscalls}) {
    int fd = bpf_map__fd(m);
    std::vector<char> key(bpf_map__key_size(m));
    while (bpf_map_get_next_key(fd, nullptr, key.data()) == 0)
      if (bpf_map_delete_elem(fd, key.data()) != 0) break;
  }
  int ncpu = std::max(libbpf_num_possible_cpus(), 1);
  std::vector<uint64_t> zero(static_cast<size_t>(ncpu), 0);
  for (auto [m, n] : {std::pair{skel_->maps.counters, uint32_t{CB_C_COUNT}}, {skel_->maps.copyup_hist, uint32_t{CB_HIST_BUCKETS}}})
    for (uint32_t k = 0; k < n; ++k) bpf_map_update_elem(bpf_map__fd(m), &k, zero.data(), BPF_ANY);
}

Window BpfTracer::describe(const TraceTarget& t) const {
  Window w;
  const Mount* layered = nullptr;
  for (const auto& m : t.mounts)
    if (m.type == "overlay" || m.type.starts_with("fuse")) layered = &m;
  auto option = [](const Mount& m, const std::string& key) {
    for (const auto& o : m.options)
      if (o.starts_with(key + "=")) return o.substr(key.size() + 1);
    return std::string();
  };
  if (t.cow == snap::Granularity::kTree) {
    w.kind = CB_KIND_NONE;
    return w;
  }
  if (t.cow == snap::Granularity::kFile) {
    if (!layered || option(*layered, "upperdir").empty()) return w;  // read-only: nothing to copy up
    w.upper = option(*layered, "upperdir");
    w.workdir = option(*layered, "workdir");
    w.kind = layered->type == "overlay" ? CB_KIND_OVERLAY : CB_KIND_FUSE;
  } else {
    for (const auto& m : t.mounts)
      if (m.type == "bind") w.upper = m.source;
    if (w.upper.empty()) fail(Errc::kInvalidInput, "tracing {}: its mounts have no writable directory", t.backend);
    w.kind = CB_KIND_EXTENT;
  }
  w.upper_dev = super_dev(w.upper);
  struct stat st {};
  if (stat(w.upper.c_str(), &st) != 0) fail_sys("stat {}", w.upper);
  w.upper_ino = st.st_ino;
  struct statfs sf {};
  if (statfs(w.upper.c_str(), &sf) == 0) w.upper_fs = fs_name(static_cast<long>(sf.f_type));

  switch (w.kind) {
    case CB_KIND_OVERLAY: {
      // overlayfs copies regular files up through an O_TMPFILE where the upper file system has
      // it (ext4, xfs, btrfs, tmpfs...); elsewhere it creates and renames in its workdir.
      Fd tmp(open(w.upper.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      if (!tmp) {
        w.observable = false;
        w.why_not = fmt::format("the upper file system ({}) has no O_TMPFILE ({}): overlayfs copies up through "
                                "its workdir there, which the tracepoints do not show",
                                w.upper_fs, errno_text(errno));
      }
      break;
    }
    case CB_KIND_FUSE: {
      if (w.workdir.empty()) fail(Errc::kInvalidInput, "tracing {}: the fuse-overlayfs mount has no workdir=", t.backend);
      if (stat(w.workdir.c_str(), &st) != 0) fail_sys("stat {}", w.workdir);
      w.fuse_workdir = st.st_ino;
      if (!attached("cb_fuse_end")) {
        w.observable = false;
        w.why_not = "the fuse_request_end tracepoint is not attached (see programs)";
      }
      break;
    }
    case CB_KIND_EXTENT: {
      const char* needed = w.upper_fs == "xfs" ? "cb_xfs_cow_remap" : w.upper_fs == "btrfs" ? "cb_btrfs_ordered" : nullptr;
      if (!needed) {
        w.observable = false;
        w.why_not = fmt::format("block CoW is observed on XFS and btrfs; {} is on {}", w.upper, w.upper_fs);
      } else if (!attached(needed)) {
        w.observable = false;
        w.why_not = fmt::format("{} is not attached (see programs)", needed);
      }
      break;
    }
    default: break;
  }
  return w;
}

void BpfTracer::begin(const TraceTarget& target) {
  if (open_) {
    log::warn("tracer: a window was still open; closing it");
    end();
  }
  Window w = describe(target);
  reset_maps();
  {
    // Records of an earlier window (or of nothing) are dropped.
    std::lock_guard<std::mutex> lock(ring_mutex_);
    ring_buffer__consume(ring_.get());
    kept_.clear();
    latencies_.clear();
    records_ = syscall_records_ = not_kept_ = 0;
  }

  cb_window& bw = skel_->bss->window;
  bw.kind = w.kind;
  bw.upper_dev = w.upper_dev;
  bw.upper_ino = w.upper_ino;
  bw.fuse_workdir = w.fuse_workdir;
  bw.fuse_tgid = target.fuse_daemon_pid > 0 ? static_cast<uint32_t>(target.fuse_daemon_pid) : 0;
  bw.flags = options_.record_syscalls ? CB_FLAG_ALL_SYSCALLS : 0;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  window_start_ns_ = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
  // The cgroup id opens the window: written last, after everything it guards.
  __atomic_store_n(&bw.cgroup_id, target.cgroup_id, __ATOMIC_RELEASE);
  window_ = w;
  open_ = true;
}

json BpfTracer::event_json(const cb_event& e) const {
  std::string path;
  int depth = 0;
  while (depth < CB_NAME_DEPTH && e.names[depth][0]) ++depth;
  for (int i = depth - 1; i >= 0; --i)
    path += "/" + std::string(e.names[i], strnlen(e.names[i], CB_NAME_LEN));
  if (depth == CB_NAME_DEPTH) path = "..." + path;
  const char* type = e.type == CB_EV_COPYUP ? "copyup" : e.type == CB_EV_FUSE_COPYUP ? "fuse-copyup" : "cow";
  json j{{"type", type},
         {"t_ns", static_cast<int64_t>(e.ts_ns - window_start_ns_)},
         {"pid", e.pid},
         {"tid", e.tid},
         {"comm", std::string(e.comm, strnlen(e.comm, sizeof e.comm))},
         {"dev", dev_text(e.dev)},
         {"ino", e.ino},
         {"bytes", e.bytes}};
  if (!path.empty()) j["path"] = path;
  if (e.type == CB_EV_COW) {
    j["offset"] = e.offset;
    j["extents"] = e.extents;
    return j;
  }
  j["syscall"] = syscall_name(e.syscall);
  j["latency_ns"] = e.latency_ns;
  j["completed_at"] = e.how == CB_HOW_FUSE_REPLY ? "fuse reply" : e.how == CB_HOW_PROBE_EXIT ? "copy-up return" : "syscall exit";
  if (e.fuse_opcode) {
    j["fuse_op"] = fuse_opcode_name(e.fuse_opcode);
    j["fuse_unique"] = e.offset;
  }
  return j;
}

// The regular files below `root` by inode number: size and path below root (for copy-ups
// that never reached a completion point).
struct FileAt {
  int64_t size = 0;
  std::string path;
};
void index_files(const std::string& root, const std::string& rel, std::map<uint64_t, FileAt>& out, int depth = 0) {
  if (depth > 64) return;
  DIR* d = opendir((root + rel).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = rel + "/" + n;
    struct stat st {};
    if (lstat((root + p).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      index_files(root, p, out, depth + 1);
    else if (S_ISREG(st.st_mode))
      out[st.st_ino] = {st.st_size, p};
  }
  closedir(d);
}

TraceCounts BpfTracer::end() {
  if (!open_) fail(Errc::kFailedPrecondition, "tracer: end() without begin()");
  Window w = window_;
  // Block CoW happens at writeback: make it happen now, inside the window.
  if (w.kind == CB_KIND_EXTENT) {
    Fd fd(open(w.upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || syncfs(fd.get()) != 0) log::warn("tracer: syncfs {}: {}", w.upper, std::strerror(errno));
  }
  __atomic_store_n(&skel_->bss->window.cgroup_id, uint64_t{0}, __ATOMIC_RELEASE);
  open_ = false;
  // Whatever the window produced, read now; from here on the records are this thread's.
  std::unique_lock<std::mutex> records_lock(ring_mutex_);
  ring_buffer__consume(ring_.get());

  std::vector<uint64_t> c = percpu_sums(skel_->maps.counters, CB_C_COUNT);
  std::vector<uint64_t> hist = percpu_sums(skel_->maps.copyup_hist, CB_HIST_BUCKETS);
  TraceCounts out;
  json& x = out.extra;
  int64_t copyups = static_cast<int64_t>(c[CB_C_COPYUPS]);
  int64_t bytes = static_cast<int64_t>(c[CB_C_COPYUP_BYTES]);
  out.lost_events = static_cast<int64_t>(c[CB_C_LOST]);

  // Copy-ups still pending: their task never reached a completion point (an io_uring worker
  // opening for write never returns from a syscall). Counted with their size now, found by
  // inode number in the upper dir.
  int64_t resolved = 0, unresolved = 0;
  json late_events = json::array();
  {
    int fd = bpf_map__fd(skel_->maps.tasks);
    uint32_t key = 0, next = 0;
    std::vector<std::pair<uint32_t, cb_pending>> left;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      cb_task t{};
      if (bpf_map_lookup_elem(fd, &key, &t) != 0) continue;
      for (uint32_t i = 0; i < t.n && i < CB_MAX_PENDING; ++i) left.emplace_back(key, t.p[i]);
    }
    if (!left.empty()) {
      std::map<uint64_t, FileAt> files;
      index_files(w.upper, "", files);
      for (const auto& [tid, p] : left) {
        auto it = files.find(p.ino);
        ++copyups;
        json e{{"type", w.kind == CB_KIND_FUSE ? "fuse-copyup" : "copyup"},
               {"t_ns", static_cast<int64_t>(p.created_ns - window_start_ns_)},
               {"tid", tid},
               {"dev", dev_text(p.dev)},
               {"ino", p.ino},
               {"syscall", syscall_name(p.syscall)},
               {"completed_at", "window end (no syscall exit: an io_uring worker?)"}};
        if (it != files.end()) {
          bytes += it->second.size;
          e["bytes"] = it->second.size;
          e["path"] = it->second.path;
          ++resolved;
        } else {
          e["bytes"] = 0;
          ++unresolved;
        }
        late_events.push_back(std::move(e));
      }
    }
  }

  // Per syscall.
  json by_syscall = json::object();
  {
    int fd = bpf_map__fd(skel_->maps.syscalls);
    int32_t key = 0, next = 0;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      cb_syscall_stat s{};
      if (bpf_map_lookup_elem(fd, &key, &s) == 0)
        by_syscall[syscall_name(key)] = {{"copyups", s.copyups}, {"bytes", s.bytes}};
    }
  }
  json latency_hist = json::object();
  for (size_t b = 0; b < hist.size(); ++b)
    if (hist[b]) latency_hist[fmt::format("{}", uint64_t{1} << b)] = hist[b];

  // FUSE requests: per opcode count, mean latency, errors, copy-ups, log2 histogram.
  json fuse = json::object();
  {
    int fd = bpf_map__fd(skel_->maps.fuse_ops);
    uint32_t key = 0, next = 0;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      cb_fuse_op op{};
      if (bpf_map_lookup_elem(fd, &key, &op) != 0) continue;
      fuse[fuse_opcode_name(key)] = {{"count", op.count},
                                     {"mean_ns", op.count ? op.total_ns / op.count : 0},
                                     {"errors", op.errors},
                                     {"copyups", op.copyups},
                                     {"latency_hist_log2_ns", json::object()}};
    }
    fd = bpf_map__fd(skel_->maps.fuse_hist);
    first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      uint64_t n = 0;
      if (bpf_map_lookup_elem(fd, &key, &n) != 0) continue;
      std::string op = fuse_opcode_name(key >> 8);
      if (fuse.contains(op)) fuse[op]["latency_hist_log2_ns"][fmt::format("{}", uint64_t{1} << (key & 0xff))] = n;
    }
  }
  int64_t cow_files = 0;
  {
    int fd = bpf_map__fd(skel_->maps.cow_files);
    cb_file_key key{}, next{};
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      ++cow_files;
    }
  }

  // The counts, by what this backend does.
  out.cow_extents = static_cast<int64_t>(c[CB_C_COW_EXTENTS]);
  out.cow_bytes = static_cast<int64_t>(c[CB_C_COW_BYTES]);
  switch (w.kind) {
    case CB_KIND_OVERLAY:
    case CB_KIND_FUSE:
      out.copyup_events = copyups;
      out.copyup_bytes = bytes;
      break;
    case CB_KIND_EXTENT:
      // No whole-file copies: a "copy-up" is a lower file that got extents of its own.
      out.copyup_events = cow_files;
      out.copyup_bytes = out.cow_bytes;
      break;
    default:
      out.copyup_events = out.copyup_bytes = 0;
      break;
  }
  if (!w.observable) {
    out.copyup_events = out.copyup_bytes = -1;
    if (w.kind == CB_KIND_EXTENT) out.cow_extents = out.cow_bytes = -1;
  }
  out.copyup_latencies_ns = std::move(latencies_);
  latencies_.clear();

  static const char* const kinds[] = {"none", "overlayfs", "fuse-overlayfs", "block-cow"};
  x["window"] = {{"kind", kinds[std::min<uint32_t>(w.kind, 3)]}, {"observable", w.observable}};
  if (!w.upper.empty()) {
    x["window"]["upper"] = w.upper;
    x["window"]["upper_fs"] = w.upper_fs;
    x["window"]["upper_dev"] = dev_text(w.upper_dev);
  }
  if (!w.observable) x["window"]["why_not"] = w.why_not;
  x["lost_events"] = out.lost_events;
  x["copyups_by_syscall"] = by_syscall;
  x["copyup_latency_hist_log2_ns"] = latency_hist;
  if (c[CB_C_FUSE_REQUESTS] || !fuse.empty()) x["fuse"] = {{"requests", c[CB_C_FUSE_REQUESTS]}, {"ops", fuse}};
  if (w.kind == CB_KIND_EXTENT) x["cow_files"] = cow_files;
  if (c[CB_C_PENDING_OVERFLOW]) x["copyups_without_size"] = c[CB_C_PENDING_OVERFLOW];
  if (resolved || unresolved) {
    x["copyups_completed_at_end"] = {{"sized", resolved}, {"gone", unresolved}};
    for (const auto& e : late_events) {
      json& s = x["copyups_by_syscall"][e.at("syscall").get<std::string>()];
      if (!s.is_object()) s = {{"copyups", 0}, {"bytes", 0}};
      s["copyups"] = s["copyups"].get<int64_t>() + 1;
      s["bytes"] = s["bytes"].get<int64_t>() + e.at("bytes").get<int64_t>();
    }
  }
  if (c[CB_C_TMPFILES_SKIPPED]) x["container_tmpfiles_ignored"] = c[CB_C_TMPFILES_SKIPPED];
  if (c[CB_C_PROBE_WINDOWS]) x["probe_windows"] = c[CB_C_PROBE_WINDOWS];
  if (options_.record_syscalls)
    x["syscall_records"] = {{"emitted", c[CB_C_SYSCALL_RECORDS]}, {"read", syscall_records_}};
  json events = json::array();
  for (const auto& e : kept_) events.push_back(event_json(e));
  for (auto& e : late_events) events.push_back(std::move(e));
  x["events"] = std::move(events);
  if (not_kept_) x["events_not_kept"] = not_kept_;
  if (out.lost_events && !out.copyup_latencies_ns.empty())
    x["latencies_partial"] = "some records were lost: latency quantiles cover the records read; counts and "
                             "copyup_latency_hist_log2_ns cover everything";
  kept_.clear();
  return out;
}

std::unique_ptr<BpfTracer> open_mode(Mode m, const TracerOptions& options, const TracepointIndex& index) {
  auto t = std::make_unique<BpfTracer>(m, options);
  t->load(index);
  return t;
}

}  // namespace

const std::vector<std::string>& trace_modes() {
  static const std::vector<std::string> modes{"fentry", "kprobe", "tracepoint"};
  return modes;
}

std::unique_ptr<TraceSession> open_tracer(const std::string& mode, const TracerOptions& options, std::string* why_none) {
  std::vector<Mode> tries;
  if (mode == "auto")
    tries = {Mode::kFentry, Mode::kKprobe, Mode::kTracepoint};
  else if (mode == "fentry")
    tries = {Mode::kFentry};
  else if (mode == "kprobe")
    tries = {Mode::kKprobe};
  else if (mode == "tracepoint")
    tries = {Mode::kTracepoint};
  else
    fail(Errc::kUsage, "--trace takes auto, fentry, kprobe, tracepoint or off, not '{}'", mode);
  if (options.ringbuf_bytes < 4096 || (options.ringbuf_bytes & (options.ringbuf_bytes - 1)))
    fail(Errc::kInvalidInput, "ring buffer size {} is not a power of two of at least 4096", options.ringbuf_bytes);

  TracepointIndex index;
  json why_not = json::object();
  for (Mode m : tries) {
    try {
      auto t = open_mode(m, options, index);
      t->set_why_not(why_not);
      return t;
    } catch (const Error& e) {
      if (mode != "auto") throw Error(Errc::kUsage, fmt::format("--trace {}: {}", mode, e.what()));
      why_not[mode_name(m)] = e.what();
      log::debug("tracer: {} mode unavailable: {}", mode_name(m), e.what());
    }
  }
  std::string why;
  for (const auto& [m, reason] : why_not.items()) why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", m, reason.get<std::string>());
  if (why_none) *why_none = why;
  return nullptr;
}

}  // namespace cowbench::ebpf
