// CLI commands that run workloads: `run` (the main job) and `list workloads`.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "ebpf/trace_modes.h"
#include "images/image.h"
#include "runner/cli/command.h"
#include "runner/host_lock.h"
#include "runner/hygiene.h"
#include "runner/rows.h"
#include "reports/reports.h"
#include "runner/run.h"
#include "runner/run_hooks.h"
#include "workloads/exec.h"
#include "workloads/workload.h"

namespace cowbench {
namespace {

// "600", "90s", "10m", "1h" → seconds; anything else is a usage error naming it.
std::chrono::seconds parse_budget(const std::string& text) {
  size_t used = 0;
  long long n = -1;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
  }
  std::string unit = n >= 0 ? text.substr(used) : "";
  long long scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (n <= 0 || scale == 0) fail(Errc::kUsage, "--budget takes a positive time such as 600, 90s, 10m or 1h, not '{}'", text);
  return std::chrono::seconds(n * scale);
}

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) { g_stop.store(true); }

// SIGINT/SIGTERM set the stop flag (the matrix ends after killing the running container);
// a second Ctrl-C kills cowbench at once (SA_RESETHAND).
class StopOnSignals {
 public:
  StopOnSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopOnSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// "1,2,4" → {1, 2, 4}, each from 1 to `most`; anything else is bad input naming `option`.
std::vector<int> parse_counts(const std::string& text, const char* option, const char* what, int most) {
  std::vector<int> out;
  for (const auto& s : split_list(text)) {
    try {
      size_t used = 0;
      int n = std::stoi(s, &used);
      if (used != s.size() || n < 1 || n > most) throw std::out_of_range("n");
      out.push_back(n);
    } catch (const std::exception&) {
      fail(Errc::kInvalidInput, "{} takes {} from 1 to {}, not '{}'", option, what, most, s);
    }
  }
  return out;
}

std::string human_ns(int64_t ns) {
  if (ns < 0) return "-";
  if (ns < 10'000) return fmt::format("{} ns", ns);
  if (ns < 10'000'000) return fmt::format("{:.1f} us", static_cast<double>(ns) / 1e3);
  if (ns < 10'000'000'000) return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.2f} s", static_cast<double>(ns) / 1e9);
}

void print_summary(const rep::Results& r, std::ostream& out) {
  out << fmt::format("{:<16} {:<20} {:>3} {:>12} {:>7} {:>9} {:>12}\n", "backend", "workload", "n", "median wall",
                     "cv", "copy-ups", "upper bytes");
  for (const auto& s : rep::summarize(r.runs)) {
    std::string wl = s.workload.size() > 20 ? s.workload.substr(0, 17) + "..." : s.workload;
    out << fmt::format("{:<16} {:<20} {:>3} {:>12} {:>7} {:>9} {:>12}\n", s.backend, wl, s.n, human_ns(s.median_wall_ns),
                       s.cv < 0 ? "-" : fmt::format("{:.1f}%", s.cv * 100),
                       s.median_truth_copyups < 0 ? "-" : std::to_string(s.median_truth_copyups),
                       s.median_upper_bytes < 0 ? "-" : std::to_string(s.median_upper_bytes));
  }
}

int run_command(RunConfig cfg, const std::string& backends, const std::string& workloads,
                const std::vector<std::string>& backend_opts, const std::vector<std::string>& variants,
                const std::string& scale_out, const std::string& family_sizes, bool wait_for_host,
                const std::vector<wl::ExecSpec>& execs) {
  cfg.backends = split_list(backends);
  for (const auto& v : variants) cfg.variants.push_back(parse_variant(v));
  cfg.workloads = split_list(workloads);
  // exec:CMD of --workloads and every --exec become exec workloads listed by their display names;
  // --exec alone (no --workloads) runs only the commands.
  for (auto& w : cfg.workloads)
    if (w.starts_with("exec:") && w.size() > 5) {
      cfg.execs.push_back({w.substr(5), "", ""});
      w = wl::exec_display_name(cfg.execs.back());
    }
  for (const auto& e : execs) {
    cfg.execs.push_back(e);
    cfg.workloads.push_back(wl::exec_display_name(e));
  }
  wl::check_workload_names(cfg.workloads, cfg.execs);
  cfg.scale_out = parse_counts(scale_out, "--scale-out", "container counts", 256);
  cfg.family_sizes = parse_counts(family_sizes, "--family-sizes", "image counts", 64);
  for (const auto& o : backend_opts) {
    auto colon = o.find(':');
    if (colon == std::string::npos || colon == 0)
      fail(Errc::kInvalidInput, "--backend-opt takes BACKEND:KEY=VALUE[,KEY=VALUE], not '{}'", o);
    auto parsed = snap::parse_options(o.substr(colon + 1));
    cfg.backend_options[o.substr(0, colon)].insert(parsed.begin(), parsed.end());
  }
  // Workload names are checked before anything is mounted.
  for (const auto& w : cfg.workloads) wl::make_run_workload(w, cfg.execs, cfg.timeout);
  // So are the rows (backend and variant names, their options) and --cpu, before waiting for
  // the host lock that every measuring run holds (another run on this host would distort this
  // one's figures, and this one theirs).
  plan_rows(cfg.backends, cfg.backend_options, cfg.variants, snap::builtin_registry());
  choose_container_cpu(cfg.cpu);
  img::parse_ref(cfg.image);  // a malformed reference, a missing rootfs: file or dir: directory
  HostLockOptions lock_options;
  lock_options.wait = wait_for_host;
  lock_options.workdir = cfg.workdir;
  HostLock host_lock(lock_options);
  if (host_lock.waited_ns() > 0)
    fmt::print(stderr, "cowbench: got the host lock after {}\n", human_ns(host_lock.waited_ns()));

  RunHooks hooks;
  hooks.import_image = make_image_importer(cfg);
  hooks.make_tracer = make_tracer_factory();
  StopOnSignals signals;
  g_stop = false;
  rep::Results r = run_matrix(cfg, hooks, g_stop);
  rep::write_reports(r, cfg.out);
  print_summary(r, std::cout);
  std::cout << "results: " << path_join(cfg.out, "results.json") << "\n";
  if (r.interrupted) {
    std::cerr << "cowbench: interrupted; the finished runs are in " << path_join(cfg.out, "results.json") << "\n";
    return 130;
  }
  for (const auto& run : r.runs)
    if (run.status != "ok") return 1;
  return 0;
}

int list_workloads(bool json) {
  auto cat = wl::workload_catalog();
  auto defaults = wl::default_workloads();
  auto is_default = [&](const std::string& n) { return std::find(defaults.begin(), defaults.end(), n) != defaults.end(); };
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [n, d] : cat) out.push_back({{"name", n}, {"description", d}, {"default", is_default(n)}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& [n, d] : cat) std::cout << fmt::format("{:<18} {} {}\n", n, is_default(n) ? "*" : " ", d);
  std::cout << "(* = run by default)\n";
  return 0;
}

}  // namespace

void add_run_commands(CLI::App& app, Commands& out) {
  struct Opts {
    RunConfig cfg;
    std::string backends, workloads, scale_out, family_sizes;
    std::vector<std::string> backend_opts, variants;
    std::vector<std::string> execs, exec_names, readies;  // --exec, --exec-name, --ready
    bool no_warmup = false;
    int timeout_s = 300;
    double until_ci_pct = 0;
    std::string shard;
    bool ci = false;
    double ci_target_pct = 10;
    std::string budget;
    bool json = false;
    bool no_wait = false;
    bool keep_caches = false;
  };
  auto o = std::make_shared<Opts>();
  auto* run = app.add_subcommand("run", "run workloads in containers on every backend and measure them");
  run->add_option("--backends", o->backends,
                  "comma-separated rows: backends and --variant names, or all (default: every available backend of the "
                  "default set (see list backends), then every variant; all: every available backend)");
  run->add_option("--workloads", o->workloads, "comma-separated workloads, or exec:CMD (default: see list workloads)");
  // One value per occurrence, commas and quotes kept; paired in command-line order (parse_order).
  auto* exec_opt = run->add_option("--exec", o->execs,
                                   "a command to run with /bin/sh -c in the container, verbatim (repeatable; "
                                   "with --exec and no --workloads only the commands run)")
                       ->allow_extra_args(false);
  auto* exec_name_opt = run->add_option("--exec-name", o->exec_names,
                                        "the name of the --exec of the same position in reports (repeatable: one per "
                                        "--exec or none; default: exec: and the command's first 32 characters)")
                            ->allow_extra_args(false);
  auto* ready_opt = run->add_option("--ready", o->readies,
                                    "REGEX: the --exec before it ends when a line of its output (stdout or stderr) "
                                    "matches; its time is the time to that line, then it is killed; no match by "
                                    "--timeout fails the run")
                        ->allow_extra_args(false);
  run->add_option("--image", o->cfg.image,
                  "oci:DIR[:TAG] | docker-archive:FILE | synth:PROFILE[@SEED] | rootfs:FILE.tar[.gz|.zst] | dir:PATH")
      ->capture_default_str();
  run->add_option("--devices", o->cfg.devices,
                  "device nodes in the image: skip (left out, counted), refuse (the import fails) or allow (mknod)")
      ->capture_default_str()
      ->check(CLI::IsMember({"refuse", "skip", "allow"}));
  run->add_option("--platform", o->cfg.platform, "os/arch[/variant] to pick from a multi-platform image (default: this host)");
  run->add_option("--repeat", o->cfg.repeat, "measured repeats per backend and workload")->capture_default_str()->check(CLI::Range(1, 1000));
  run->add_option("--cache", o->cfg.cache, "warm, or cold: drop caches before each run")->capture_default_str()->check(CLI::IsMember({"warm", "cold"}));
  run->add_option("--trace", o->cfg.trace, "copy-up tracing: " + ebpf::trace_mode_list())->capture_default_str()
      ->check(CLI::IsMember(ebpf::trace_mode_words()));
  run->add_option("--workdir", o->cfg.workdir, "snapshots, cached image layers, scratch filesystems")->capture_default_str();
  run->add_option("--out", o->cfg.out, "where results.json and the reports go")->capture_default_str();
  run->add_option("--seed", o->cfg.seed, "seed for the workloads' choice of files and offsets")->capture_default_str();
  run->add_option("--timeout", o->timeout_s, "seconds before a container is killed")->capture_default_str()->check(CLI::Range(1, 86400));
  run->add_option("--backend-opt", o->backend_opts,
                  "BACKEND:KEY=VALUE[,...] option of the plain backend's row (repeatable; see list backends)");
  run->add_option("--variant", o->variants,
                  "NAME=BACKEND:KEY=VALUE[,...]: a row NAME of its own that runs BACKEND with these options (repeatable), "
                  "e.g. ovl-meta=overlayfs:metacopy=on; its own directory under --workdir, interleaved like a backend, "
                  "NAME in the results. A variant runs even when an explicit --backends does not name it (after the "
                  "rows it names)")
      ->allow_extra_args(false);
  run->add_option("--scale-out", o->scale_out, "container counts for scale-out (default 1,2,4,8,16)");
  run->add_option("--family-sizes", o->family_sizes, "image counts for image-family (default 1,2,4,8; at most 64)");
  run->add_option("--until-ci", o->until_ci_pct,
                  "after --repeat rounds, more rounds of a workload while the 95 % interval of one of its medians "
                  "is wider than PCT % of it (up to --max-repeat)")
      ->check(CLI::Range(0.0, 99.0));
  auto* max_repeat = run->add_option("--max-repeat", o->cfg.max_repeat, "most repeats per workload with --until-ci (--ci: 50)")
                         ->capture_default_str()
                         ->check(CLI::Range(1, 1000));
  run->add_flag("--ci", o->ci,
                "the CI profile: repeats from the host noise measured at the start, then more rounds until every "
                "wall-time row could detect a change of --ci-target (as `compare` would), within --budget; says when "
                "the host is too noisy for it");
  run->add_option("--ci-target", o->ci_target_pct, "with --ci: the change, in percent, every wall-time row must be able to detect")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 99.0));
  run->add_option("--budget", o->budget, "no round starts that would end past this time from the start: 600, 90s, 10m, 1h");
  run->add_option("--cpu", o->cfg.cpu,
                  "pin the containers' workloads to one CPU (best one kept free, e.g. isolcpus=); cowbench and "
                  "its daemons keep off it: none, last, or a CPU number")
      ->capture_default_str();
  run->add_option("--shard", o->shard,
                  "run shard I of N (0-based, e.g. $JOB_COMPLETION_INDEX/3): the workloads sorted by name, every N-th "
                  "from the I-th, each on every backend; `cowbench merge` joins the shards' results");
  run->add_flag("--no-warmup", o->no_warmup, "skip the unrecorded warm-up round (each workload once per backend)");
  run->add_flag("--fresh", o->cfg.fresh, "ignore cached image layers and import again");
  run->add_flag("--keep-caches", o->keep_caches,
                "start without writing back and dropping the caches (by default a run starts from dropped caches, "
                "whatever ran before it: on ext4 without a journal, files deleted in the minutes before slow every "
                "file creation)");
  run->add_flag("--no-wait", o->no_wait,
                "fail at once (exit 1, naming the holder) when another run holds the host lock, instead of waiting for "
                "it; the lock file is /run/cowbench.lock ($COWBENCH_LOCK_FILE to change)");
  out.push_back({run, [o, max_repeat, run, exec_opt, exec_name_opt, ready_opt] {
                   RunConfig cfg = o->cfg;
                   cfg.version = COWBENCH_VERSION;
                   cfg.warmup = !o->no_warmup;
                   cfg.drop_caches_at_start = !o->keep_caches;
                   cfg.until_ci = o->until_ci_pct / 100;
                   if (o->ci) {
                     cfg.ci_target = o->ci_target_pct / 100;
                     if (max_repeat->count() == 0) cfg.max_repeat = 50;
                   }
                   if (!o->budget.empty()) cfg.budget = parse_budget(o->budget);
                   cfg.timeout = std::chrono::seconds(o->timeout_s);
                   if (!o->shard.empty()) cfg.shard = parse_shard(o->shard);
                   std::vector<std::pair<std::string, std::string>> in_order;
                   size_t ne = 0, nn = 0, nr = 0;
                   for (const CLI::Option* opt : run->parse_order()) {
                     if (opt == exec_opt && ne < o->execs.size()) in_order.emplace_back("exec", o->execs[ne++]);
                     if (opt == exec_name_opt && nn < o->exec_names.size()) in_order.emplace_back("exec-name", o->exec_names[nn++]);
                     if (opt == ready_opt && nr < o->readies.size()) in_order.emplace_back("ready", o->readies[nr++]);
                   }
                   return run_command(cfg, o->backends, o->workloads, o->backend_opts, o->variants, o->scale_out, o->family_sizes, !o->no_wait,
                                      wl::pair_exec_options(in_order));
                 }});

  // `list` was made by add_host_commands; add `workloads` to it.
  CLI::App* list = app.get_subcommand("list");
  auto* workloads = list->add_subcommand("workloads", "the built-in workloads and what each does");
  workloads->add_flag("--json", o->json, "print JSON");
  out.push_back({workloads, [o] { return list_workloads(o->json); }});
}

}  // namespace cowbench
