// What the Markdown and HTML reports say (see report_model.h).
#include "reports/report_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "reports/family.h"
#include "reports/metrics.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

constexpr double kNoisyCv = 0.10;         // wall-time variation worth a warning
constexpr double kAmplification = 2.0;    // copy-up bytes / bytes written worth a finding

void add_once(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// The values of `key` in a list of (key, values) kept in first-seen order; added when missing.
template <typename K, typename V>
V& bucket(std::vector<std::pair<K, V>>& list, const K& key) {
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& x) { return x.first == key; });
  if (it == list.end()) it = list.insert(list.end(), {key, V{}});
  return it->second;
}

// A scalar of a JSON object as text ("" when absent or not a scalar).
std::string scalar(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null() || it->is_structured()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// host.noise_floor.cv (the in-memory probe) or host.noise_floor.kernel.cv (the system-call
// probe), when the run measured it.
std::optional<double> noise_floor_cv(const Results& r, bool kernel = false) {
  auto it = r.host.find("noise_floor");
  if (it == r.host.end() || !it->is_object()) return std::nullopt;
  const json* probe = &*it;
  if (kernel) {
    auto k = it->find("kernel");
    if (k == it->end() || !k->is_object()) return std::nullopt;
    probe = &*k;
  }
  auto cv = probe->find("cv");
  if (cv == probe->end() || !cv->is_number()) return std::nullopt;
  return cv->get<double>();
}

std::string cell(int64_t v, Unit u) { return v < 0 ? "—" : format_value(u, static_cast<double>(v)); }
std::string cell(const Sourced& s, Unit u) { return cell(s.value, u) + (s.ground_truth ? " †" : ""); }

// "a", "a and b", "a, b and c".
std::string join_words(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
  return out;
}

// The median of a numeric extra field over runs (NaN when no run has it).
double extra_median(const std::vector<const Run*>& runs, const char* key) {
  std::vector<double> v;
  for (const Run* r : runs) {
    auto it = r->extra.find(key);
    if (it != r->extra.end() && it->is_number()) v.push_back(it->get<double>());
  }
  return median(v);
}

// Least-squares slope of y over x (NaN with fewer than two distinct x).
double slope(const std::vector<std::pair<double, double>>& pts) {
  if (pts.size() < 2) return NAN;
  double mx = 0, my = 0;
  for (auto [x, y] : pts) mx += x, my += y;
  mx /= static_cast<double>(pts.size());
  my /= static_cast<double>(pts.size());
  double num = 0, den = 0;
  for (auto [x, y] : pts) num += (x - mx) * (y - my), den += (x - mx) * (x - mx);
  return den > 0 ? num / den : NAN;
}

// The runs whose host load was measured, and those of them taken while the host was busy.
struct BusyRuns {
  int measured = 0;
  std::vector<const Run*> busy;
  double most_outside_cpus = 0;  // over the measured runs
  double most_steal = 0;         // share of the CPUs' time, over the measured runs
};
BusyRuns busy_runs(const Results& r) {
  BusyRuns b;
  for (const auto& run : r.runs) {
    if (!run.host_load) continue;
    const HostLoad& h = *run.host_load;
    ++b.measured;
    if (h.busy) b.busy.push_back(&run);
    b.most_outside_cpus = std::max(b.most_outside_cpus, h.outside_cpus());
    if (h.window_ns > 0 && h.cpus > 0)
      b.most_steal = std::max(b.most_steal, static_cast<double>(h.steal_ns) / (static_cast<double>(h.window_ns) * h.cpus));
  }
  return b;
}

// "3 of 75 runs were taken while the host was busy (...)": runs whose conditions were not the
// benchmark's own. Nothing when no run measured the host's load or none was busy.
std::optional<std::string> busy_host_finding(const Results& r) {
  BusyRuns b = busy_runs(r);
  if (b.busy.empty()) return std::nullopt;
  double outside = 0, steal = 0;
  std::vector<std::string> which;
  for (const Run* run : b.busy) {
    const HostLoad& h = *run->host_load;
    outside = std::max(outside, h.outside_cpus());
    if (h.window_ns > 0 && h.cpus > 0)
      steal = std::max(steal, static_cast<double>(h.steal_ns) / (static_cast<double>(h.window_ns) * h.cpus));
    if (which.size() < 5) which.push_back(fmt::format("{} on {} #{}", run->workload, run->backend, run->repeat + 1));
  }
  if (b.busy.size() > which.size()) which.push_back(fmt::format("{} more", b.busy.size() - which.size()));
  return fmt::format("{} of {} runs were taken while the host was busy (other work kept up to {:.1f} CPUs busy on "
                     "average during one, the hypervisor took up to {} of the CPUs' time; busy means more than {:.1f} "
                     "CPU or {}): {}. Their figures say more about the host than about the backend; they are marked "
                     "in results.csv (busy).",
                     b.busy.size(), b.measured, outside, format_value(Unit::kFraction, steal), kBusyOutsideCpus,
                     format_value(Unit::kFraction, kBusyStealShare), join_words(which));
}

std::vector<std::string> facts(const Results& r) {
  std::vector<std::string> out;
  const json& c = r.config;
  std::vector<std::string> run;
  if (auto v = scalar(c, "version"); !v.empty()) run.push_back("cowbench " + v);
  if (auto v = scalar(c, "image"); !v.empty()) run.push_back("image " + v);
  if (auto v = scalar(c, "repeat"); !v.empty())
    run.push_back(v + (v == "1" ? " repeat" : " repeats") + (c.value("warmup", false) ? " after a warm-up" : ""));
  if (auto v = scalar(c, "cache"); !v.empty()) run.push_back(v + " cache");
  if (auto v = scalar(c, "seed"); !v.empty()) run.push_back("seed " + v);
  if (!run.empty()) out.push_back(fmt::format("{}", fmt::join(run, " · ")));
  // The rows that are variants: which backend each runs on, with which options.
  if (auto v = c.find("variants"); v != c.end() && v->is_object() && !v->empty()) {
    std::vector<std::string> defs;
    for (const auto& [name, def] : v->items()) {
      std::vector<std::string> opts;
      if (def.contains("options") && def["options"].is_object())
        for (const auto& [k, val] : def["options"].items()) opts.push_back(k + "=" + (val.is_string() ? val.get<std::string>() : val.dump()));
      defs.push_back(fmt::format("{} = {}{}{}", name, scalar(def, "backend"), opts.empty() ? "" : " ", fmt::join(opts, ",")));
    }
    out.push_back(fmt::format("variants (a backend with options, a row of its own): {}", fmt::join(defs, "; ")));
  }
  const json& h = r.host;
  // A host in words: kernel, (the CPU model,) CPUs, memory, file systems.
  auto describe = [](const json& h, bool cpu_model) {
    std::vector<std::string> host;
    if (auto v = scalar(h, "kernel"); !v.empty()) host.push_back("Linux " + v + (h.contains("arch") ? " " + scalar(h, "arch") : ""));
    if (auto v = scalar(h, "cpu_model"); cpu_model && !v.empty()) host.push_back(v);
    if (auto v = scalar(h, "cpus"); !v.empty()) host.push_back(v + " CPUs");
    if (h.contains("memory_bytes") && h["memory_bytes"].is_number())
      host.push_back(format_bytes(h["memory_bytes"].get<double>()) + " memory");
    if (h.contains("filesystems") && h["filesystems"].is_object())
      for (const auto& [k, v] : h["filesystems"].items())
        if (v.is_string()) host.push_back(fmt::format("{} on {}", k == "workdir" ? "work dir" : k, v.get<std::string>()));
    return fmt::format("{}", fmt::join(host, " · "));
  };
  if (!r.testbeds.empty()) {
    // Merged from several hosts: each one named, and rows kept apart by it.
    out.push_back(fmt::format("merged from {} testbeds; each row is one backend on one testbed (“backend @ testbed”)",
                              r.testbeds.size()));
    for (const auto& t : r.testbeds) out.push_back(fmt::format("testbed {}: {}", t.name, describe(t.host, true)));
  } else if (std::string d = describe(h, false); !d.empty()) {
    out.push_back("host: " + d);
  }
  if (auto cv = noise_floor_cv(r)) {
    auto kernel = noise_floor_cv(r, true);
    out.push_back(fmt::format("host noise floor{}: the same in-memory work varied by {}{} between measurements (coefficient of "
                              "variation over {} samples)",
                              r.testbeds.empty() ? "" : " of testbed " + r.testbeds.front().name, format_value(Unit::kFraction, *cv),
                              kernel ? fmt::format(", the same system calls by {}", format_value(Unit::kFraction, *kernel)) : "",
                              h["noise_floor"].value("samples", 0)));
  }
  if (BusyRuns b = busy_runs(r); b.measured > 0 && b.busy.empty())
    out.push_back(fmt::format("host load: no run was taken while the host was busy (other work kept at most {:.1f} CPUs "
                              "busy on average during a run, steal at most {})",
                              b.most_outside_cpus, format_value(Unit::kFraction, b.most_steal)));
  out.push_back(fmt::format("trace: {}{}", r.trace_mode,
                            r.trace_mode == "off" ? "" : fmt::format(", {} lost events", r.lost_events)));
  return out;
}

// "startup: overlayfs was fastest (12.3 ms); copy took 5.21× as long (64.1 ms)."
std::optional<std::string> speed_finding(const std::string& w, const Grouped& g) {
  const SummaryRow *fast = nullptr, *slow = nullptr;
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    if (!s || s->median_wall_ns <= 0) continue;
    if (!fast || s->median_wall_ns < fast->median_wall_ns) fast = s;
    if (!slow || s->median_wall_ns > slow->median_wall_ns) slow = s;
  }
  if (!fast) return std::nullopt;
  std::string fast_name = row_backend(fast->backend, fast->testbed), slow_name = row_backend(slow->backend, slow->testbed);
  if (fast == slow) return fmt::format("{}: only {} has a result ({}).", w, fast_name, format_ns(fast->median_wall_ns));
  double ratio = static_cast<double>(slow->median_wall_ns) / static_cast<double>(fast->median_wall_ns);
  std::string s = fmt::format("{}: {} was fastest ({}); {} took {} as long ({}).", w, fast_name, format_ns(fast->median_wall_ns),
                              slow_name, format_ratio(ratio), format_ns(slow->median_wall_ns));
  if (fast->ci95_ns >= 0 && slow->ci95_ns >= 0 && fast->median_wall_ns + fast->ci95_ns >= slow->median_wall_ns - slow->ci95_ns)
    s += " Their 95 % intervals overlap: not a clear difference.";
  return s;
}

