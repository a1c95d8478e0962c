// The tracer's window accounting: a closed window's counters, maps and ring records turned into TraceCounts.
#include <bpf/bpf.h>
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "ebpf/kernel_names.h"
#include "ebpf/tracer_internal.h"

namespace cowbench::ebpf {
namespace {

using nlohmann::json;

// What a copy-up copied, in results.json's words.
const char* copyup_kind_name(uint32_t kind) {
  switch (kind) {
    case CB_CU_METADATA: return "metadata";
    case CB_CU_META_DATA: return "data of a metacopy file";
    case CB_CU_CLONED: return "cloned";
    case CB_CU_META_CLONED: return "data of a metacopy file, cloned";
    default: return "data";
  }
}

// One ring buffer record as an entry of TraceCounts.extra["events"].
json event_json(const cb_event& e, uint64_t start_ns) {
  std::string path;
  int depth = 0;
  while (depth < CB_NAME_DEPTH && e.names[depth][0]) ++depth;
  for (int i = depth - 1; i >= 0; --i)
    path += "/" + std::string(e.names[i], strnlen(e.names[i], CB_NAME_LEN));
  if (depth == CB_NAME_DEPTH) path = "..." + path;
  const char* type = e.type == CB_EV_COPYUP        ? "copyup"
                     : e.type == CB_EV_FUSE_COPYUP ? "fuse-copyup"
                     : e.type == CB_EV_NEW_DATA    ? "new-data"
                                                   : "cow";
  json j{{"type", type},
         {"t_ns", static_cast<int64_t>(e.ts_ns - start_ns)},
         {"pid", e.pid},
         {"tid", e.tid},
         {"comm", std::string(e.comm, strnlen(e.comm, sizeof e.comm))},
         {"dev", kernel_dev_text(e.dev)},
         {"ino", e.ino},
         {"bytes", e.bytes}};
  if (!path.empty()) j["path"] = path;
  if (e.type == CB_EV_COW || e.type == CB_EV_NEW_DATA) {
    j["offset"] = e.offset;
    j["extents"] = e.extents;
    return j;
  }
  j["syscall"] = syscall_name(e.syscall);
  j["kind"] = copyup_kind_name(e.copyup_kind);
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
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir((root + rel).c_str()), closedir);
  if (!d) return;
  while (dirent* e = readdir(d.get())) {
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
}

// Copy-ups still pending in the tasks map: their task never reached a completion point (an
// io_uring worker opening for write never returns from a syscall). Sized now, found by inode
// number in the upper dir.
struct LateCopyUps {
  json events = json::array();
  int64_t bytes = 0;
  int64_t resolved = 0, unresolved = 0;
  int64_t metadata = 0;   // of them, metadata-only (the upper file has trusted.overlay.metacopy)
  int64_t meta_data = 0;  // data copy-ups of files copied up metadata-only before (not new files)
  int64_t cloned = 0, cloned_bytes = 0;  // of them, those whose data was cloned (CB_PF_CLONED), and their bytes
};
LateCopyUps late_copyups(const WatchedWindow& w, int tasks_fd) {
  std::vector<std::pair<uint32_t, cb_pending>> left;
  for_each_key<uint32_t>(tasks_fd, [&](uint32_t tid) {
    cb_task t{};
    if (bpf_map_lookup_elem(tasks_fd, &tid, &t) != 0) return;
    for (uint32_t i = 0; i < t.n && i < CB_MAX_PENDING; ++i) left.emplace_back(tid, t.p[i]);
  });
  LateCopyUps out;
  if (left.empty()) return out;
  std::map<uint64_t, FileAt> files;
  index_files(w.upper, "", files);
  for (const auto& [tid, p] : left) {
    auto it = files.find(p.ino);
    json e{{"type", w.kind == CB_KIND_FUSE ? "fuse-copyup" : "copyup"},
           {"t_ns", static_cast<int64_t>(p.created_ns - w.start_ns)},
           {"tid", tid},
           {"dev", kernel_dev_text(p.dev)},
           {"ino", p.ino},
           {"syscall", syscall_name(p.syscall)},
           {"completed_at", "window end (no syscall exit: an io_uring worker?)"}};
    if (it != files.end()) {
      // Metadata only: the upper file still carries overlayfs's metacopy mark.
      bool metadata = p.kind != CB_CU_META_DATA && w.metacopy &&
                      getxattr((w.upper + it->second.path).c_str(), "trusted.overlay.metacopy", nullptr, 0) >= 0;
      int64_t size = metadata ? 0 : it->second.size;
      bool cloned = !metadata && (p.flags & CB_PF_CLONED);
      uint32_t kind = metadata ? static_cast<uint32_t>(CB_CU_METADATA) : p.kind;
      if (cloned) kind = p.kind == CB_CU_META_DATA ? CB_CU_META_CLONED : CB_CU_CLONED;
      out.bytes += size;
      if (cloned) {
        ++out.cloned;
        out.cloned_bytes += size;
      }
      e["bytes"] = size;
      e["path"] = it->second.path;
      e["kind"] = copyup_kind_name(kind);
      out.metadata += metadata;
      out.meta_data += p.kind == CB_CU_META_DATA;
      ++out.resolved;
    } else {
      e["bytes"] = 0;
      ++out.unresolved;
    }
    out.events.push_back(std::move(e));
  }
  return out;
}

// Copy-ups and bytes per syscall name.
json by_syscall(int syscalls_fd) {
  json out = json::object();
  for_each_key<int32_t>(syscalls_fd, [&](int32_t nr) {
    cb_syscall_stat s{};
    if (bpf_map_lookup_elem(syscalls_fd, &nr, &s) != 0) return;
    out[syscall_name(nr)] = {{"copyups", s.copyups}, {"bytes", s.bytes}};
  });
  return out;
}

// The container's system calls by name, from the per-CPU counts indexed by number.
std::map<std::string, int64_t> syscall_counts(int counts_fd) {
  std::vector<uint64_t> by_nr = percpu_sums(counts_fd, CB_SYSCALL_SLOTS);
  std::map<std::string, int64_t> out;
  for (size_t nr = 0; nr < by_nr.size(); ++nr)
    if (by_nr[nr]) out[syscall_name(static_cast<long>(nr))] += static_cast<int64_t>(by_nr[nr]);
  return out;
}

// FUSE requests per opcode name: count, mean latency, errors, copy-ups, log2 histogram.
json fuse_ops(int ops_fd, int hist_fd) {
  json out = json::object();
  for_each_key<uint32_t>(ops_fd, [&](uint32_t opcode) {
    cb_fuse_op op{};
    if (bpf_map_lookup_elem(ops_fd, &opcode, &op) != 0) return;
    out[fuse_opcode_name(opcode)] = {{"count", op.count},
                                     {"mean_ns", op.count ? op.total_ns / op.count : 0},
                                     {"errors", op.errors},
                                     {"copyups", op.copyups},
                                     {"latency_hist_log2_ns", json::object()}};
  });
  // Histogram keys: opcode << 8 | log2 bucket.
  for_each_key<uint32_t>(hist_fd, [&](uint32_t key) {
    uint64_t n = 0;
    if (bpf_map_lookup_elem(hist_fd, &key, &n) != 0) return;
    std::string op = fuse_opcode_name(key >> 8);
    if (out.contains(op)) out[op]["latency_hist_log2_ns"][fmt::format("{}", uint64_t{1} << (key & 0xff))] = n;
  });
  return out;
}

// Block CoW extents as the files end up with them: runs of blocks that follow each other in
// the file and on disk where they were last written (the file systems merge those into one
// extent; a later write of part of an extent splits it), split where the inherited data ends —
// CoW runs over inherited data, new-data runs beyond it or in holes.
struct BlockRuns {
  int64_t cow = 0, fresh = 0;
};
BlockRuns block_runs(int blocks_fd, int inherited_fd, uint64_t block_bytes) {
  std::map<std::pair<uint32_t, uint64_t>, std::map<uint32_t, cb_block_chunk>> files;  // (dev, ino) → chunk → blocks
  for_each_key<cb_block_key>(blocks_fd, [&](const cb_block_key& k) {
    cb_block_chunk v{};
    if (bpf_map_lookup_elem(blocks_fd, &k, &v) == 0) files[{k.dev, k.ino}][k.chunk] = v;
  });
  BlockRuns out;
  for (const auto& [file, chunks] : files) {
    cb_file_key fk{};
    fk.ino = file.second;
    fk.dev = file.first;
    cb_inherited in{};
    if (bpf_map_lookup_elem(inherited_fd, &fk, &in) != 0) continue;
    uint64_t data_end = (in.size + block_bytes - 1) / block_bytes;
    auto is_data = [&](uint64_t b) {
      if (b >= data_end) return false;
      for (uint32_t h = 0; h < in.holes && h < CB_MAX_HOLES; ++h)
        if (b >= in.hole_start[h] / block_bytes && b < in.hole_end[h] / block_bytes) return false;
      return true;
    };
    bool open = false, open_data = false;
    uint32_t next_phys = 0;
    uint64_t next = 0;  // the block after the open run
    for (const auto& [chunk, v] : chunks) {
      for (uint32_t i = 0; i < 64; ++i) {
        if (!(v.seen >> i & 1)) continue;
        uint64_t b = (uint64_t{chunk} << 6) + i;
        bool data = is_data(b);
        if (!(open && b == next && data == open_data && v.phys[i] == next_phys)) {
          ++(data ? out.cow : out.fresh);
          open = true;
          open_data = data;
        }
        next = b + 1;
        next_phys = v.phys[i] + 1;
      }
    }
  }
  return out;
}

}  // namespace

TraceCounts account_window(const WatchedWindow& w, const WindowMaps& maps, WindowRecords& records, bool record_syscalls) {
  std::vector<uint64_t> c = percpu_sums(maps.counters, CB_C_COUNT);
  std::vector<uint64_t> hist = percpu_sums(maps.copyup_hist, CB_HIST_BUCKETS);
  TraceCounts out;
  json& x = out.extra;
  out.lost_events = static_cast<int64_t>(c[CB_C_LOST]);

  LateCopyUps late = late_copyups(w, maps.tasks);
  json syscalls = by_syscall(maps.syscalls);
  int64_t copyups = static_cast<int64_t>(c[CB_C_COPYUPS]) + late.resolved + late.unresolved - late.meta_data;
  int64_t metadata_copyups = static_cast<int64_t>(c[CB_C_METADATA_COPYUPS]) + late.metadata;
  int64_t meta_data_copyups = static_cast<int64_t>(c[CB_C_META_DATA_COPYUPS]) + late.meta_data;
  int64_t bytes = static_cast<int64_t>(c[CB_C_COPYUP_BYTES]) + late.bytes;
  int64_t cloned = static_cast<int64_t>(c[CB_C_CLONED_COPYUPS]) + late.cloned;
  int64_t cloned_bytes = static_cast<int64_t>(c[CB_C_CLONED_BYTES]) + late.cloned_bytes;
  json latency_hist = json::object();
  for (size_t b = 0; b < hist.size(); ++b)
    if (hist[b]) latency_hist[fmt::format("{}", uint64_t{1} << b)] = hist[b];
  json fuse = fuse_ops(maps.fuse_ops, maps.fuse_hist);
  // Inherited files the window wrote: with CoW of their inherited data, with new data.
  int64_t cow_files = 0, new_data_files = 0;
  for_each_key<cb_file_key>(maps.cow_files, [&](const cb_file_key& k) {
    cb_cow_file f{};
    if (bpf_map_lookup_elem(maps.cow_files, &k, &f) != 0) return;
    cow_files += f.extents > 0;
    new_data_files += f.new_bytes > 0;
  });

  // The counts, by what this backend does.
  out.cow_extents = static_cast<int64_t>(c[CB_C_COW_EXTENTS]);
  out.cow_bytes = static_cast<int64_t>(c[CB_C_COW_BYTES]);
  out.new_bytes = static_cast<int64_t>(c[CB_C_NEW_BYTES]);
  BlockRuns runs;
  bool runs_complete = c[CB_C_BLOCKS_UNTRACKED] == 0;
  if (w.kind == CB_KIND_EXTENT) {
    // Extents as the files end up with them, where every block was tracked; else one per event.
    runs = block_runs(maps.cow_blocks, maps.inherited, w.block_bytes);
    if (runs_complete) out.cow_extents = runs.cow + static_cast<int64_t>(c[CB_C_COW_UNSIZED]);
  }
  switch (w.kind) {
    case CB_KIND_OVERLAY:
    case CB_KIND_FUSE:
      out.copyup_events = copyups;
      out.copyup_bytes = bytes;
      // Files whose copy-up stayed metadata-only (no later data copy-up in the window).
      out.copyup_metadata_only = metadata_copyups - meta_data_copyups;
      // By kind, as each file ends up: cloned, metadata only, the rest copied.
      out.copyup_kinds.measured = true;
      out.copyup_kinds.cloned = {cloned, cloned_bytes};
      out.copyup_kinds.metadata = {out.copyup_metadata_only, 0};
      out.copyup_kinds.data = {copyups - cloned - out.copyup_metadata_only, bytes - cloned_bytes};
      break;
    default:
      // Block CoW (and a full copy) copies no whole file up: its figures are cow_* and new_bytes.
      out.copyup_events = out.copyup_bytes = 0;
      out.copyup_kinds.measured = true;
      break;
  }
  if (w.kind == CB_KIND_EXTENT && !w.new_data_observable) out.new_bytes = -1;
  if (!w.observable) {
    out.copyup_events = out.copyup_bytes = out.copyup_metadata_only = -1;
    out.copyup_kinds = {};
    if (w.kind == CB_KIND_EXTENT) out.cow_extents = out.cow_bytes = out.new_bytes = -1;
  }
  out.copyup_latencies_ns = std::move(records.latencies);
  if (w.syscalls_counted) out.syscalls = syscall_counts(maps.syscall_counts);

  // What the counts are made of, for results.json.
  // A FUSE window is named by its daemon ("fuse-overlayfs", "unionfs-fuse").
  static const char* const kinds[] = {"none", "overlayfs", "fuse", "block-cow"};
  std::string kind = w.kind == CB_KIND_FUSE && !w.fuse_daemon.empty() ? w.fuse_daemon : kinds[std::min<uint32_t>(w.kind, 3)];
  x["window"] = {{"kind", kind}, {"observable", w.observable}};
  if (!w.upper.empty()) {
    x["window"]["upper"] = w.upper;
    x["window"]["upper_fs"] = w.upper_fs;
    x["window"]["upper_dev"] = kernel_dev_text(w.upper_dev);
  }
  if (!w.observable) x["window"]["why_not"] = w.why_not;
  x["lost_events"] = out.lost_events;
  x["copyups_by_syscall"] = std::move(syscalls);
  x["copyup_latency_hist_log2_ns"] = latency_hist;
  if (c[CB_C_FUSE_REQUESTS] || !fuse.empty()) x["fuse"] = {{"requests", c[CB_C_FUSE_REQUESTS]}, {"ops", fuse}};
  if (w.kind == CB_KIND_EXTENT) {
    x["cow_files"] = cow_files;
    x["new_data_files"] = new_data_files;
    x["cow_events"] = c[CB_C_COW_EXTENTS];  // remaps / ordered extents with CoW (one ring record each)
    x["new_data_events"] = c[CB_C_NEW_EXTENTS];
    x["new_data_extents"] = runs_complete ? runs.fresh : static_cast<int64_t>(c[CB_C_NEW_EXTENTS]);
    x["rewritten_bytes"] = c[CB_C_REWRITE_BYTES];  // blocks written back again after their first count
    if (c[CB_C_COW_UNSIZED]) x["cow_events_without_inherited_size"] = c[CB_C_COW_UNSIZED];
    if (c[CB_C_BLOCKS_UNTRACKED]) x["cow_chunks_untracked"] = c[CB_C_BLOCKS_UNTRACKED];
    if (!w.inherited.empty()) x["window"]["inherited"] = w.inherited;
    if (!w.new_data_observable) x["window"]["new_data_why_not"] = w.new_data_why_not;
  }
  if (w.metacopy)
    x["metacopy"] = {{"metadata_copyups", metadata_copyups},
                     {"data_copyups_of_metacopy_files", meta_data_copyups},
                     {"metadata_only_at_end", out.copyup_metadata_only}};
  if (c[CB_C_PENDING_OVERFLOW]) x["copyups_without_size"] = c[CB_C_PENDING_OVERFLOW];
  if (late.resolved || late.unresolved) {
    x["copyups_completed_at_end"] = {{"sized", late.resolved}, {"gone", late.unresolved}};
    for (const auto& e : late.events) {
      json& s = x["copyups_by_syscall"][e.at("syscall").get<std::string>()];
      if (!s.is_object()) s = {{"copyups", 0}, {"bytes", 0}};
      std::string kind = e.value("kind", "");
      bool completes = kind == copyup_kind_name(CB_CU_META_DATA) || kind == copyup_kind_name(CB_CU_META_CLONED);
      s["copyups"] = s["copyups"].get<int64_t>() + (completes ? 0 : 1);
      s["bytes"] = s["bytes"].get<int64_t>() + e.at("bytes").get<int64_t>();
    }
  }
  if (!w.syscalls_counted) x["syscalls_why_not"] = "the sys_enter tracepoint is not attached (see programs)";
  if (c[CB_C_SYSCALLS_UNSLOTTED]) x["syscalls_beyond_table"] = c[CB_C_SYSCALLS_UNSLOTTED];
  if (c[CB_C_TMPFILES_SKIPPED]) x["container_tmpfiles_ignored"] = c[CB_C_TMPFILES_SKIPPED];
  if (c[CB_C_FUSE_NEW_FILES]) x["fuse_new_files_ignored"] = c[CB_C_FUSE_NEW_FILES];
  if (c[CB_C_PROBE_WINDOWS]) x["probe_windows"] = c[CB_C_PROBE_WINDOWS];
  if (c[CB_C_CLONE_EVENTS]) x["clone_events"] = c[CB_C_CLONE_EVENTS];  // clone tracepoints matched to copy-ups
  if (record_syscalls) x["syscall_records"] = {{"emitted", c[CB_C_SYSCALL_RECORDS]}, {"read", records.syscall_records}};
  json events = json::array();
  for (const auto& e : records.kept) events.push_back(event_json(e, w.start_ns));
  for (auto& e : late.events) events.push_back(std::move(e));
  x["events"] = std::move(events);
  if (records.not_kept) x["events_not_kept"] = records.not_kept;
  if (out.lost_events && !out.copyup_latencies_ns.empty())
    x["latencies_partial"] = "some records were lost: latency quantiles cover the records read; counts and "
                             "copyup_latency_hist_log2_ns cover everything";
  records.clear();
  return out;
}

}  // namespace cowbench::ebpf
