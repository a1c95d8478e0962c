// The tracer's loader: open → configure rodata → set autoload → load → attach → ring buffer, and the ring buffer reader.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>

#include "common/error.h"
#include "common/log.h"
#include "ebpf/probe.h"
#include "ebpf/tracer_internal.h"

namespace cowbench::ebpf {
namespace {

using nlohmann::json;

constexpr uint32_t kFmodeCreated = 1u << 20;  // FMODE_CREATED since Linux 4.19

// The tracepoint programs, one row each: what they attach to and what they are for.
struct TpRow {
  const char* program;
  const char* tracepoint;
  const char* role;
  bool core = false;  // the tracer fails without it; the others may be left out
};
constexpr TpRow kTracepointPrograms[] = {
    {"cb_mark_inode_dirty", "writeback_mark_inode_dirty", "overlayfs copy-ups (the upper O_TMPFILE) and dirtied files", true},
    {"cb_sys_exit", "sys_exit", "the end of a copy-up's syscall; the FUSE daemon's creates", true},
    {"cb_fuse_send", "fuse_request_send", "FUSE requests"},
    {"cb_fuse_end", "fuse_request_end", "FUSE request latency and FUSE daemon copy-ups"},
    {"cb_xfs_cow_remap", "xfs_reflink_cow_remap_from", "XFS reflink CoW extents"},
    {"cb_btrfs_ordered", "btrfs_ordered_extent_add", "btrfs CoW extents"},
    {"cb_xfs_ioend", "iomap_add_to_ioend", "XFS new data of inherited files (writeback into the data fork)"},
    {"cb_btrfs_inode_new", "btrfs_inode_new", "btrfs files the container creates (not CoW)"},
    {"cb_sys_enter", "sys_enter", "the container's system calls, counted by number"},
    {"cb_xfs_clone", "xfs_reflink_remap_range", "copy-ups by clone on XFS (overlayfs on XFS reflink=1)"},
    {"cb_btrfs_clone", "add_delayed_data_ref", "copy-ups by clone on btrfs (data extent references of the new upper inode)"},
};

}  // namespace

void BpfTracer::load(const TracepointIndex& index) {
  if (auto why = privilege_problem()) fail(Errc::kUnsupported, "{}", *why);

  // fentry / kprobe: find the overlayfs copy-up function and check the program type works.
  const auto& candidates = overlay_copy_up_functions();
  if (mode_ == ProbeMode::kFentry) {
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
  } else if (mode_ == ProbeMode::kKprobe) {
    auto f = first_in_kallsyms(candidates);
    if (!f) fail(Errc::kUnsupported, "none of {} is in /proc/kallsyms", fmt::join(candidates, ", "));
    copy_up_function_ = *f;
    ProbeResult p = probe_kprobe(copy_up_function_);
    if (!p.ok) fail(Errc::kUnsupported, "{}", p.detail);
  }

  // open → configure → load → attach → ring buffer, one step at a time. A tracepoint program
  // the verifier refuses (a kernel whose verifier counts differently from the one it was
  // written against) is left out, said so, and the object loaded again without it: the others
  // still trace. The core programs, and the probe mode's, must load.
  json programs = json::object();
  std::set<std::string> refused;
  for (;;) {
    std::string libbpf_said;
    LibbpfLog capture(&libbpf_said);
    open_configured(index, programs, refused);
    int err = copyup__load(skel_.get());
    if (err == 0) break;
    err = -err;
    LoadFailure why = load_failure(libbpf_said);
    const TpRow* row = nullptr;
    for (const TpRow& r : kTracepointPrograms)
      if (why.program == r.program) row = &r;
    bool verifier = err == EACCES || (err == EINVAL && !why.reason.empty());
    if (verifier && row && !row->core && !refused.count(why.program)) {
      refused.insert(why.program);
      std::string status = fmt::format("refused by the verifier: {}", why.reason.empty() ? errno_text(err) : why.reason);
      programs[why.program]["status"] = status;
      log::warn("tracer: {} ({}) left out, {}; the other programs trace", why.program, row->role, status);
      continue;
    }
    std::string cause = err == EPERM ? eperm_cause(fmt::format("{} programs", probe_mode_name(mode_))) : errno_text(err);
    if (!why.program.empty())
      cause += fmt::format(" ({}{}{})", why.program, why.reason.empty() ? "" : ": ", why.reason);
    fail(Errc::kUnsupported, "loading the BPF programs failed: {} (libbpf: {})", cause, tail_lines(libbpf_said, 3));
  }
  bool fentry = mode_ == ProbeMode::kFentry, kprobe = mode_ == ProbeMode::kKprobe;

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
      std::string err = fentry ? attach_one(p, [p = p] { return bpf_program__attach(p); })
                               : attach_one(p, [&, p = p, ret = ret] {
                                   return bpf_program__attach_kprobe(p, ret, copy_up_function_.c_str());
                                 });
      if (!err.empty())
        fail(Errc::kUnsupported, "attaching {} to {} failed: {}", bpf_program__name(p), copy_up_function_, err);
      programs[bpf_program__name(p)] = {{"function", copy_up_function_}, {"status", "attached"}};
    }
  }
  for (const TpRow& row : kTracepointPrograms)
    if (row.core && !attached(row.program))
      fail(Errc::kUnsupported, "the core tracepoints did not attach: {}", programs.dump());

  ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), on_record, this, nullptr));
  if (!ring_) fail(Errc::kUnsupported, "ring buffer: {}", errno_text(errno));
  records_.kept.reserve(options_.max_kept_events);
  start_reader();

  details_["mode"] = probe_mode_name(mode_);
  details_["programs"] = programs;
  details_["ringbuf_bytes"] = options_.ringbuf_bytes;
  if (!copy_up_function_.empty()) details_["copy_up_function"] = copy_up_function_;
  details_["method"] = {
      {"overlayfs", "a copy-up is the O_TMPFILE overlayfs makes on the upper file system (a regular inode whose link "
                    "count d_tmpfile() drops to 0 before it has a name, writeback_mark_inode_dirty) in a container task; "
                    "its bytes are that inode's size when the task's syscall ends (sys_exit)"},
      {"fuse-overlayfs", "a copy-up is a file the daemon creates in <workdir>/work (sys_exit of its open call), "
                         "completed when it answers the FUSE request it serves (fuse_request_end)"},
      {"unionfs-fuse", "a copy-up is a file the daemon creates in its writable branch, outside <branch>/.unionfs-fuse "
                       "(its whiteouts), at the file's own path (sys_exit of its open call), completed when it "
                       "answers the FUSE request it serves (fuse_request_end); files it creates for FUSE_CREATE "
                       "and FUSE_MKNOD are the container's new files, not copy-ups"},
      {"block CoW", "XFS: CoW fork extents remapped into the file (xfs_reflink_cow_remap_from); btrfs: ordered "
                    "extents that are not NOCOW/PREALLOC (btrfs_ordered_extent_add); for files the container "
                    "dirtied and did not create, after syncfs at the end of the window. Each block of a file "
                    "inherited from the parent counts once: as CoW when it held inherited data (below the size "
                    "the file had when the window opened, rounded up to a block, not in a hole), as new data "
                    "beyond it or in a hole; XFS new blocks that bypass the CoW fork come from "
                    "iomap_add_to_ioend"}};
}