// "overlayfs copied up 1 GiB for 64 KiB of writes in db-random-write (16,384× the bytes written)."
std::vector<std::string> amplification_findings(const std::string& w, const Grouped& g) {
  std::vector<std::string> out;
  std::vector<std::string> none;
  std::vector<std::pair<std::string, std::vector<std::string>>> same;  // the sentence after the names → backends
  bool any_written = false;
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    if (!s) continue;
    double written = extra_median(g.ok_runs(b, w), "bytes_written");
    Sourced cu = copyup_bytes(*s);
    if (!(written > 0) || cu.value < 0) continue;
    any_written = true;
    if (cu.value == 0) {
      none.push_back(b);
    } else if (static_cast<double>(cu.value) >= kAmplification * written) {
      std::string tail = fmt::format("copied up {} for {} of writes in {} ({} the bytes written{}).",
                                     format_bytes(static_cast<double>(cu.value)), format_bytes(written), w,
                                     format_ratio(static_cast<double>(cu.value) / written), cu.ground_truth ? ", ground truth" : "");
      bucket(same, tail).push_back(b);
    }
  }
  for (const auto& [tail, backends] : same) out.push_back(join_words(backends) + " " + tail);
  if (any_written && !none.empty() && !out.empty())
    out.push_back(fmt::format("{} copied nothing up in {}.", join_words(none), w));
  // Backends without copy-up (extent-level CoW): what their writable layer grew by instead.
  std::vector<std::string> grew;
  double written_any = NAN;
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    double written = extra_median(g.ok_runs(b, w), "bytes_written");
    if (!s || !(written > 0) || copyup_bytes(*s).value >= 0 || s->median_upper_bytes < 0) continue;
    grew.push_back(fmt::format("{} on {}", format_bytes(static_cast<double>(s->median_upper_bytes)), b));
    written_any = written;
  }
  if (!grew.empty() && !out.empty())
    out.push_back(fmt::format("In {} the writable layer grew by {} for {} of writes.", w, join_words(grew), format_bytes(written_any)));
  // Block CoW (reflink, btrfs): the shared blocks the writes had to rewrite instead.
  std::vector<std::pair<std::string, std::vector<std::string>>> cow;  // the sentence after the names → backends
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    if (!s) continue;
    double written = extra_median(g.ok_runs(b, w), "bytes_written");
    Sourced by = cow_bytes(*s);
    if (!(written > 0) || by.value <= 0) continue;
    bucket(cow, fmt::format("rewrote {} of shared blocks (block CoW) for {} of writes in {} ({} the bytes written{}).",
                            format_bytes(static_cast<double>(by.value)), format_bytes(written), w,
                            format_ratio(static_cast<double>(by.value) / written), by.ground_truth ? ", ground truth" : ""))
        .push_back(b);
  }
  for (const auto& [tail, backends] : cow) out.push_back(join_words(backends) + " " + tail);
  return out;
}

