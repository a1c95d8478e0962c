// `cowbench run`: the measured matrix (see run.h).
#include "runner/run.h"
#include "common/clock.h"
#include "runner/host.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <set>
#include <string_view>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_mount.h"
#include "common/log.h"
#include "common/mount.h"
#include "common/process.h"
#include "runner/cgroup.h"
#include "runner/ground_truth.h"
#include "runner/noise_probe.h"
#include "runner/sandbox.h"

namespace cowbench {
namespace {

using nlohmann::json;

void add_filesystem(json& host, const std::string& role, const std::string& path) {
  try {
    MountEntry m = mount_of(path);
    host["filesystems"][role] = m.fs_type;
    host["mount_options"][role] = m.options + (m.super_options.empty() ? "" : "," + m.super_options);
  } catch (const Error& e) {
    log::warn("cannot tell the file system of {}: {}", path, e.what());
  }
}

// The sum of the /proc/meminfo fields `keys`, in KiB, from one read; -1 when none is there.
int64_t meminfo_kb(std::initializer_list<std::string_view> keys) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  int64_t v;
  std::string unit;
  int64_t sum = -1;
  while (in >> k >> v) {
    std::getline(in, unit);
    if (!k.empty() && k.back() == ':') k.pop_back();
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) sum = std::max<int64_t>(sum, 0) + v;
  }
  return sum;
}

