// `cowbench run`'s scheduler: opens the backends, plans the workloads, and runs interleaved, rotated rounds (see run.h).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "common/side_by_side.h"
#include "runner/executor.h"
#include "runner/host.h"
#include "runner/hygiene.h"
#include "runner/image_files.h"
#include "runner/layer_disk.h"
#include "runner/run.h"
#include "runner/rows.h"
#include "runner/run_context.h"
#include "runner/noise_probe.h"
#include "runner/until_ci.h"
#include "snapshotters/snapshot_keys.h"

namespace cowbench {
namespace {

using nlohmann::json;

class Scheduler {
 public:
  Scheduler(const RunConfig& cfg, const RunHooks& hooks, const std::atomic<bool>& stop)
      : cfg_(cfg), hooks_(hooks), stop_(stop), ctx_(cfg, stop) {}

  rep::Results run();

 private:
  void record_config();
  // The rows (plan_rows), each probed with its options; fills rows_. Opens nothing.
  void probe_rows();
  // Opens every probed row in WORKDIR/NAME and imports the image into it.
  void open_backends();
  void import_images();  // into every opened backend
  void plan_workloads();
  void decide_cleanup();
  // Every round: the warm-up (repeat -1), --repeat rounds, then --until-ci's extra rounds.
  void run_rounds();
  // One repeat of one workload on one backend; records its runs unless it is the warm-up.
  void run_one(Backend& b, Planned& p, int repeat);
  void progress(const std::string& line);
  void save();
  // Repeats a workload may get: --repeat, or up to --max-repeat with --until-ci or --ci.
  int max_rounds() const {
    return cfg_.until_ci > 0 || cfg_.ci_target > 0 ? std::max(cfg_.repeat, cfg_.max_repeat) : cfg_.repeat;
  }
  // --ci: the repeats the host's noise calls for, measured now (at least --repeat).
  int plan_ci_repeats();
  // --ci: what the rounds reached, in results.json's config.ci and on stderr.
  void record_ci(int rounds, const std::string& stopped_by);
  // --budget: whether a round of these workloads, timed as their last rounds were, still fits.
  bool round_fits(const std::set<std::string>& names) const;