// Page cache and disk growth per added container (least-squares slope over N), largest first,
// and the totals at the largest N.
std::vector<std::string> scale_findings(const std::string& family, const Grouped& g) {
  std::vector<std::string> out;
  for (auto [label, metric] : {std::pair{"page cache", &SummaryRow::median_page_cache_bytes},
                               std::pair{"disk", &SummaryRow::median_upper_bytes}}) {
    struct Line {
      std::string backend;
      double per;
      int64_t last;
      int n;
    };
    std::vector<Line> lines;
    for (const auto& b : g.backends()) {
      std::vector<std::pair<double, double>> pts;
      Line l{b, NAN, -1, 0};
      for (const auto& [n, w] : g.scale_points(family, b))
        if (const SummaryRow* s = g.row(b, w); s && s->*metric >= 0) {
          pts.emplace_back(n, static_cast<double>(s->*metric));
          l.last = s->*metric;
          l.n = n;
        }
      l.per = slope(pts);
      if (std::isfinite(l.per)) lines.push_back(l);
    }
    if (lines.empty()) continue;
    std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.per > b.per; });
    std::vector<std::string> per, total;
    for (const auto& l : lines) {
      per.push_back(fmt::format("{} {}", l.backend, format_bytes(std::max(0.0, l.per))));
      total.push_back(fmt::format("{} {}", l.backend, format_bytes(static_cast<double>(l.last))));
    }
    bool same_n = std::all_of(lines.begin(), lines.end(), [&](const Line& l) { return l.n == lines.front().n; });
    out.push_back(fmt::format("{}: {} per added container: {} ({}: {}).", family, label, join_words(per),
                              same_n ? fmt::format("in all at {} containers", lines.front().n) : "in all at the most containers",
                              join_words(total)));
  }
  return out;
}