// Writes back what earlier work left dirty, so that its writeback does not land inside the next
// measurement: sync twice (a loop-backed scratch file system's writeback lands as dirty pages
// of its image file in the host file system, which only the second sync writes), then, when
// `wait`, wait up to 5 s for the kernel's dirty and writeback counters to drain. Returns false
// when they did not (something else on the host keeps writing).
bool settle(bool wait) {
  sync();
  sync();
  if (!wait) return true;
  int64_t until = monotonic_ns() + 5'000'000'000;
  while (meminfo_kb({"Dirty", "Writeback"}) > 1024) {
    if (monotonic_ns() >= until) return false;
    sync();
    usleep(20'000);
  }
  return true;
}

// Drops the page cache, dentries and inodes, after writing back what is dirty (dirty pages
// cannot be dropped).
void drop_caches() {
  settle(false);
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  if (!f.flush()) log::warn("cannot drop caches (/proc/sys/vm/drop_caches): cold-cache runs are warm");
}

struct Backend {
  std::string name;
  const snap::BackendSpec* spec = nullptr;
  std::unique_ptr<snap::Snapshotter> sn;
  PreparedImage image;
};

struct Planned {
  std::string name;
  std::unique_ptr<wl::Workload> w;
  json plan;
  std::set<std::string> modified;  // lower files the plan modifies
};

void list_files(const std::string& root, const std::string& rel, wl::FileList& out) {
  std::string dir = rel.empty() ? root : root + rel;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  for (const auto& n : names) {
    std::string p = rel + "/" + n;
    struct stat st {};
    if (lstat((root + p).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (p == "/proc" || p == "/sys" || p == "/dev") continue;
      list_files(root, p, out);
    } else if (S_ISREG(st.st_mode)) {
      out.push_back({p, static_cast<uint64_t>(st.st_size), st.st_mode});
    }
  }
}

// Fills the metrics every shape shares from a finished container snapshot.
void measure_snapshot(snap::Snapshotter& sn, const snap::BackendSpec& spec, const std::string& key,
                      const std::vector<Mount>& mounts, const LowerFiles& lower, rep::Run& run) {
  snap::Usage u = sn.usage(key);
  run.upper_bytes = u.size;
  run.shared_bytes = u.shared;
  switch (spec.caps.cow_granularity) {
    case snap::Granularity::kFile: {
      CopyupTruth t = file_copyups(writable_dir(mounts), lower);
      run.truth_copyups = t.files;
      run.truth_copyup_bytes = t.bytes;
      break;
    }
    case snap::Granularity::kTree:
      // The whole tree was copied at prepare: nothing is copied at write time.
      run.truth_copyups = 0;
      run.truth_copyup_bytes = 0;
      break;
    case snap::Granularity::kExtent: {
      CopyupTruth t = extent_copyups(writable_dir(mounts), lower);
      run.truth_copyups = t.files;
      run.truth_copyup_bytes = t.bytes;
      break;
    }
  }
}

void fill_outcome(const wl::Outcome& o, rep::Run& run) {
  run.ops_count = o.ops;
  std::vector<int64_t> lat = o.latencies_ns;
  run.op_latency = rep::quantiles(lat);
  run.digest = o.digest;
  run.exit_code = o.exit_code;
  run.stderr_tail = o.stderr_tail;
  run.extra = o.extra;
  if (o.exit_code != 0) {
    run.status = "failed";
    run.error = fmt::format("command exited with status {}", o.exit_code);
  }
}

// A failed run on a FUSE mount that saw ENOTCONN, or a process killed by SIGBUS (pages of a
// mapped file that can no longer be read), lost its daemon: say so, not just the symptom.
void explain_dead_fuse_daemon(const std::vector<Mount>& mounts, const std::string& backend, rep::Run& run) {
  if (run.status == "ok") return;
  bool fuse = std::any_of(mounts.begin(), mounts.end(), [](const Mount& m) { return m.type == kFuseOverlayfsType; });
  if (!fuse) return;
  for (std::string_view why : {std::string_view(std::strerror(ENOTCONN)), std::string_view("SIGBUS")})
    if (run.error.find(why) != std::string::npos || run.stderr_tail.find(why) != std::string::npos) {
      run.error += fmt::format(" (the FUSE daemon serving the container's root on {} died)", backend);
      return;
    }
}

void fill_trace(const ebpf::TraceCounts& c, rep::Run& run) {
  run.copyup_events = c.copyup_events;
  run.copyup_bytes = c.copyup_bytes;
  std::vector<int64_t> lat = c.copyup_latencies_ns;
  run.copyup_latency = rep::quantiles(lat);
  run.cow_extents = c.cow_extents;
  run.cow_bytes = c.cow_bytes;
  run.extra["trace"] = c.extra;
  run.extra["trace"]["lost_events"] = c.lost_events;  // summed into results.trace.lost_events
}

// Adds one trace window's counts to those of the earlier windows of the same run
// (containerd-bench: a window per layer). Numbers add up, events are tagged with their window.
void add_json_counts(json& sum, const json& more, int window) {
  for (const auto& [k, v] : more.items()) {
    if (!sum.contains(k)) {
      sum[k] = v.is_array() ? json::array() : v;
      if (!v.is_array()) continue;
    }
    json& s = sum[k];
    if (v.is_number_integer() && s.is_number_integer()) {
      s = s.get<int64_t>() + v.get<int64_t>();
    } else if (v.is_object() && s.is_object() && k != "window") {
      add_json_counts(s, v, window);
    } else if (v.is_array() && s.is_array()) {
      for (json e : v) {
        if (e.is_object()) e["window"] = window;
        s.push_back(std::move(e));
      }
    }
  }
}

void add_trace_counts(ebpf::TraceCounts& sum, const ebpf::TraceCounts& c, int window) {
  auto add = [](int64_t& a, int64_t b) { a = a < 0 || b < 0 ? -1 : a + b; };  // -1: not observable
  add(sum.copyup_events, c.copyup_events);
  add(sum.copyup_bytes, c.copyup_bytes);
  add(sum.cow_extents, c.cow_extents);
  add(sum.cow_bytes, c.cow_bytes);
  add(sum.lost_events, c.lost_events);
  sum.copyup_latencies_ns.insert(sum.copyup_latencies_ns.end(), c.copyup_latencies_ns.begin(), c.copyup_latencies_ns.end());
  add_json_counts(sum.extra, c.extra, window);
}

// What the tracer watches in one container: its cgroup, its snapshot's mounts, how it CoWs.
ebpf::TraceTarget trace_target(const Cgroup& cg, const Backend& b, const std::vector<Mount>& mounts) {
  ebpf::TraceTarget t;
  t.cgroup_id = cg.id();
  t.backend = b.name;
  t.mounts = mounts;
  t.cow = b.spec->caps.cow_granularity;
  return t;
}

// The CPUs this thread may use.
cpu_set_t own_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) fail_sys("sched_getaffinity");
  return set;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set = own_affinity();
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

// Every thread of this process (the tracer's reader too) off one CPU, and the processes it
// starts with them, until the end of the scope; then back to what they had.
class KeepOffCpu {
 public:
  explicit KeepOffCpu(int cpu) {
    if (cpu < 0) return;
    saved_ = own_affinity();
    cpu_set_t rest = saved_;
    CPU_CLR(cpu, &rest);
    if (CPU_COUNT(&rest) == 0) return;
    set_all(rest);
    active_ = true;
  }
  KeepOffCpu(const KeepOffCpu&) = delete;
  KeepOffCpu& operator=(const KeepOffCpu&) = delete;
  ~KeepOffCpu() {
    if (active_) set_all(saved_);
  }

 private:
  static void set_all(const cpu_set_t& set) {
    DIR* d = opendir("/proc/self/task");
    if (!d) return;
    while (dirent* e = readdir(d)) {
      pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
      if (tid > 0 && sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH)
        log::warn("cannot set the CPU affinity of thread {}: {}", tid, std::strerror(errno));
    }
    closedir(d);
  }
  cpu_set_t saved_{};
  bool active_ = false;
};

class Matrix {
 public:
  Matrix(const RunConfig& cfg, const RunHooks& hooks, const std::atomic<bool>& stop)
      : cfg_(cfg), hooks_(hooks), stop_(stop), layout_(detect_cgroup_layout()) {}

  rep::Results run();

 private:
  void open_backends();
  void plan_workloads();
  void progress(const std::string& line);
  // One container of a kContainer workload; appends to results unless warm-up.
  rep::Run one_container(Backend& b, Planned& p, int repeat);
  std::vector<rep::Run> scale_out(Backend& b, Planned& p, int repeat);
  rep::Run on_snapshotter(Backend& b, Planned& p, int repeat);
  void save();
  // Before a measurement: settle the page cache (or drop it, cold), wake the CPU, probe the
  // host's noise floor (recorded repeats only).
  void before_measurement(int repeat);
  // After an error inside a trace window: closes it, so that the next run gets a clean one;
  // the first error wins (a failure to close is only logged).
  void abandon_window(const std::string& what) noexcept;
  // Repeats a workload may get: --repeat, or up to --max-repeat with --until-ci.
  int max_rounds() const { return cfg_.until_ci > 0 ? std::max(cfg_.repeat, cfg_.max_repeat) : cfg_.repeat; }
  // --until-ci: the workloads with a row whose median is not yet known that closely.
  std::set<std::string> imprecise_workloads() const;
  // Whether finished containers wait for the end of the matrix to be removed.
  void decide_cleanup();
  // Removes a finished container now, or at the end of the matrix.
  void retire(Backend& b, const std::string& key, const std::string& rootfs);
  void remove_retired();

  const RunConfig& cfg_;
  const RunHooks& hooks_;
  const std::atomic<bool>& stop_;
  CgroupLayout layout_;
  std::vector<Backend> backends_;
  std::vector<Planned> planned_;
  wl::FileList files_;
  LowerFiles lower_files_;
  std::unique_ptr<ebpf::TraceSession> tracer_;
  int container_cpu_ = -1;  // the containers' CPU (-1: not pinned)
  NoiseProbe noise_;
  rep::Results results_;
  std::string containers_;
  int done_ = 0, total_ = 0;
  uint64_t counter_ = 0;
  bool defer_removal_ = false;
  bool wait_for_writeback_ = true;  // until a settle times out once
  struct Retired {
    Backend* backend;
    std::string key, rootfs;
  };
  std::vector<Retired> retired_;
};

void Matrix::progress(const std::string& line) {
  if (hooks_.progress) {
    hooks_.progress(line, done_, total_);
    return;
  }
  if (isatty(STDERR_FILENO)) {
    int width = 30, filled = total_ ? done_ * width / total_ : 0;
    fmt::print(stderr, "\r\033[K[{}{}] {}/{} {}", std::string(static_cast<size_t>(filled), '#'),
               std::string(static_cast<size_t>(width - filled), '.'), done_, total_, line);
    if (done_ == total_) fmt::print(stderr, "\n");
  } else {
    fmt::print(stderr, "cowbench: [{}/{}] {}\n", done_, total_, line);
  }
}

void Matrix::open_backends() {
  const auto& reg = snap::builtin_registry();
  std::vector<std::string> names = cfg_.backends;
  bool explicit_list = !names.empty();
  if (!explicit_list) names = reg.names();
  for (const auto& name : names) reg.get(name);  // unknown names fail before anything starts
  for (const auto& [name, opts] : cfg_.backend_options)
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail(Errc::kInvalidInput, "options given for backend '{}', which is not in this run", name);
  for (const auto& name : names) {
    const auto& spec = reg.get(name);
    snap::Availability a = spec.probe(cfg_.workdir);
    if (!a.available) {
      if (explicit_list) fail(Errc::kUnsupported, "backend {} is unavailable here: {}", name, a.reason);
      log::warn("skipping backend {}: {}", name, a.reason);
      results_.config["skipped_backends"][name] = a.reason;
      continue;
    }
    Backend b;
    b.name = name;
    b.spec = &spec;
    auto it = cfg_.backend_options.find(name);
    b.sn = spec.create(path_join(cfg_.workdir, name), it == cfg_.backend_options.end() ? snap::BackendOptions{} : it->second);
    if (auto stale = remove_stale_snapshots(*b.sn); !stale.empty())
      log::info("{}: removed {} snapshots a killed run left", name, stale.size());
    std::string root = path_join(cfg_.workdir, name), store = path_join(root, "store");
    add_filesystem(results_.host, name, is_mount_point(store) ? store : root);
    progress(fmt::format("importing {} into {}", cfg_.image, name));
    b.image = hooks_.import_image(*b.sn, name);
    results_.config["images"][name] = {{"top", b.image.top}, {"import_ns", b.image.import_ns}, {"cached", b.image.cached}};
    backends_.push_back(std::move(b));
  }
  if (backends_.empty()) fail(Errc::kUnsupported, "no backend is available here (see cowbench doctor)");
}

void Matrix::plan_workloads() {
  files_ = list_image_files(*backends_.front().sn, backends_.front().image.top, containers_);
  for (const auto& f : files_) lower_files_[f.path] = static_cast<int64_t>(f.size);
  std::vector<std::string> names = cfg_.workloads.empty() ? wl::default_workloads() : cfg_.workloads;
  for (const auto& n : names) {
    Planned p;
    p.name = n;
    p.w = wl::make_workload(n);
    p.plan = p.w->plan(files_, cfg_.seed);
    if (p.w->shape() == wl::Shape::kScaleOut && !cfg_.scale_out.empty()) p.plan["containers"] = cfg_.scale_out;
    for (const auto& m : p.w->modified_lower_files(p.plan)) p.modified.insert(m);
    results_.config["plans"][n] = {{"modified_lower_files", p.modified.size()}};
    planned_.push_back(std::move(p));
  }
}

rep::Run Matrix::one_container(Backend& b, Planned& p, int repeat) {
  rep::Run run;
  run.backend = b.name;
  run.workload = p.name;
  run.repeat = repeat;
  run.cache = cfg_.cache;
  std::string key = fmt::format("run-{}-{}", getpid(), ++counter_);
  std::string rootfs = path_join(containers_, key);
  make_dirs(rootfs);
  int64_t t0 = monotonic_ns();
  std::vector<Mount> mounts;
  try {
    mounts = b.sn->prepare(key, b.image.top);
  } catch (...) {
    remove_tree(rootfs);
    throw;
  }
  int64_t prepare_ns = monotonic_ns() - t0;
  try {
    before_measurement(repeat);
    Cgroup cg(layout_, key);
    SandboxOptions so;
    so.mounts = mounts;
    so.rootfs = rootfs;
    so.timeout = cfg_.timeout;
    so.cgroup = &cg;
    so.cancel = &stop_;
    so.cpu = container_cpu_;
    if (tracer_) tracer_->begin(trace_target(cg, b, mounts));
    const wl::Workload& w = *p.w;
    const json& plan = p.plan;
    SandboxResult r;
    try {
      r = run_in_sandbox(so, [&] { return wl::to_json(w.run(plan)); });
    } catch (...) {
      if (tracer_) abandon_window(key);
      throw;
    }
    ebpf::TraceCounts traced;
    if (tracer_) traced = tracer_->end();
    CgroupStats cs = cg.stats();
    cg.close();
    run.setup_ns = prepare_ns + r.setup_ns;
    run.page_cache_bytes = cs.page_cache_bytes;
    run.cpu_user_ns = cs.user_ns;
    run.cpu_sys_ns = cs.sys_ns;
    if (r.cancelled) throw Error(Errc::kInterrupted, "interrupted");
    if (!r.ok) {
      run.status = "failed";
      run.error = r.error;
    } else {
      run.wall_ns = r.run_ns;
      fill_outcome(wl::outcome_from_json(r.result), run);
    }
    if (tracer_) fill_trace(traced, run);  // after fill_outcome, which sets run.extra
    measure_snapshot(*b.sn, *b.spec, key, mounts, lower_files_, run);
  } catch (...) {
    try {
      b.sn->remove(key);
      remove_tree(rootfs);
    } catch (const std::exception& e) {
      log::warn("cleaning up container {}: {}", key, e.what());
    }
    throw;
  }
  explain_dead_fuse_daemon(mounts, b.name, run);
  retire(b, key, rootfs);
  return run;
}

void Matrix::abandon_window(const std::string& what) noexcept {
  try {
    tracer_->end();
  } catch (const std::exception& e) {
    log::warn("closing the trace window of {}: {}", what, e.what());
  }
}

std::set<std::string> Matrix::imprecise_workloads() const {
  std::set<std::string> out;
  for (const auto& row : rep::summarize(results_.runs)) {
    if (row.n < 2 || row.median_wall_ns <= 0 || row.ci95_ns < 0) continue;
    if (static_cast<double>(row.ci95_ns) > cfg_.until_ci * static_cast<double>(row.median_wall_ns))
      out.insert(row.workload.substr(0, row.workload.find('/')));  // scale-out/N → scale-out
  }
  return out;
}

void Matrix::before_measurement(int repeat) {
  // What prepare (and earlier runs) left dirty is written back before the clock starts: the
  // scratch file systems' logs and metadata too (then the loop images' pages, by settle()).
  for (auto& b : backends_) b.sn->quiesce();
  if (!settle(wait_for_writeback_)) {
    wait_for_writeback_ = false;
    log::warn("dirty pages did not drain within 5 s (another process keeps writing?): no longer waiting for "
              "writeback before measurements; expect noisier results");
  }
  if (cfg_.cache == "cold") drop_caches();
  NoiseProbe::spin(20);
  if (repeat >= 0) noise_.sample();
}

// Deleting a container's tree between measurements disturbs the next ones: on ext4 without a
// journal (this project's development machines) every inode deleted in the last minute or
// more is skipped, one by one, when the next file is created, so file creation gets slower
// run after run while the copy backend deletes a whole image tree per container (seen with
// perf: recently_deleted() took 40 % of the CPU of pkg-install). So containers are removed
// after the matrix when the work directory has room for all of them (the copy backend's
// trees at the image's size, the others' writes with a generous allowance), and right away
// when it has not.
void Matrix::decide_cleanup() {
  uint64_t image_bytes = 0;
  for (const auto& f : files_) image_bytes += f.size;
  int containers = 0;
  for (const auto& p : planned_)
    if (p.w->shape() == wl::Shape::kContainer) containers += max_rounds() + (cfg_.warmup ? 1 : 0);
  uint64_t need = 2ULL << 30;  // margin
  for (const auto& b : backends_)
    need += static_cast<uint64_t>(containers) *
            (b.spec->caps.cow_granularity == snap::Granularity::kTree ? image_bytes + image_bytes / 8 : 64ULL << 20);
  struct statvfs sv {};
  uint64_t avail = statvfs(cfg_.workdir.c_str(), &sv) == 0 ? static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize : 0;
  defer_removal_ = avail >= need;
  results_.config["cleanup"] = defer_removal_ ? "after the matrix" : "after each run";
  if (!defer_removal_)
    log::warn("the work directory has {} MiB free, less than the {} MiB that keeping every container until the end "
              "needs: containers are removed after each run, which can slow file creation in the next ones",
              avail >> 20, need >> 20);
}

void Matrix::retire(Backend& b, const std::string& key, const std::string& rootfs) {
  if (defer_removal_) {
    retired_.push_back({&b, key, rootfs});
    return;
  }
  b.sn->remove(key);
  remove_tree(rootfs);
}

void Matrix::remove_retired() {
  if (!retired_.empty()) progress(fmt::format("removing {} containers", retired_.size()));
  for (auto it = retired_.rbegin(); it != retired_.rend(); ++it) {
    try {
      it->backend->sn->remove(it->key);
      remove_tree(it->rootfs);
    } catch (const std::exception& e) {
      log::warn("removing container {}: {}", it->key, e.what());
    }
  }
  retired_.clear();
}

std::vector<rep::Run> Matrix::scale_out(Backend& b, Planned& p, int repeat) {
  std::vector<rep::Run> out;
  for (const auto& nj : p.plan.at("containers")) {
    int n = nj.get<int>();
    if (stop_) break;
    rep::Run run;
    run.backend = b.name;
    run.workload = fmt::format("{}/{}", p.name, n);
    run.repeat = repeat;
    run.cache = "cold";
    // Page-cache growth is measured from a dropped cache, whatever --cache says.
    drop_caches();
    int64_t cached_before = meminfo_kb({"Cached"});
    std::vector<std::string> keys;
    std::vector<std::vector<Mount>> mounts;
    std::vector<std::unique_ptr<Cgroup>> groups;
    std::vector<SandboxResult> results(static_cast<size_t>(n));
    auto cleanup = [&] {
      for (const auto& k : keys) {
        try {
          b.sn->remove(k);
          remove_tree(path_join(containers_, k));
        } catch (const std::exception& e) {
          log::warn("cleaning up container {}: {}", k, e.what());
        }
      }
    };
    try {
      int64_t t0 = monotonic_ns();
      for (int i = 0; i < n; ++i) {
        std::string key = fmt::format("run-{}-{}", getpid(), ++counter_);
        make_dirs(path_join(containers_, key));
        keys.push_back(key);
        mounts.push_back(b.sn->prepare(key, b.image.top));
      }
      int64_t prepare_ns = monotonic_ns() - t0;
      for (int i = 0; i < n; ++i) groups.push_back(std::make_unique<Cgroup>(layout_, keys[static_cast<size_t>(i)]));
      const wl::Workload& w = *p.w;
      const json& plan = p.plan;
      std::vector<std::thread> threads;
      int64_t t1 = monotonic_ns();
      for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          SandboxOptions so;
          so.mounts = mounts[static_cast<size_t>(i)];
          so.rootfs = path_join(containers_, keys[static_cast<size_t>(i)]);
          so.timeout = cfg_.timeout;
          so.cgroup = groups[static_cast<size_t>(i)].get();
          so.cancel = &stop_;
          try {
            results[static_cast<size_t>(i)] = run_in_sandbox(so, [&] { return wl::to_json(w.run(plan)); });
          } catch (const std::exception& e) {
            results[static_cast<size_t>(i)].error = e.what();
          }
        });
      }
      for (auto& t : threads) t.join();
      int64_t all_ns = monotonic_ns() - t1;
      int64_t cached_after = meminfo_kb({"Cached"});
      std::vector<int64_t> lat;
      int64_t cpu_u = 0, cpu_s = 0, disk = 0;
      for (int i = 0; i < n; ++i) {
        const auto& r = results[static_cast<size_t>(i)];
        if (r.cancelled) throw Error(Errc::kInterrupted, "interrupted");
        if (!r.ok) {
          run.status = "failed";
          run.error = fmt::format("container {} of {}: {}", i + 1, n, r.error);
          continue;
        }
        wl::Outcome o = wl::outcome_from_json(r.result);
        lat.insert(lat.end(), o.latencies_ns.begin(), o.latencies_ns.end());
        run.ops_count += o.ops;
        run.digest = o.digest;
        CgroupStats cs = groups[static_cast<size_t>(i)]->stats();
        cpu_u += std::max<int64_t>(0, cs.user_ns);
        cpu_s += std::max<int64_t>(0, cs.sys_ns);
        disk += std::max<int64_t>(0, b.sn->usage(keys[static_cast<size_t>(i)]).size);
      }
      groups.clear();
      run.op_latency = rep::quantiles(lat);
      run.wall_ns = all_ns;
      run.setup_ns = prepare_ns;
      run.page_cache_bytes = (cached_after - cached_before) * 1024;
      run.cpu_user_ns = cpu_u;
      run.cpu_sys_ns = cpu_s;
      run.upper_bytes = disk;
      run.extra = {{"containers", n},
                   {"snapshots_per_s", prepare_ns > 0 ? n * 1e9 / static_cast<double>(prepare_ns) : 0.0},
                   {"page_cache_growth_bytes", (cached_after - cached_before) * 1024},
                   {"disk_growth_bytes", disk}};
    } catch (...) {
      groups.clear();
      cleanup();
      throw;
    }
    cleanup();
    out.push_back(run);
  }
  return out;
}