  const RunConfig& cfg_;
  const RunHooks& hooks_;
  const std::atomic<bool>& stop_;
  RunContext ctx_;
  std::unique_ptr<ebpf::TraceSession> tracer_;
  std::vector<RowSpec> rows_;  // the rows that will run, probed
  std::vector<Planned> planned_;
  wl::FileList files_;
  rep::Results results_;
  int done_ = 0, total_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::map<std::string, std::chrono::nanoseconds> round_time_;  // workload → its last recorded round
  std::chrono::steady_clock::time_point last_save_{};
};

void Scheduler::progress(const std::string& line) {
  if (hooks_.progress) {
    hooks_.progress(line, done_, total_);
    return;
  }
  std::string text;
  if (isatty(STDERR_FILENO)) {
    int width = 30, filled = total_ ? done_ * width / total_ : 0;
    text = fmt::format("\r\033[K[{}{}] {}/{} {}{}", std::string(static_cast<size_t>(filled), '#'),
                       std::string(static_cast<size_t>(width - filled), '.'), done_, total_, line,
                       done_ == total_ ? "\n" : "");
  } else {
    text = fmt::format("cowbench: [{}/{}] {}\n", done_, total_, line);
  }
  // One write, its failure ignored: progress nobody reads any more (a closed pipe) must not
  // stop the matrix.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
}

void Scheduler::record_config() {
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
                     {"container_cpu", ctx_.container_cpu >= 0 ? json(ctx_.container_cpu) : json(nullptr)}};
  if (cfg_.until_ci > 0) results_.config["until_ci"] = cfg_.until_ci;
  if (cfg_.until_ci > 0 || cfg_.ci_target > 0) results_.config["max_repeat"] = max_rounds();
  if (cfg_.budget.count() > 0) results_.config["budget_s"] = cfg_.budget.count();
}

int Scheduler::plan_ci_repeats() {
  json noise = measure_host_noise(20, 50);
  double sd = std::max(noise.value("cv", 0.0), noise["kernel"].value("cv", 0.0));
  int tests = static_cast<int>(ctx_.backends.size() * (planned_.size() + 1));
  int n = std::clamp(repeats_for(sd, cfg_.ci_target, tests, 0.05, 0.8), cfg_.repeat, max_rounds());
  results_.config["ci"] = {{"target", cfg_.ci_target}, {"host_noise_cv", sd}, {"planned_repeats", n}};
  progress(fmt::format("--ci: the host varies by {:.1f} % (noise probe), so about {} repeats for a ±{:.0f} % resolution; "
                       "more rounds where the rows' own spread needs them",
                       sd * 100, n, cfg_.ci_target * 100));
  return n;
}

bool Scheduler::round_fits(const std::set<std::string>& names) const {
  if (cfg_.budget.count() <= 0) return true;
  std::chrono::nanoseconds next{0};
  for (const auto& n : names)
    if (auto it = round_time_.find(n); it != round_time_.end()) next += it->second;
  return std::chrono::steady_clock::now() - start_ + next <= cfg_.budget;
}

void Scheduler::record_ci(int rounds, const std::string& stopped_by) {
  std::vector<RowResolution> rows = wall_resolution(results_.runs, 0.05, 0.8);
  json over = json::array();
  double worst = 0;
  for (const auto& r : rows) {
    worst = std::max(worst, r.min_detectable_change);
    if (r.min_detectable_change > cfg_.ci_target)
      over.push_back({{"backend", r.backend}, {"workload", r.workload}, {"n", r.n}, {"min_detectable_change", r.min_detectable_change}});
  }
  json& ci = results_.config["ci"];
  ci["rounds"] = rounds;
  ci["stopped_by"] = stopped_by;
  ci["worst_min_detectable_change"] = worst;
  ci["reached"] = over.empty();
  ci["rows_over_target"] = over;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (over.empty())
    progress(fmt::format("--ci: every wall-time row resolves a ±{:.0f} % change (worst {:.1f} %) after {} rounds, {:.0f} s",
                         cfg_.ci_target * 100, worst * 100, rounds, elapsed));
  else
    log::warn("--ci: the host is too noisy for ±{:.0f} % {}: {} of {} wall-time rows resolve only up to {:.0f} % after {} "
              "rounds ({:.0f} s); see config.ci.rows_over_target in results.json",
              cfg_.ci_target * 100, stopped_by == "budget" ? "within --budget" : fmt::format("in {} repeats", max_rounds()),
              over.size(), rows.size(), worst * 100, rounds, elapsed);
}

void Scheduler::probe_rows() {
  // Every row is tried before any is opened: the backend's own trial (unavailable: skipped, or
  // the end of the run when the row was asked for by name), then a trial with the row's options
  // where the kernel decides (a refused option is bad input, named with the kernel's reason).
  for (auto& row : plan_rows(cfg_.backends, cfg_.backend_options, cfg_.variants, snap::builtin_registry())) {
    snap::Availability a = row.spec->probe(cfg_.workdir);
    if (!a.available) {
      if (row.required) fail(Errc::kUnsupported, "{} is unavailable here: {}", describe_row(row), a.reason);
      log::warn("skipping backend {}: {}", row.name, a.reason);
      results_.config["skipped_backends"][row.name] = a.reason;
      continue;
    }
    if (std::string why = variant_dir_conflict(cfg_.workdir, row); !why.empty())
      fail(Errc::kInvalidInput, "{}: {}", describe_row(row), why);
    if (!row.options.empty() && row.spec->try_options) {
      snap::Availability o = row.spec->try_options(cfg_.workdir, row.options);
      if (!o.available) fail(Errc::kInvalidInput, "{}: {}", describe_row(row), o.reason);
    }
    rows_.push_back(std::move(row));
  }
  if (rows_.empty()) fail(Errc::kUnsupported, "no backend is available here (see cowbench doctor)");
}

void Scheduler::open_backends() {
  for (const auto& row : rows_) {
    const std::string& name = row.name;
    Backend b;
    b.name = name;
    b.spec = row.spec;
    // Each row in a directory of its own: a variant's options may change what its snapshots
    // hold on disk (metacopy files, redirects), so it never shares the backend's store.
    std::string root = path_join(cfg_.workdir, name), store = path_join(root, "store");
    try {
      b.sn = row.spec->create(root, row.options);
    } catch (const Error& e) {
      // What the options ask for is missing here (overlayfs fs=xfs without mkfs.xfs): unavailable, as a failed probe.
      if (e.code() != Errc::kUnsupported || row.required) throw;
      log::warn("skipping backend {}: {}", name, e.what());
      results_.config["skipped_backends"][name] = e.what();
      continue;
    }
    record_variant_dir(cfg_.workdir, row);
    if (auto stale = snap::remove_stale_snapshots(*b.sn); !stale.empty())
      log::info("{}: removed {} snapshots a killed run left", name, stale.size());
    record_filesystem(results_.host, name, is_mount_point(store) ? store : root);
    results_.host["storage"][name] = b.sn->storage();  // loop device and its mode, or none
    ctx_.backends.push_back(std::move(b));
  }
  if (ctx_.backends.empty()) fail(Errc::kUnsupported, "no backend is available here (see cowbench doctor)");
  import_images();
}

void Scheduler::import_images() {
  // Side by side, as many as the CPUs this process may use (--cpu's taken out): an import is
  // about one CPU's work (applying the layers' files, a FUSE daemon's), and the rows are
  // independent. The default run's five imports into a new work directory, on the 2-core VM,
  // until the first container: 25–27 s one after another, 16–17 s two at a time. So each row's
  // import_ns is measured beside another import. After a failed import no other starts (the
  // failure is the run's error).
  std::vector<json> disk(ctx_.backends.size());
  std::atomic<bool> failed{false};
  unsigned cpus = static_cast<unsigned>(std::max<size_t>(1, allowed_cpus().size()));
  side_by_side(ctx_.backends.size(), cpus, [&](size_t i) {
    if (failed) return;
    Backend& b = ctx_.backends[i];
    progress(fmt::format("importing {} into {}", cfg_.image, b.name));
    try {
      b.image = hooks_.import_image(*b.sn, b.name);
      disk[i] = layer_disk(*b.sn, b.image.top);
    } catch (...) {
      failed = true;
      throw;
    }
  });
  for (size_t i = 0; i < ctx_.backends.size(); ++i) {
    const Backend& b = ctx_.backends[i];
    json& rec = results_.config["images"][b.name];
    rec = {{"top", b.image.top},
           {"import_ns", b.image.import_ns},
           {"cached", b.image.cached},
           // (hooks that import by other means, as tests do: the run's policy)
           {"devices", b.image.devices.empty() ? cfg_.devices : b.image.devices},
           {"skipped_devices", b.image.skipped_devices}};
    rec.update(disk[i]);
  }
}

void Scheduler::plan_workloads() {
  Backend& first = ctx_.backends.front();
  files_ = list_image_files(*first.sn, first.image.top, ctx_.containers);
  for (const auto& f : files_) ctx_.lower_files[f.path] = static_cast<int64_t>(f.size);
  std::vector<std::string> names = cfg_.workloads.empty() ? wl::default_workloads() : cfg_.workloads;
  if (cfg_.shard) {
    results_.config["shard"] = {{"index", cfg_.shard->index}, {"count", cfg_.shard->count}, {"workloads", names}};
    names = shard_workloads(names, *cfg_.shard);
  }
  for (const auto& n : names) {
    Planned p;
    p.name = n;
    p.w = wl::make_run_workload(n, cfg_.execs, cfg_.timeout);
    p.plan = p.w->plan(files_, cfg_.seed);
    if (p.w->shape() == wl::Shape::kScaleOut && !cfg_.scale_out.empty()) p.plan["containers"] = cfg_.scale_out;
    if (p.w->shape() == wl::Shape::kFamily && !cfg_.family_sizes.empty()) p.plan["counts"] = cfg_.family_sizes;
    for (const auto& m : p.w->modified_lower_files(p.plan)) p.modified.insert(m);
    results_.config["plans"][n] = {{"modified_lower_files", p.modified.size()}};
    results_.config["plans"][n].update(p.w->plan_facts(p.plan));
    planned_.push_back(std::move(p));
  }
}

void Scheduler::decide_cleanup() {
  uint64_t image_bytes = 0;
  for (const auto& f : files_) image_bytes += f.size;
  int containers = 0;
  for (const auto& p : planned_)
    if (p.w->shape() == wl::Shape::kContainer) containers += max_rounds() + (cfg_.warmup ? 1 : 0);
  std::vector<snap::Granularity> granularities;
  for (const auto& b : ctx_.backends) granularities.push_back(b.granularity());
  results_.config["cleanup"] = ctx_.retired.decide(cfg_.workdir, image_bytes, containers, granularities);
}

void Scheduler::save() {
  if (json n = ctx_.hygiene.noise_floor(); !n.is_null()) results_.host["noise_floor"] = std::move(n);
  make_dirs(cfg_.out);
  rep::save_results(results_, path_join(cfg_.out, "results.json"));
}

void Scheduler::run_one(Backend& b, Planned& p, int repeat) {
  std::string label = fmt::format("{} {} {}", b.name, p.name, repeat < 0 ? "warm-up" : fmt::format("#{}", repeat + 1));
  progress(label);
  std::vector<rep::Run> runs;
  try {
    runs = make_executor(p.w->shape(), ctx_)->run(b, p, repeat);
  } catch (const Error& e) {
    if (e.code() == Errc::kInterrupted || stop_) return;
    rep::Run failed = ctx_.new_run(b, p.name, repeat);
    failed.status = "failed";
    failed.error = e.what();
    runs.push_back(failed);
    log::warn("{}: {}", label, e.what());
  }
  ++done_;
  if (repeat < 0) return;  // warm-up: not recorded
  for (auto& r : runs) {
    if (r.status != "ok") log::warn("{} failed: {}", label, r.error);
    if (r.lost_events > 0) results_.lost_events += r.lost_events;
    results_.runs.push_back(std::move(r));
  }
  // The file on disk keeps up with the runs, rewritten at most every 2 s (it grows to megabytes;
  // rewriting it after every run took 6 s of a default matrix). The end of the matrix, an
  // interruption included, saves it whole.
  if (auto now = std::chrono::steady_clock::now(); now - last_save_ >= std::chrono::seconds(2)) {
    save();
    last_save_ = now;
  }
}

void Scheduler::run_rounds() {
  // One unrecorded warm-up round — every container workload once on every backend — mounts the
  // image, brings the files each workload touches into the caches (the lower files, a scratch
  // file system's image blocks) and settles the backends before anything is measured: without
  // it the first repeat of each workload reads its targets from disk and stands out.
  int first = cfg_.warmup ? -1 : 0;
  auto warms = [](const Planned& p) { return p.w->shape() == wl::Shape::kContainer; };
  int warm_ups = cfg_.warmup ? static_cast<int>(std::count_if(planned_.begin(), planned_.end(), warms)) : 0;
  size_t nb = ctx_.backends.size();
  int planned = cfg_.ci_target > 0 ? plan_ci_repeats() : cfg_.repeat;  // rounds of every workload
  total_ = static_cast<int>(nb) * (planned * static_cast<int>(planned_.size()) + warm_ups);
  std::vector<std::pair<std::string, wl::Shape>> shapes;
  std::set<std::string> all;
  for (const auto& p : planned_) {
    shapes.emplace_back(p.name, p.w->shape());
    all.insert(p.name);
  }
  int rounds = planned;  // grows with --until-ci and --ci
  std::set<std::string> more;  // past the planned repeats: the workloads that get another round
  std::string stopped_by = "target";
  int rep = first;
  for (; rep < rounds && !stop_; ++rep) {
    const std::set<std::string>& names = rep >= planned ? more : all;
    if (rep >= 2 && !round_fits(names)) {
      stopped_by = "budget";
      progress(fmt::format("--budget: another round would end past {} s; stopping after {} rounds", cfg_.budget.count(), rep));
      break;
    }
    for (auto& p : planned_) {
      if (rep < 0 && !warms(p)) continue;
      if (!names.count(p.name)) continue;
      auto t0 = std::chrono::steady_clock::now();
      // Rotate the backend order every repeat so that drift hits every backend alike.
      for (size_t k = 0; k < nb && !stop_; ++k) run_one(ctx_.backends[(k + static_cast<size_t>(rep - first)) % nb], p, rep);
      if (rep >= 0) round_time_[p.name] = std::chrono::steady_clock::now() - t0;
    }
    if (rep + 1 >= planned && rep + 1 < max_rounds() && !stop_) {
      if (cfg_.ci_target > 0)
        more = unresolved_workloads(wall_resolution(results_.runs, 0.05, 0.8), shapes, cfg_.ci_target);
      else
        more = imprecise_workloads(rep::summarize(results_.runs), shapes, cfg_.until_ci);
      if (!more.empty() && (cfg_.until_ci > 0 || cfg_.ci_target > 0)) {
        rounds = rep + 2;
        total_ += static_cast<int>(nb * more.size());
        progress(cfg_.ci_target > 0
                     ? fmt::format("another round for {}: a wall-time row cannot yet resolve ±{:.0f} %", fmt::join(more, ", "),
                                   cfg_.ci_target * 100)
                     : fmt::format("another round for {}: the 95 % interval of a median is wider than {:.1f} %",
                                   fmt::join(more, ", "), cfg_.until_ci * 100));
      }
    } else if (rep + 1 >= max_rounds()) {
      stopped_by = "max_repeat";
    }
  }
  if (cfg_.ci_target > 0 && !stop_) record_ci(std::max(0, rep), stopped_by);
}

rep::Results Scheduler::run() {
  // --cpu: the containers on a CPU of their own (one kept free of other work, e.g. isolcpus=),
  // the runner and what it starts off it.
  ctx_.container_cpu = choose_container_cpu(cfg_.cpu);
  KeepOffCpu keep_off(ctx_.container_cpu);
  ctx_.layout = detect_cgroup_layout();
  record_config();
  {
    // What is checked before any work: a forced trace mode that cannot work here, rows that
    // are unavailable or whose options the kernel refuses. A work directory made only for
    // them goes again when they fail.
    struct RemoveIfFailed {
      std::vector<std::string> made;  // deepest first
      bool armed = true;
      ~RemoveIfFailed() {
        if (armed)
          for (const auto& d : made) ::rmdir(d.c_str());  // empty: the probes leave nothing
      }
    } remove_if_failed;
    for (auto p = std::filesystem::absolute(cfg_.workdir); !p.empty() && !std::filesystem::exists(p); p = p.parent_path())
      remove_if_failed.made.push_back(p.string());
    make_dirs(cfg_.workdir);
    if (cfg_.trace != "off" && hooks_.make_tracer) tracer_ = hooks_.make_tracer(cfg_.trace);
    ctx_.tracer = tracer_.get();
    results_.trace_mode = tracer_ ? tracer_->mode() : "off";
    probe_rows();
    remove_if_failed.armed = false;
  }
  results_.host = describe_host(cfg_.workdir);
  if (cfg_.drop_caches_at_start) progress("writing back and dropping the caches first (--keep-caches: not)");
  results_.config["caches_dropped_at_start"] = cfg_.drop_caches_at_start && drop_caches();
  ctx_.containers = path_join(cfg_.workdir, "containers");
  make_dirs(ctx_.containers);
  open_backends();
  plan_workloads();
  decide_cleanup();
  // Whatever ends the matrix (done, interrupted, an error), the retired containers go.
  struct RemoveRetired {
    Scheduler* s;
    ~RemoveRetired() { s->ctx_.retired.remove_all(); }
  } remove_retired_at_exit{this};
  std::vector<std::string> bnames;
  for (const auto& b : ctx_.backends) bnames.push_back(b.name);
  results_.config["backends"] = bnames;
  for (const auto& [n, o] : cfg_.backend_options) results_.config["backend_options"][n] = o;
  results_.config["variants"] = variants_json(cfg_.variants);
  std::vector<std::string> wnames;
  for (const auto& p : planned_) wnames.push_back(p.name);
  results_.config["workloads"] = wnames;
  save();

  run_rounds();

  if (size_t n = ctx_.retired.kept()) progress(fmt::format("removing {} containers", n));
  ctx_.retired.remove_all();
  results_.config["cleanup_early_removals"] = ctx_.retired.early_removals();
  if (tracer_) results_.trace_extra = tracer_->details();
  results_.interrupted = stop_.load();
  save();
  progress(stop_ ? "interrupted: kept the finished runs" : "done");
  return results_;
}

}  // namespace