// "fuse-overlayfs copied up 75 files in pkg-install only to delete them ..." (fuse-overlayfs
// copies a lower file up before it deletes it): copies that cost but do not stay.
std::optional<std::string> transient_copyup_finding(const std::string& w, const std::string& b, const Grouped& g) {
  const SummaryRow* s = g.row(b, w);
  if (!s || s->median_truth_copyups_dropped <= 0) return std::nullopt;
  return fmt::format("{} copied up {} files in {} only to delete them: it copies a lower file into the writable "
                     "layer before it hides it ({} of {} copy-ups stay).",
                     b, s->median_truth_copyups_dropped, w, s->median_truth_copyups - s->median_truth_copyups_dropped,
                     s->median_truth_copyups);
}

std::vector<std::string> findings(const Results& r, const Grouped& g) {
  std::vector<std::string> out;
  if (r.interrupted) out.push_back("The run was interrupted: these results cover only the runs that finished.");
  if (auto s = busy_host_finding(r)) out.push_back(*s);
  if (r.lost_events > 0)
    out.push_back(fmt::format("The tracer lost {} events: traced copy-up counts are lower bounds.", r.lost_events));
  for (const auto& w : g.workloads())
    if (auto s = speed_finding(w, g)) out.push_back(*s);
  for (const auto& w : g.workloads())
    for (auto& s : amplification_findings(w, g)) out.push_back(std::move(s));
  for (const auto& w : g.workloads())
    for (const auto& b : g.backends())
      if (auto s = transient_copyup_finding(w, b, g)) out.push_back(*s);
  for (const auto& f : g.scale_families())
    for (auto& s : scale_findings(f, g)) out.push_back(std::move(s));
  std::vector<const SummaryRow*> noisy;
  int rows = 0;
  for (const auto& w : g.workloads())
    for (const auto& b : g.backends())
      if (const SummaryRow* s = g.row(b, w); s && s->cv >= 0) {
        ++rows;
        if (s->cv > kNoisyCv) noisy.push_back(s);
      }
  if (!noisy.empty()) {
    std::stable_sort(noisy.begin(), noisy.end(), [](const SummaryRow* a, const SummaryRow* b) { return a->cv > b->cv; });
    std::vector<std::string> worst;
    for (size_t i = 0; i < std::min<size_t>(3, noisy.size()); ++i)
      worst.push_back(fmt::format("{} on {} {}", noisy[i]->workload, row_backend(noisy[i]->backend, noisy[i]->testbed),
                                  format_value(Unit::kFraction, noisy[i]->cv)));
    auto floor = noise_floor_cv(r, true);
    if (!floor) floor = noise_floor_cv(r);
    out.push_back(fmt::format("Wall time varied by more than {} between repeats (coefficient of variation) in {} of {} results "
                              "(most: {}): differences smaller than that are noise{}.",
                              format_value(Unit::kFraction, kNoisyCv), noisy.size(), rows, join_words(worst),
                              floor ? fmt::format(" (on work that touches no storage this host varied by {})",
                                                  format_value(Unit::kFraction, *floor))
                                    : ""));
  }
  if (!g.failed().empty()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> by_workload;  // workload → backends, first seen first
    for (const Run* f : g.failed()) {
      add_once(bucket(by_workload, f->workload), row_backend(f->backend, f->testbed));
    }
    std::vector<std::string> which;
    for (const auto& [w, backends] : by_workload) which.push_back(w + " on " + join_words(backends));
    out.push_back(fmt::format("{} run{} failed: {}; see “Failed runs”.", g.failed().size(), g.failed().size() == 1 ? "" : "s",
                              fmt::format("{}", fmt::join(which, "; "))));
  }
  return out;
}