rep::Run Matrix::on_snapshotter(Backend& b, Planned& p, int repeat) {
  rep::Run run;
  run.backend = b.name;
  run.workload = p.name;
  run.repeat = repeat;
  run.cache = cfg_.cache;
  // The runner writes the layers itself: with a tracer it joins a cgroup of its own for the
  // run, and each layer's apply is a trace window on that layer's writable snapshot.
  std::unique_ptr<Cgroup> cg;
  ebpf::TraceCounts traced;
  bool window_open = false;
  int windows = 0;
  wl::LayerHooks hooks;
  if (tracer_) {
    cg = std::make_unique<Cgroup>(layout_, fmt::format("run-{}-{}", getpid(), ++counter_));
    if (cg->id() == 0) cg.reset();  // no cgroup v2 here: nothing to filter by
  }
  int64_t windows_ns = 0;  // opening and closing them: not the workload's time
  if (cg) {
    hooks.before_apply = [&](const std::vector<Mount>& mounts) {
      int64_t t = monotonic_ns();
      tracer_->begin(trace_target(*cg, b, mounts));
      window_open = true;
      windows_ns += monotonic_ns() - t;
    };
    hooks.after_apply = [&] {
      int64_t t = monotonic_ns();
      window_open = false;
      add_trace_counts(traced, tracer_->end(), windows++);
      windows_ns += monotonic_ns() - t;
    };
  }
  before_measurement(repeat);
  wl::Outcome o;
  int64_t wall_ns = 0;
  {
    if (cg) cg->enter_self();
    try {
      int64_t t0 = monotonic_ns();
      o = p.w->run_on_snapshotter(*b.sn, b.image.top, p.plan, containers_, hooks);
      wall_ns = monotonic_ns() - t0;
    } catch (...) {
      if (window_open) abandon_window(p.name);
      throw;  // cg's destructor moves this process back and removes the group
    }
    if (cg) cg->close();
  }
  run.wall_ns = wall_ns - windows_ns;
  fill_outcome(o, run);
  if (cg) {
    fill_trace(traced, run);
    run.extra["trace"]["windows"] = windows;
  }
  // Ground truth where the plan says it: a file-granular backend copies up each lower file a
  // layer writes, once per layer; a full copy never does.
  int64_t updated = o.extra.value("lower_files_updated", int64_t{-1});
  if (updated >= 0 && b.spec->caps.cow_granularity == snap::Granularity::kFile) {
    run.truth_copyups = updated;
    run.truth_copyup_bytes = updated * o.extra.value("file_size", int64_t{0});
  } else if (updated >= 0 && b.spec->caps.cow_granularity == snap::Granularity::kTree) {
    run.truth_copyups = run.truth_copyup_bytes = 0;
  }
  auto layers = o.extra.value("layers_to_remove", std::vector<std::string>{});
  if (!layers.empty()) {
    snap::Usage u = b.sn->usage(layers.back());
    run.upper_bytes = u.size;
    run.shared_bytes = u.shared;
  }
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) b.sn->remove(*it);
  run.extra.erase("layers_to_remove");
  return run;
}