rep::Results run_matrix(const RunConfig& cfg, const RunHooks& hooks, const std::atomic<bool>& stop) {
  if (cfg.repeat < 1) fail(Errc::kInvalidInput, "--repeat must be at least 1, not {}", cfg.repeat);
  if (cfg.cache != "warm" && cfg.cache != "cold") fail(Errc::kInvalidInput, "--cache takes warm or cold, not '{}'", cfg.cache);
  if (!(cfg.until_ci >= 0 && cfg.until_ci < 1))
    fail(Errc::kInvalidInput, "--until-ci takes a percentage above 0 and below 100, not {}", cfg.until_ci * 100);
  if ((cfg.until_ci > 0 || cfg.ci_target > 0) && cfg.max_repeat < cfg.repeat)
    fail(Errc::kInvalidInput, "--max-repeat ({}) must be at least --repeat ({})", cfg.max_repeat, cfg.repeat);
  if (cfg.until_ci > 0 && cfg.ci_target > 0) fail(Errc::kInvalidInput, "--until-ci and --ci choose repeats two ways: give one");
  if (!(cfg.ci_target >= 0 && cfg.ci_target < 1))
    fail(Errc::kInvalidInput, "--ci-target takes a percentage above 0 and below 100, not {}", cfg.ci_target * 100);
  if (!hooks.import_image) fail(Errc::kFailure, "run_matrix needs an image importer");
  plan_rows(cfg.backends, cfg.backend_options, cfg.variants, snap::builtin_registry());  // bad rows: fail now
  if (cfg.shard) shard_workloads(cfg.workloads.empty() ? wl::default_workloads() : cfg.workloads, *cfg.shard);  // none: fails now
  Scheduler s(cfg, hooks, stop);
  return s.run();
}

}  // namespace cowbench