// "Copy-up kinds (median files, bytes): overlayfs: 3 copied (1.0 MiB), 2 cloned (2.0 MiB), 1 metadata only; ..." for
// the backends that copied files up in this workload, traced where known, else from the ground truth (†); none when
// no backend measured kinds.
std::optional<std::string> kinds_note(const std::string& w, const Grouped& g) {
  std::vector<std::string> parts;
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    if (!s || s->n == 0) continue;
    bool traced = s->median_copyup_kinds.measured;
    const CopyupKinds& k = traced ? s->median_copyup_kinds : s->median_truth_copyup_kinds;
    if (!k.measured || k.data.events + k.cloned.events + k.metadata.events <= 0) continue;
    parts.push_back(fmt::format("{}{}: {} copied ({}), {} cloned ({}), {} metadata only", b, traced ? "" : " †", k.data.events,
                                format_bytes(static_cast<double>(k.data.bytes)), k.cloned.events,
                                format_bytes(static_cast<double>(k.cloned.bytes)), k.metadata.events));
  }
  if (parts.empty()) return std::nullopt;
  return fmt::format("Copy-up kinds (median files, bytes; copied = data read and written, cloned = extents shared "
                     "with the lower file, metadata only = overlay metacopy): {}.",
                     fmt::join(parts, "; "));
}