void Matrix::save() {
  if (json n = noise_.summary(); n["samples"].get<size_t>() >= 2) results_.host["noise_floor"] = std::move(n);
  make_dirs(cfg_.out);
  rep::save_results(results_, path_join(cfg_.out, "results.json"));
}

rep::Results Matrix::run() {
  // --cpu: the containers on a CPU of their own (one kept free of other work, e.g. isolcpus=),
  // the runner and what it starts off it.
  container_cpu_ = choose_container_cpu(cfg_.cpu);
  KeepOffCpu keep_off(container_cpu_);
  results_.config = {{"version", cfg_.version},
                     {"image", cfg_.image},
                     {"platform", cfg_.platform},
                     {"repeat", cfg_.repeat},
                     {"warmup", cfg_.warmup},
                     {"cache", cfg_.cache},
                     {"trace", cfg_.trace},
                     {"seed", cfg_.seed},
                     {"timeout_s", cfg_.timeout.count()},
                     {"workdir", cfg_.workdir},
                     {"container_cpu", container_cpu_ >= 0 ? json(container_cpu_) : json(nullptr)}};
  if (cfg_.until_ci > 0) {
    results_.config["until_ci"] = cfg_.until_ci;
    results_.config["max_repeat"] = max_rounds();
  }
  make_dirs(cfg_.workdir);
  results_.host = describe_host(cfg_.workdir);
  containers_ = path_join(cfg_.workdir, "containers");
  make_dirs(containers_);
  // Tracer first: a forced mode that cannot work here is a usage error before any work.
  if (cfg_.trace != "off" && hooks_.make_tracer) tracer_ = hooks_.make_tracer(cfg_.trace);
  results_.trace_mode = tracer_ ? tracer_->mode() : "off";
  open_backends();
  plan_workloads();
  decide_cleanup();
  // Whatever ends the matrix (done, interrupted, an error), the retired containers go.
  struct RemoveRetired {
    Matrix* m;
    ~RemoveRetired() { m->remove_retired(); }
  } remove_retired_at_exit{this};
  std::vector<std::string> bnames;
  for (const auto& b : backends_) bnames.push_back(b.name);
  results_.config["backends"] = bnames;
  for (const auto& [n, o] : cfg_.backend_options) results_.config["backend_options"][n] = o;
  std::vector<std::string> wnames;
  for (const auto& p : planned_) wnames.push_back(p.name);
  results_.config["workloads"] = wnames;

  // One unrecorded warm-up round — every container workload once on every backend — mounts the
  // image, brings the files each workload touches into the caches (the lower files, a scratch
  // file system's image blocks) and settles the backends before anything is measured: without
  // it the first repeat of each workload reads its targets from disk and stands out.
  int first = cfg_.warmup ? -1 : 0;
  auto warms = [](const Planned& p) { return p.w->shape() == wl::Shape::kContainer; };
  int warm_ups = cfg_.warmup ? static_cast<int>(std::count_if(planned_.begin(), planned_.end(), warms)) : 0;
  total_ = static_cast<int>(backends_.size()) * (cfg_.repeat * static_cast<int>(planned_.size()) + warm_ups);
  save();
  int rounds = cfg_.repeat;           // grows with --until-ci
  std::set<std::string> more;         // past the asked repeats: the workloads that get another round
  for (int rep = first; rep < rounds && !stop_; ++rep) {
    for (auto& p : planned_) {
      if (rep < 0 && !warms(p)) continue;
      if (rep >= cfg_.repeat && !more.count(p.name)) continue;
      // Rotate the backend order every repeat so that drift hits every backend alike.
      for (size_t k = 0; k < backends_.size() && !stop_; ++k) {
        Backend& b = backends_[(k + static_cast<size_t>(rep - first)) % backends_.size()];
        std::string label = fmt::format("{} {} {}", b.name, p.name, rep < 0 ? "warm-up" : fmt::format("#{}", rep + 1));
        progress(label);
        std::vector<rep::Run> runs;
        try {
          switch (p.w->shape()) {
            case wl::Shape::kContainer: runs.push_back(one_container(b, p, rep)); break;
            case wl::Shape::kScaleOut: runs = scale_out(b, p, rep); break;
            case wl::Shape::kSnapshotter: runs.push_back(on_snapshotter(b, p, rep)); break;
          }
        } catch (const Error& e) {
          if (e.code() == Errc::kInterrupted || stop_) break;
          rep::Run failed;
          failed.backend = b.name;
          failed.workload = p.name;
          failed.repeat = rep;
          failed.cache = cfg_.cache;
          failed.status = "failed";
          failed.error = e.what();
          runs.push_back(failed);
          log::warn("{}: {}", label, e.what());
        }
        ++done_;
        if (rep < 0) continue;  // warm-up: not recorded
        for (auto& r : runs) {
          if (r.status != "ok") log::warn("{} failed: {}", label, r.error);
          results_.runs.push_back(std::move(r));
        }
        save();
      }
    }
    if (rep + 1 >= cfg_.repeat && rep + 1 < max_rounds() && !stop_) {
      more = imprecise_workloads();
      if (!more.empty()) {
        rounds = rep + 2;
        total_ += static_cast<int>(backends_.size() * more.size());
        progress(fmt::format("another round for {}: the 95 % interval of a median is wider than {:.1f} %",
                             fmt::join(more, ", "), cfg_.until_ci * 100));
      }
    }
  }
  remove_retired();
  if (tracer_) {
    results_.trace_extra = tracer_->details();
    for (const auto& r : results_.runs)
      if (r.extra.contains("trace")) results_.lost_events += r.extra["trace"].value("lost_events", int64_t{0});
  }
  results_.interrupted = stop_.load();
  save();
  progress(stop_ ? "interrupted: kept the finished runs" : "done");
  return results_;
}

}  // namespace

