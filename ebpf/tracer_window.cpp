// The tracer's window: what a target is for the programs (upper dir, dev, O_TMPFILE check, inherited files), and begin()/end() around a container.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/log.h"
#include "common/mount.h"
#include "ebpf/kernel_names.h"
#include "ebpf/tracer_internal.h"
#include "snapshotters/fiemap.h"

namespace cowbench::ebpf {
namespace {

// The super block dev of the file system holding `path` (kernel encoding), from
// /proc/self/mountinfo: not stat(2), as btrfs reports a per-subvolume st_dev.
uint32_t super_dev(const std::string& path) {
  MountEntry m = mount_of(path);
  if (m.mount_point.empty()) fail(Errc::kNotFound, "no mount holds {} in /proc/self/mountinfo", path);
  return kernel_dev(m.dev_major, m.dev_minor);
}

// What load_inherited() found.
struct InheritedLoad {
  uint32_t dev = 0;
  int map_fd = -1;
  dev_t tree_dev = 0;  // st_dev of the tree's root: other values are other mounts or subvolumes
  int64_t files = 0, with_holes = 0, more_holes = 0, not_loaded = 0, no_generation = 0;
  std::set<ino_t> linked;  // inodes with several names, loaded once
};

// The holes of an open file below its size rounded up to `block` (FIEMAP: the gaps between its
// extents), at most CB_MAX_HOLES into v; true when there were more.
bool find_holes(int fd, const std::string& what, uint64_t block, cb_inherited& v) {
  std::vector<snap::Extent> extents;
  if (!snap::file_extents(fd, what, extents, false)) return false;
  uint64_t end = (v.size + block - 1) / block * block, pos = 0;
  bool more = false;
  auto hole = [&](uint64_t from, uint64_t to) {
    if (from >= to) return;
    if (v.holes == CB_MAX_HOLES) {
      more = true;
      return;
    }
    v.hole_start[v.holes] = from;
    v.hole_end[v.holes] = to;
    ++v.holes;
  };
  for (const snap::Extent& e : extents) {
    if (e.logical >= end) break;
    hole(pos, e.logical);
    pos = std::max(pos, e.logical + e.length);
  }
  hole(pos, end);
  return more;
}

void load_dir(int dirfd, const std::string& rel, InheritedLoad& l, int depth) {
  if (depth > 256) return;
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  std::unique_ptr<DIR, int (*)(DIR*)> d(dup >= 0 ? fdopendir(dup) : nullptr, closedir);
  if (!d) {
    if (dup >= 0) close(dup);
    return;
  }
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != l.tree_dev) continue;
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) load_dir(sub.get(), rel + "/" + n, l, depth + 1);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;
    if (st.st_nlink > 1 && !l.linked.insert(st.st_ino).second) continue;
    if (l.files >= static_cast<int64_t>(CB_MAX_INHERITED)) {
      ++l.not_loaded;
      continue;
    }
    cb_inherited v{};
    v.size = static_cast<uint64_t>(st.st_size);
    // The generation tells a new inode that reuses this number (XFS reuses them) from this one.
    Fd f(openat(dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    int generation = 0;
    if (f && ioctl(f.get(), FS_IOC_GETVERSION, &generation) == 0) {
      v.generation = static_cast<uint32_t>(generation);
      v.flags |= CB_INH_GENERATION;
    } else {
      ++l.no_generation;
    }
    // Holes only where the allocated blocks cannot cover the size (a dense file needs at least
    // its size rounded up to 512 bytes): FIEMAP for those few files alone.
    uint64_t dense = (v.size + 511) / 512 * 512;
    if (f && static_cast<uint64_t>(st.st_blocks) * 512 < dense) {
      try {
        uint64_t block = st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
        if (find_holes(f.get(), rel + "/" + n, block, v)) ++l.more_holes;
        if (v.holes) ++l.with_holes;
      } catch (const Error& err) {
        log::debug("tracer: holes of {}: {}", rel + "/" + n, err.what());
      }
    }
    cb_file_key k{};
    k.ino = st.st_ino;
    k.dev = l.dev;
    if (bpf_map_update_elem(l.map_fd, &k, &v, BPF_ANY) != 0) {
      ++l.not_loaded;
      continue;
    }
    ++l.files;
  }
}

}  // namespace

nlohmann::json load_inherited(const std::string& upper, uint32_t dev, int map_fd) {
  auto t0 = std::chrono::steady_clock::now();
  InheritedLoad l;
  l.dev = dev;
  l.map_fd = map_fd;
  Fd root = open_dir(upper);
  struct stat st {};
  if (fstat(root.get(), &st) != 0) fail_sys("stat {}", upper);
  l.tree_dev = st.st_dev;
  load_dir(root.get(), "", l, 0);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j{{"files", l.files}, {"files_with_holes", l.with_holes}, {"load_ms", static_cast<int64_t>(ms)}};
  if (l.not_loaded) j["files_not_loaded"] = l.not_loaded;  // beyond CB_MAX_INHERITED: their CoW counts whole
  if (l.more_holes) j["files_with_more_holes"] = l.more_holes;  // holes beyond CB_MAX_HOLES count as data
  if (l.no_generation) j["files_without_generation"] = l.no_generation;
  return j;
}