Table workload_table(const std::string& w, const Grouped& g) {
  Table t;
  t.title = w;
  t.header = {"backend", "median wall time", "95 % CI", "vs fastest", "file copy-ups", "copy-up bytes", "block CoW", "new data",
              "writable layer", "page cache", "n"};
  t.numeric = {false, true, true, true, true, true, true, true, true, true, true};
  int64_t fastest = -1;
  for (const auto& b : g.backends())
    if (const SummaryRow* s = g.row(b, w); s && s->median_wall_ns > 0 && (fastest < 0 || s->median_wall_ns < fastest))
      fastest = s->median_wall_ns;
  bool truth = false;
  for (const auto& b : g.backends()) {
    const SummaryRow* s = g.row(b, w);
    if (!s) continue;
    if (s->n == 0) {
      t.rows.push_back({b, "failed", "—", "—", "—", "—", "—", "—", "—", "—", "0"});
      continue;
    }
    Sourced ev = copyup_events(*s), by = copyup_bytes(*s), cow = cow_bytes(*s), fresh = new_bytes(*s);
    truth = truth || ev.ground_truth || by.ground_truth || cow.ground_truth || fresh.ground_truth;
    t.rows.push_back({b, cell(s->median_wall_ns, Unit::kNs), s->ci95_ns < 0 ? "—" : "± " + format_ns(s->ci95_ns),
                      fastest > 0 && s->median_wall_ns > 0 ? format_ratio(static_cast<double>(s->median_wall_ns) / fastest) : "—",
                      cell(ev, Unit::kCount), cell(by, Unit::kBytes), cell(cow, Unit::kBytes), cell(fresh, Unit::kBytes),
                      cell(s->median_upper_bytes, Unit::kBytes), cell(s->median_page_cache_bytes, Unit::kBytes),
                      std::to_string(s->n)});
  }
  if (truth) t.notes.push_back("† ground truth: what appeared in the writable layer (tracing was off or did not see it).");
  if (auto kinds = kinds_note(w, g)) t.notes.push_back(*kinds);
  return t;
}

Table scale_table(const std::string& family, const Grouped& g) {
  Table t;
  t.title = family;
  t.caption = "N containers of one image started together; growth measured from a dropped page cache.";
  t.header = {"backend", "containers", "wall time", "prepare all", "page cache", "per container", "disk", "per container", "n"};
  t.numeric = {false, true, true, true, true, true, true, true, true};
  auto per = [](int64_t v, int n) { return v < 0 ? std::string("—") : format_bytes(static_cast<double>(v) / n); };
  for (const auto& b : g.backends())
    for (const auto& [n, w] : g.scale_points(family, b)) {
      const SummaryRow* s = g.row(b, w);
      if (!s) continue;
      t.rows.push_back({b, std::to_string(n), cell(s->median_wall_ns, Unit::kNs), cell(s->median_setup_ns, Unit::kNs),
                        cell(s->median_page_cache_bytes, Unit::kBytes), per(s->median_page_cache_bytes, n),
                        cell(s->median_upper_bytes, Unit::kBytes), per(s->median_upper_bytes, n), std::to_string(s->n)});
    }
  return t;
}

// Failed runs, one row per (backend, workload, error) with the repeats it happened in.
Table failure_table(const Grouped& g) {
  Table t;
  t.title = "Failed runs";
  t.header = {"backend", "workload", "runs", "error"};
  t.numeric = {false, false, false, false};
  std::vector<std::pair<std::vector<std::string>, std::vector<int>>> rows;
  for (const Run* f : g.failed()) {
    std::string why = f->error.empty() ? "failed" : f->error;
    if (!f->stderr_tail.empty()) {
      std::string tail = f->stderr_tail;
      while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
      why += "; stderr: " + tail.substr(tail.rfind('\n') == std::string::npos ? 0 : tail.rfind('\n') + 1);
    }
    std::vector<std::string> key{row_backend(f->backend, f->testbed), f->workload, why};
    bucket(rows, key).push_back(f->repeat + 1);
  }
  for (auto& [key, repeats] : rows) {
    std::sort(repeats.begin(), repeats.end());
    std::vector<std::string> nums;
    for (int r : repeats) nums.push_back("#" + std::to_string(r));
    t.rows.push_back({key[0], key[1], fmt::format("{}", fmt::join(nums, ", ")), key[2]});
  }
  return t;
}

}  // namespace