wl::FileList list_image_files(snap::Snapshotter& sn, const std::string& top, const std::string& scratch) {
  std::string key = fmt::format("list-{}-{}", getpid(), monotonic_ns());
  wl::FileList files;
  auto mounts = sn.view(key, top);
  try {
    TempDir target(scratch, "list");
    ScopedMount m(mounts, target.path());
    list_files(target.path(), "", files);
    m.close();
  } catch (...) {
    sn.remove(key);
    throw;
  }
  sn.remove(key);
  std::sort(files.begin(), files.end(), [](const wl::FileEntry& a, const wl::FileEntry& b) { return a.path < b.path; });
  return files;
}

std::vector<std::string> remove_stale_snapshots(snap::Snapshotter& sn) {
  auto stale = [](const std::string& key) {
    for (const char* prefix : {"run-", "list-", "cbench-"})
      if (auto pid = owner_pid(key, prefix)) return *pid != getpid() && process_gone(*pid);
    return false;
  };
  std::vector<snap::Info> victims;
  sn.walk([&](const snap::Info& i) {
    if (stale(i.name)) victims.push_back(i);
  });
  std::vector<std::string> removed;
  // Children first: remove whatever no other victim names as its parent, until none is left.
  while (!victims.empty()) {
    size_t before = victims.size();
    for (auto it = victims.begin(); it != victims.end();) {
      bool parent_of_other = std::any_of(victims.begin(), victims.end(), [&](const snap::Info& o) { return o.parent == it->name; });
      if (parent_of_other) {
        ++it;
        continue;
      }
      try {
        sn.remove(it->name);
        removed.push_back(it->name);
      } catch (const Error& e) {
        log::warn("cannot remove the stale snapshot {}: {}", it->name, e.what());
      }
      it = victims.erase(it);
    }
    if (victims.size() == before) break;  // a cycle cannot happen; never loop forever
  }
  return removed;
}