WatchedWindow describe_window(const TraceTarget& t, const std::function<bool(const char*)>& attached) {
  WatchedWindow w;
  w.syscalls_counted = attached("cb_sys_enter");  // whatever the backend: every window counts them
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
    w.metacopy = layered->type == "overlay" && option(*layered, "metacopy") == "on";
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
  if (statfs(w.upper.c_str(), &sf) == 0) {
    w.upper_fs = fs_magic_name(static_cast<long>(sf.f_type));
    if (sf.f_bsize > 0) w.block_bytes = static_cast<uint64_t>(sf.f_bsize);
  }

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
      // Where this daemon creates the files it copies up (its workdir, its writable branch).
      auto site = fuse_copyup_site(*layered);
      if (!site) fail(Errc::kInvalidInput, "tracing {}: no FUSE daemon copies up on '{}'", t.backend, to_string(*layered));
      if (site->skip_top.size() >= CB_SKIP_TOP_LEN)
        fail(Errc::kInvalidInput, "tracing {}: '{}' is too long a name to skip", t.backend, site->skip_top);
      if (stat(site->dir.c_str(), &st) != 0) fail_sys("stat {}", site->dir);
      w.fuse_daemon = layered->source;
      w.fuse_create_dir = st.st_ino;
      w.fuse_create_depth = static_cast<uint32_t>(site->depth);
      w.fuse_skip_top = site->skip_top;
      w.fuse_new_files_there = site->new_files_there;
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
      } else if (w.upper_fs == "xfs" && !attached("cb_xfs_ioend")) {
        // XFS writes new blocks through the data fork: no remap shows them.
        w.new_data_observable = false;
        w.new_data_why_not = "cb_xfs_ioend (iomap_add_to_ioend) is not attached (see programs)";
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
  WatchedWindow w = describe_window(target, [this](const char* p) { return attached(p); });
  reset_maps();
  // Block CoW: the writable tree is the parent's clone until the container starts; its files'
  // sizes and holes tell CoW of inherited data from new data.
  if (w.kind == CB_KIND_EXTENT && w.observable) w.inherited = load_inherited(w.upper, w.upper_dev, bpf_map__fd(skel_->maps.inherited));
  {
    // Records of an earlier window (or of nothing) are dropped.
    std::lock_guard<std::mutex> lock(ring_mutex_);
    ring_buffer__consume(ring_.get());
    records_.clear();
  }

  cb_window& bw = skel_->bss->window;
  bw.kind = w.kind;
  bw.upper_dev = w.upper_dev;
  bw.upper_ino = w.upper_ino;
  bw.fuse_create_dir = w.fuse_create_dir;
  bw.fuse_create_depth = w.fuse_create_depth;
  std::memset(bw.fuse_skip_top, 0, sizeof bw.fuse_skip_top);
  std::memcpy(bw.fuse_skip_top, w.fuse_skip_top.data(), std::min(w.fuse_skip_top.size(), sizeof bw.fuse_skip_top - 1));
  bw.fuse_tgid = target.fuse_daemon_pid > 0 ? static_cast<uint32_t>(target.fuse_daemon_pid) : 0;
  bw.ignore_tid = reader_tid_.load();
  bw.flags = (options_.record_syscalls ? CB_FLAG_ALL_SYSCALLS : 0) | (w.metacopy ? CB_FLAG_METACOPY : 0) |
             (w.fuse_new_files_there ? CB_FLAG_FUSE_NEW_FILES : 0);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  w.start_ns = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
  // The cgroup id opens the window: written last, after everything it guards.
  __atomic_store_n(&bw.cgroup_id, target.cgroup_id, __ATOMIC_RELEASE);
  window_ = w;
  open_ = true;
}

TraceCounts BpfTracer::end() {
  if (!open_) fail(Errc::kFailedPrecondition, "tracer: end() without begin()");
  const WatchedWindow& w = window_;
  // Block CoW happens at writeback: make it happen now, inside the window.
  if (w.kind == CB_KIND_EXTENT) {
    Fd fd(open(w.upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || syncfs(fd.get()) != 0) log::warn("tracer: syncfs {}: {}", w.upper, std::strerror(errno));
  }
  __atomic_store_n(&skel_->bss->window.cgroup_id, uint64_t{0}, __ATOMIC_RELEASE);
  open_ = false;
  // Whatever the window produced, read now; from here on the records are this thread's.
  std::lock_guard<std::mutex> records_lock(ring_mutex_);
  ring_buffer__consume(ring_.get());
  return account_window(w, maps(), records_, options_.record_syscalls);
}

WindowMaps BpfTracer::maps() const {
  const auto& m = skel_->maps;
  WindowMaps out;
  out.counters = bpf_map__fd(m.counters);
  out.copyup_hist = bpf_map__fd(m.copyup_hist);
  out.tasks = bpf_map__fd(m.tasks);
  out.syscalls = bpf_map__fd(m.syscalls);
  out.fuse_ops = bpf_map__fd(m.fuse_ops);
  out.fuse_hist = bpf_map__fd(m.fuse_hist);
  out.cow_files = bpf_map__fd(m.cow_files);
  out.inherited = bpf_map__fd(m.inherited);
  out.cow_blocks = bpf_map__fd(m.cow_blocks);
  out.syscall_counts = bpf_map__fd(m.syscall_counts);
  return out;
}

// Empties every map a window fills.
void BpfTracer::reset_maps() {
  for (bpf_map* m : {skel_->maps.tasks, skel_->maps.reqs, skel_->maps.conns, skel_->maps.fuse_ops, skel_->maps.fuse_hist,
                     skel_->maps.dirtied, skel_->maps.created, skel_->maps.cow_files, skel_->maps.syscalls,
                     skel_->maps.metacopied, skel_->maps.inherited, skel_->maps.cow_blocks})
    clear_map(bpf_map__fd(m), bpf_map__key_size(m));
  zero_percpu(bpf_map__fd(skel_->maps.counters), CB_C_COUNT);
  zero_percpu(bpf_map__fd(skel_->maps.copyup_hist), CB_HIST_BUCKETS);
  zero_percpu(bpf_map__fd(skel_->maps.syscall_counts), CB_SYSCALL_SLOTS);
}

}  // namespace cowbench::ebpf