// Opens the skeleton anew and configures it: its constants, the ring buffer's size, which
// programs load (tracepoints this kernel lacks and programs in `refused` do not; the probe
// programs only in their mode). Records each tracepoint program's state in `programs`.
void BpfTracer::open_configured(const TracepointIndex& index, json& programs, const std::set<std::string>& refused) {
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
  ro->o_trunc = O_TRUNC;
  ro->nr_truncate = SYS_truncate;
  ro->nr_ftruncate = SYS_ftruncate;
  ro->fmode_created = kFmodeCreated;
  ro->wake_bytes = std::max<size_t>(options_.ringbuf_bytes / 8, 4096);
  if (int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<uint32_t>(options_.ringbuf_bytes)))
    fail(Errc::kInvalidInput, "ring buffer size {}: {}", options_.ringbuf_bytes, errno_text(-err));

  for (const TpRow& row : kTracepointPrograms) {
    bpf_program* p = bpf_object__find_program_by_name(skel_->obj, row.program);
    std::string missing = index.missing(row.tracepoint);
    if (refused.count(row.program)) {
      bpf_program__set_autoload(p, false);  // its status says why
    } else if (!missing.empty()) {
      bpf_program__set_autoload(p, false);
      programs[row.program] = {{"tracepoint", row.tracepoint}, {"for", row.role}, {"status", missing}};
    } else {
      programs[row.program] = {{"tracepoint", row.tracepoint}, {"for", row.role}, {"status", "loading"}};
    }
  }
  bool fentry = mode_ == ProbeMode::kFentry, kprobe = mode_ == ProbeMode::kKprobe;
  bpf_program__set_autoload(skel_->progs.cb_copy_up_entry, fentry);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_exit, fentry);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_kprobe, kprobe);
  bpf_program__set_autoload(skel_->progs.cb_copy_up_kretprobe, kprobe);
  if (fentry) {
    for (bpf_program* p : {skel_->progs.cb_copy_up_entry, skel_->progs.cb_copy_up_exit})
      if (int err = bpf_program__set_attach_target(p, 0, copy_up_function_.c_str()))
        fail(Errc::kUnsupported, "fentry target {}: {}", copy_up_function_, errno_text(-err));
  }
}

int BpfTracer::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfTracer*>(ctx);
  if (size < sizeof(cb_event)) return 0;
  const auto* e = static_cast<const cb_event*>(data);
  if (e->type == CB_EV_SYSCALL) {
    ++self->records_.syscall_records;
    return 0;
  }
  WindowRecords& r = self->records_;
  ++r.records;
  if (e->type == CB_EV_COPYUP || e->type == CB_EV_FUSE_COPYUP) r.latencies.push_back(static_cast<int64_t>(e->latency_ns));
  if (r.kept.size() < self->options_.max_kept_events)
    r.kept.push_back(*e);
  else
    ++r.not_kept;
  return 0;
}

// One reader thread for the tracer's whole life, started at load: no thread is created
// around the forks that start containers (a thread starting up while another forks can leave
// the child with a runtime lock held, e.g. under AddressSanitizer). It waits on the ring
// buffer's epoll fd and drains it under ring_mutex_, which begin()/end() take as well.
void BpfTracer::start_reader() {
  reading_ = true;
  reader_ = std::thread([this] {
    reader_tid_ = static_cast<uint32_t>(::gettid());
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

}  // namespace cowbench::ebpf