json describe_host(const std::string& workdir) {
  HostFacts f = host_facts();
  json h{{"kernel", f.kernel},
         {"arch", f.arch},
         {"cpu_model", f.cpu_model},
         {"cpus", f.cpus},
         {"memory_bytes", f.memory_bytes},
         {"lockdown", f.lockdown},
         {"cgroups", f.cgroup_layout},
         {"filesystems", json::object()},
         {"mount_options", json::object()}};
  add_filesystem(h, "workdir", workdir);
  return h;
}

int choose_container_cpu(const std::string& want) {
  std::vector<int> cpus = allowed_cpus();
  auto names = [&] {
    std::string s;
    for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
    return s;
  };
  if (want == "none") return -1;
  // One CPU only: pinning would put the containers on the runner's CPU, which is no better.
  if (want == "last") return cpus.size() >= 2 ? cpus.back() : -1;
  int n = -1;
  auto [end, ec] = std::from_chars(want.data(), want.data() + want.size(), n);
  if (ec != std::errc() || end != want.data() + want.size() || n < 0)
    fail(Errc::kInvalidInput, "--cpu takes none, last or a CPU number, not '{}'", want);
  if (std::find(cpus.begin(), cpus.end(), n) == cpus.end())
    fail(Errc::kInvalidInput, "--cpu {}: cowbench may not run on CPU {} here (it may use {})", n, n, names());
  return n;
}

rep::Results run_matrix(const RunConfig& cfg, const RunHooks& hooks, const std::atomic<bool>& stop) {
  if (cfg.repeat < 1) fail(Errc::kInvalidInput, "--repeat must be at least 1, not {}", cfg.repeat);
  if (cfg.cache != "warm" && cfg.cache != "cold") fail(Errc::kInvalidInput, "--cache takes warm or cold, not '{}'", cfg.cache);
  if (!(cfg.until_ci >= 0 && cfg.until_ci < 1))
    fail(Errc::kInvalidInput, "--until-ci takes a percentage above 0 and below 100, not {}", cfg.until_ci * 100);
  if (cfg.until_ci > 0 && cfg.max_repeat < cfg.repeat)
    fail(Errc::kInvalidInput, "--max-repeat ({}) must be at least --repeat ({})", cfg.max_repeat, cfg.repeat);
  if (!hooks.import_image) fail(Errc::kFailure, "run_matrix needs an image importer");
  Matrix m(cfg, hooks, stop);
  return m.run();
}

}  // namespace cowbench
