// Internal to the tracer's files: the BpfTracer session, the window it watches and the records a window collects.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ebpf/bpf_util.h"
#include "ebpf/trace_events.h"
#include "ebpf/trace_modes.h"
#include "ebpf/tracepoint_index.h"
#include "ebpf/tracer.h"
// The skeleton (generated in the build tree by bpftool) needs struct cb_window from above.
#include "ebpf/copyup.skel.h"

namespace cowbench::ebpf {

// The probe modes, in the order of kProbeModes (ebpf/trace_modes.h), which names them.
enum class ProbeMode { kFentry, kKprobe, kTracepoint };
static_assert(kProbeModes.size() == 3 && kProbeModes[0] == "fentry" && kProbeModes[1] == "kprobe" &&
              kProbeModes[2] == "tracepoint");
inline std::string probe_mode_name(ProbeMode m) { return std::string(kProbeModes[static_cast<size_t>(m)]); }

struct SkelDeleter {
  void operator()(copyup* s) const noexcept { copyup__destroy(s); }
};
using SkelPtr = std::unique_ptr<copyup, SkelDeleter>;

// What one window watches (tracer_window.cpp: describe_window).
struct WatchedWindow {
  uint32_t kind = CB_KIND_NONE;
  std::string upper;    // upper dir / writable dir
  std::string workdir;  // overlay / fuse workdir
  uint32_t upper_dev = 0;
  uint64_t upper_ino = 0;
  // FUSE: where the daemon creates its copies (common/fuse_mount.h FuseCopyupSite), by inode.
  std::string fuse_daemon;  // the daemon's program ("fuse-overlayfs", "unionfs-fuse"): the window's kind name
  uint64_t fuse_create_dir = 0;
  uint32_t fuse_create_depth = 0;
  std::string fuse_skip_top;
  bool fuse_new_files_there = false;
  std::string upper_fs;
  bool metacopy = false;  // overlay mounted with metacopy=on: copy-ups may copy metadata only
  bool observable = true;
  std::string why_not;    // when !observable
  uint64_t start_ns = 0;  // CLOCK_MONOTONIC at begin(): events' t_ns are relative to it
  // Block CoW: whether new data (not CoW) is seen on this file system (XFS needs
  // iomap_add_to_ioend), and how the inherited files were loaded (load_inherited()).
  bool new_data_observable = true;
  std::string new_data_why_not;
  bool syscalls_counted = true;  // cb_sys_enter attached: the window counts the container's system calls
  uint64_t block_bytes = 4096;  // the upper file system's block (statfs f_bsize): cow_blocks' unit
  nlohmann::json inherited = nlohmann::json::object();
};

// Describes what `target` is for the programs: its kind, upper directory (dev and inode), and
// whether its copy-ups can be seen here (O_TMPFILE on the upper file system, the needed
// programs attached: attached(program name)). Throws when the target's mounts cannot be read.
WatchedWindow describe_window(const TraceTarget& target, const std::function<bool(const char*)>& attached);

// Block CoW windows: puts every regular file below `upper` (not crossing into other mounts or
// btrfs subvolumes) into the `inherited` map at `map_fd` — key (inode number, `dev`), value its
// size, its holes (FIEMAP, for files whose allocated blocks do not cover their size) and, where
// the file system reports it, its generation — at most CB_MAX_INHERITED files. Returns what it
// loaded, for the window's description: files, files with holes, files beyond the bound, time.
nlohmann::json load_inherited(const std::string& upper, uint32_t dev, int map_fd);

// The ring buffer records of one window, filled by the reader thread.
struct WindowRecords {
  std::vector<cb_event> kept;      // the first max_kept_events records
  int64_t not_kept = 0;            // records beyond those
  std::vector<int64_t> latencies;  // of every copy-up record
  int64_t records = 0;             // copy-up and CoW records read
  int64_t syscall_records = 0;     // CB_EV_SYSCALL records read

  void clear() {
    kept.clear();
    latencies.clear();
    not_kept = records = syscall_records = 0;
  }
};

// The maps a window fills, by fd.
struct WindowMaps {
  int counters = -1, copyup_hist = -1;                               // per-CPU arrays
  int tasks = -1, syscalls = -1, fuse_ops = -1, fuse_hist = -1, cow_files = -1;  // hashes
  int inherited = -1, cow_blocks = -1;                                           // block CoW hashes
  int syscall_counts = -1;                                                       // per-CPU array by syscall nr
};

// Turns a closed window's maps and records into its TraceCounts (tracer_accounting.cpp):
// counts by backend kind, copy-ups still pending at the end, per syscall and FUSE opcode,
// the events JSON. Takes the records' latencies and leaves `records` empty.
TraceCounts account_window(const WatchedWindow& w, const WindowMaps& maps, WindowRecords& records, bool record_syscalls);

// The TraceSession of the BPF programs in copyup.bpf.c.
class BpfTracer final : public TraceSession {
 public:
  BpfTracer(ProbeMode mode, const TracerOptions& options) : mode_(mode), options_(options) {}
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;
  ~BpfTracer() override { stop_reader(); }

  // Opens, configures, loads and attaches, then starts the ring buffer reader
  // (tracer_loader.cpp); throws Error(kUnsupported, why) when this mode cannot work.
  void load(const TracepointIndex& index);

  std::string mode() const override { return probe_mode_name(mode_); }
  void begin(const TraceTarget& target) override;  // tracer_window.cpp
  TraceCounts end() override;                      // tracer_window.cpp
  nlohmann::json details() const override { return details_; }

  void set_why_not(const nlohmann::json& why) {
    if (!why.empty()) details_["why_not"] = why;
  }

 private:
  // Opens the skeleton anew and configures what loads (tracer_loader.cpp).
  void open_configured(const TracepointIndex& index, nlohmann::json& programs, const std::set<std::string>& refused);
  void reset_maps();
  WindowMaps maps() const;
  void start_reader();
  void stop_reader() noexcept;
  static int on_record(void* ctx, void* data, size_t size);
  bool attached(const char* program) const { return attached_.count(program) > 0; }

  ProbeMode mode_;
  TracerOptions options_;
  std::string copy_up_function_;  // fentry / kprobe target
  // Destroyed in reverse order: the ring buffer, then the links, then the skeleton.
  SkelPtr skel_;
  std::vector<LinkPtr> links_;
  RingPtr ring_;
  std::set<std::string> attached_;
  nlohmann::json details_ = nlohmann::json::object();

  // The open window.
  bool open_ = false;
  WatchedWindow window_;
  std::thread reader_;
  std::atomic<bool> reading_{false};
  std::atomic<uint32_t> reader_tid_{0};  // the reader thread: its own syscalls are not the container's
  std::mutex ring_mutex_;  // ring_buffer__consume and the records on_record fills
  WindowRecords records_;
};

}  // namespace cowbench::ebpf