const char* const kCopyColumnsExplained =
    "“File copy-ups” are whole lower files copied into the writable layer on their first write (overlayfs, "
    "fuse-overlayfs, unionfs-fuse), with “copy-up bytes” their size. “Block CoW” is what reflink and btrfs do instead: the data "
    "of a lower file that was shared with the parent snapshot and that a write had to rewrite, in whole file-system "
    "blocks (they copy no file up). “New data” is what was written into lower files beyond their inherited size or "
    "into their holes: fresh blocks, not CoW. copy copied the whole tree when the container was made and does "
    "neither.";

std::string row_backend(const std::string& backend, const std::string& testbed) {
  return testbed.empty() ? backend : backend + " @ " + testbed;
}

Grouped::Grouped(const Results& r) {
  for (const auto& run : r.runs) {
    std::string backend = row_backend(run.backend, run.testbed);
    add_once(backends_, backend);
    if (auto p = scale_out_point(run)) {
      add_once(families_, p->first);
      auto& pts = scale_[p->first][backend];
      if (std::find(pts.begin(), pts.end(), std::make_pair(p->second, run.workload)) == pts.end())
        pts.emplace_back(p->second, run.workload);
    } else {
      add_once(workloads_, run.workload);
    }
    if (run.status == "ok")
      ok_[{backend, run.workload}].push_back(&run);
    else
      failed_.push_back(&run);
  }
  for (auto& [f, by_backend] : scale_)
    for (auto& [b, pts] : by_backend) std::sort(pts.begin(), pts.end());
  for (auto& s : summarize(r.runs)) rows_[{row_backend(s.backend, s.testbed), s.workload}] = s;
}

const SummaryRow* Grouped::row(const std::string& backend, const std::string& workload) const {
  auto it = rows_.find({backend, workload});
  return it == rows_.end() ? nullptr : &it->second;
}

std::vector<const Run*> Grouped::ok_runs(const std::string& backend, const std::string& workload) const {
  auto it = ok_.find({backend, workload});
  return it == ok_.end() ? std::vector<const Run*>{} : it->second;
}

std::vector<std::pair<int, std::string>> Grouped::scale_points(const std::string& family, const std::string& backend) const {
  auto f = scale_.find(family);
  if (f == scale_.end()) return {};
  auto b = f->second.find(backend);
  return b == f->second.end() ? std::vector<std::pair<int, std::string>>{} : b->second;
}

const Run* Grouped::representative(const std::string& backend, const std::string& workload) const {
  std::vector<const Run*> runs = ok_runs(backend, workload);
  runs.erase(std::remove_if(runs.begin(), runs.end(), [](const Run* r) { return r->wall_ns < 0; }), runs.end());
  if (runs.empty()) return nullptr;
  std::stable_sort(runs.begin(), runs.end(), [](const Run* a, const Run* b) { return a->wall_ns < b->wall_ns; });
  return runs[(runs.size() - 1) / 2];
}

ReportModel build_model(const Results& r, const Grouped& g) {
  ReportModel m;
  m.facts = facts(r);
  m.findings = findings(r, g);
  for (const auto& w : g.workloads()) m.workloads.push_back(workload_table(w, g));
  for (const auto& f : g.scale_families()) {
    if (!is_image_family(f, g)) {
      m.scale_out.push_back(scale_table(f, g));
      continue;
    }
    auto rows = family_rows(f, g);
    m.scale_out.push_back(family_table(f, rows));
    for (auto& s : family_findings(f, rows)) m.findings.push_back(std::move(s));
  }
  if (!g.failed().empty()) m.failures = failure_table(g);
  return m;
}

}  // namespace cowbench::rep
