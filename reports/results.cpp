// The results model of schema "cowbench/v1" (see results.h).
#include "reports/results.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "common/error.h"
#include "common/fs.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

json opt(int64_t v) { return v < 0 ? json(nullptr) : json(v); }
int64_t get_opt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return -1;
  return it->get<int64_t>();
}

json q_json(const Quantiles& q) {
  json j{{"p50", opt(q.p50)}, {"p90", opt(q.p90)}, {"p99", opt(q.p99)}, {"max", opt(q.max)}};
  if (!q.cdf.empty()) j["cdf"] = q.cdf;  // [[fraction, ns], ...]
  return j;
}
Quantiles q_from(const json& j) {
  Quantiles q;
  if (!j.is_object()) return q;
  q.p50 = get_opt(j, "p50");
  q.p90 = get_opt(j, "p90");
  q.p99 = get_opt(j, "p99");
  q.max = get_opt(j, "max");
  if (j.contains("cdf")) q.cdf = j["cdf"].get<std::vector<std::pair<double, int64_t>>>();
  return q;
}

json host_load_json(const HostLoad& h) {
  return {{"window_ns", h.window_ns},
          {"cpus", h.cpus},
          {"steal_ns", h.steal_ns},
          {"outside_busy_ns", h.outside_busy_ns},
          {"outside_cpus", std::round(h.outside_cpus() * 1000) / 1000},
          {"resolution_ns", h.resolution_ns}};
}
HostLoad host_load_from(const json& j, const json& busy) {
  HostLoad h;
  h.window_ns = j.value("window_ns", int64_t{0});
  h.cpus = j.value("cpus", 0);
  h.steal_ns = j.value("steal_ns", int64_t{0});
  h.outside_busy_ns = j.value("outside_busy_ns", int64_t{0});
  h.resolution_ns = j.value("resolution_ns", int64_t{0});
  h.busy = busy.is_boolean() ? busy.get<bool>() : busy_host(h);
  return h;
}

// {"data": {"events", "bytes"}, "cloned": {...}, "metadata": {...}}, or null when not measured.
json kinds_json(const CopyupKinds& k) {
  if (!k.measured) return nullptr;
  auto one = [](const CopyupKind& c) { return json{{"events", c.events}, {"bytes", c.bytes}}; };
  return {{"data", one(k.data)}, {"cloned", one(k.cloned)}, {"metadata", one(k.metadata)}};
}

CopyupKinds kinds_from(const json& j) {
  CopyupKinds k;
  if (!j.is_object()) return k;
  k.measured = true;
  auto one = [&](const char* name, CopyupKind& c) {
    const json& v = j.value(name, json::object());
    c.events = v.value("events", int64_t{0});
    c.bytes = v.value("bytes", int64_t{0});
  };
  one("data", k.data);
  one("cloned", k.cloned);
  one("metadata", k.metadata);
  return k;
}

// Each figure's median over the runs that measured kinds.
CopyupKinds median_kinds(const std::vector<const Run*>& runs, CopyupKinds Run::*field) {
  CopyupKinds out;
  std::vector<int64_t> v[6];
  for (const Run* r : runs) {
    const CopyupKinds& k = r->*field;
    if (!k.measured) continue;
    out.measured = true;
    int i = 0;
    for (const CopyupKind* c : {&k.data, &k.cloned, &k.metadata}) {
      v[i++].push_back(c->events);
      v[i++].push_back(c->bytes);
    }
  }
  if (!out.measured) return out;
  int i = 0;
  for (CopyupKind* c : {&out.data, &out.cloned, &out.metadata}) {
    c->events = median_of(v[i++]);
    c->bytes = median_of(v[i++]);
  }
  return out;
}

}  // namespace

bool busy_host(const HostLoad& h) {
  double window = static_cast<double>(h.window_ns);
  if (h.window_ns <= 0) return false;
  return static_cast<double>(h.outside_busy_ns - h.resolution_ns) > kBusyOutsideCpus * window ||
         static_cast<double>(h.steal_ns - h.resolution_ns) > kBusyStealShare * std::max(1, h.cpus) * window;
}

int64_t median_of(std::vector<int64_t> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](int64_t x) { return x < 0; }), v.end());
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Spread spread(const std::vector<int64_t>& v) {
  Spread s;
  if (v.size() < 2) return s;
  for (auto x : v) s.mean += static_cast<double>(x);
  s.mean /= static_cast<double>(v.size());
  double var = 0;
  for (auto x : v) var += (static_cast<double>(x) - s.mean) * (static_cast<double>(x) - s.mean);
  s.sd = std::sqrt(var / static_cast<double>(v.size() - 1));
  s.cv = s.mean > 0 ? s.sd / s.mean : -1;
  return s;
}

Quantiles quantiles(std::vector<int64_t>& v) {
  Quantiles q;
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  q.p50 = at(0.50);
  q.p90 = at(0.90);
  q.p99 = at(0.99);
  q.max = v.back();
  for (double f : kCdfFractions) q.cdf.emplace_back(f, f == 0 ? v.front() : at(f));
  return q;
}

std::vector<SummaryRow> summarize(const std::vector<Run>& runs) {
  using Key = std::tuple<std::string, std::string, std::string>;  // (backend, workload, testbed)
  std::map<Key, std::vector<const Run*>> groups;
  std::vector<Key> order;
  for (const auto& r : runs) {
    Key key{r.backend, r.workload, r.testbed};
    if (!groups.count(key)) order.push_back(key);
    groups[key];
    if (r.status == "ok") groups[key].push_back(&r);
  }
  std::vector<SummaryRow> out;
  for (const auto& key : order) {
    const auto& g = groups[key];
    SummaryRow s;
    s.backend = std::get<0>(key);
    s.workload = std::get<1>(key);
    s.testbed = std::get<2>(key);
    s.n = static_cast<int>(g.size());
    auto col = [&](auto field) {
      std::vector<int64_t> v;
      for (const Run* r : g) v.push_back(r->*field);
      return v;
    };
    std::vector<int64_t> wall = col(&Run::wall_ns);
    s.median_wall_ns = median_of(wall);
    if (g.size() >= 2) {
      Spread sp = spread(wall);
      s.cv = sp.cv;
      // Asymptotic standard error of the median (sqrt(pi/2) * sd / sqrt(n)).
      s.ci95_ns = static_cast<int64_t>(1.96 * 1.2533 * sp.sd / std::sqrt(static_cast<double>(wall.size())));
    }
    s.median_setup_ns = median_of(col(&Run::setup_ns));
    s.median_copyup_events = median_of(col(&Run::copyup_events));
    s.median_copyup_bytes = median_of(col(&Run::copyup_bytes));
    s.median_upper_bytes = median_of(col(&Run::upper_bytes));
    s.median_shared_bytes = median_of(col(&Run::shared_bytes));
    s.median_page_cache_bytes = median_of(col(&Run::page_cache_bytes));
    s.median_cpu_user_ns = median_of(col(&Run::cpu_user_ns));
    s.median_cpu_sys_ns = median_of(col(&Run::cpu_sys_ns));
    s.median_truth_copyups = median_of(col(&Run::truth_copyups));
    s.median_truth_copyup_bytes = median_of(col(&Run::truth_copyup_bytes));
    s.median_truth_copyups_dropped = median_of(col(&Run::truth_copyups_dropped));
    s.median_copyup_kinds = median_kinds(g, &Run::copyup_kinds);
    s.median_truth_copyup_kinds = median_kinds(g, &Run::truth_copyup_kinds);
    s.median_cow_extents = median_of(col(&Run::cow_extents));
    s.median_cow_bytes = median_of(col(&Run::cow_bytes));
    s.median_cow_new_bytes = median_of(col(&Run::cow_new_bytes));
    s.median_truth_cow_extents = median_of(col(&Run::truth_cow_extents));
    s.median_truth_cow_bytes = median_of(col(&Run::truth_cow_bytes));
    s.median_truth_new_bytes = median_of(col(&Run::truth_new_bytes));
    std::map<std::string, std::vector<int64_t>> calls;  // name → its count in each run that counted
    int counted = 0;
    for (const Run* r : g) {
      if (r->syscalls.empty()) continue;
      ++counted;
      for (const auto& [name, n] : r->syscalls) calls[name].push_back(n);
    }
    // A call a counting run did not make is 0 there.
    for (auto& [name, v] : calls) {
      v.resize(static_cast<size_t>(counted), 0);
      s.median_syscalls[name] = median_of(v);
    }
    out.push_back(s);
  }
  return out;
}

json to_json(const Run& r) {
  json j{{"backend", r.backend},
         {"backend_kind", r.backend_kind.empty() ? r.backend : r.backend_kind},
         {"workload", r.workload},
         {"repeat", r.repeat},
         {"cache", r.cache},
         {"status", r.status},
         {"wall_ns", opt(r.wall_ns)},
         {"setup_ns", opt(r.setup_ns)},
         {"ops", {{"count", r.ops_count}, {"latency_ns", q_json(r.op_latency)}}},
         {"copyup", {{"events", opt(r.copyup_events)},
                     {"bytes", opt(r.copyup_bytes)},
                     {"metadata_only", opt(r.copyup_metadata_only)},
                     {"kinds", kinds_json(r.copyup_kinds)},
                     {"latency_ns", q_json(r.copyup_latency)}}},
         {"cow", {{"extents", opt(r.cow_extents)}, {"bytes", opt(r.cow_bytes)}, {"new_bytes", opt(r.cow_new_bytes)}}},
         {"disk", {{"upper_bytes", opt(r.upper_bytes)}, {"shared_bytes", opt(r.shared_bytes)}}},
         {"memory", {{"page_cache_bytes", opt(r.page_cache_bytes)}}},
         {"cpu", {{"user_ns", opt(r.cpu_user_ns)}, {"sys_ns", opt(r.cpu_sys_ns)}}},
         {"ground_truth", {{"copyups", opt(r.truth_copyups)},
                           {"copyup_bytes", opt(r.truth_copyup_bytes)},
                           {"copyup_metadata_only", opt(r.truth_copyup_metadata_only)},
                           {"copyup_kinds", kinds_json(r.truth_copyup_kinds)},
                           {"copyups_dropped", opt(r.truth_copyups_dropped)},
                           {"cow_extents", opt(r.truth_cow_extents)},
                           {"cow_bytes", opt(r.truth_cow_bytes)},
                           {"new_bytes", opt(r.truth_new_bytes)}}},
         {"digest", r.digest},
         {"extra", r.extra}};
  if (!r.error.empty()) j["error"] = r.error;
  if (r.exit_code != 0) j["exit_code"] = r.exit_code;
  if (!r.stderr_tail.empty()) j["stderr_tail"] = r.stderr_tail;
  j["syscalls"] = r.syscalls.empty() ? json(nullptr) : json(r.syscalls);
  if (!r.testbed.empty()) j["testbed"] = r.testbed;
  j["host_load"] = r.host_load ? host_load_json(*r.host_load) : json(nullptr);
  j["busy"] = r.host_load ? json(r.host_load->busy) : json(nullptr);
  return j;
}

Run run_from_json(const json& j) {
  Run r;
  r.backend = j.at("backend").get<std::string>();
  r.backend_kind = j.value("backend_kind", r.backend);
  r.workload = j.at("workload").get<std::string>();
  r.repeat = j.at("repeat").get<int>();
  r.cache = j.value("cache", "warm");
  r.status = j.value("status", "ok");
  r.error = j.value("error", "");
  r.exit_code = j.value("exit_code", 0);
  r.stderr_tail = j.value("stderr_tail", "");
  r.wall_ns = get_opt(j, "wall_ns");
  r.setup_ns = get_opt(j, "setup_ns");
  const json& ops = j.at("ops");
  r.ops_count = ops.value("count", int64_t{0});
  r.op_latency = q_from(ops.value("latency_ns", json()));
  const json& cu = j.at("copyup");
  r.copyup_events = get_opt(cu, "events");
  r.copyup_bytes = get_opt(cu, "bytes");
  r.copyup_latency = q_from(cu.value("latency_ns", json()));
  r.copyup_metadata_only = cu.contains("metadata_only") ? get_opt(cu, "metadata_only") : -1;
  r.copyup_kinds = kinds_from(cu.value("kinds", json()));  // absent in files written before it existed
  r.cow_extents = get_opt(j.at("cow"), "extents");
  r.cow_bytes = get_opt(j.at("cow"), "bytes");
  r.cow_new_bytes = get_opt(j.at("cow"), "new_bytes");  // absent in files written before it existed
  // Files from earlier versions also hold disk.exclusive_bytes (always upper_bytes): ignored.
  r.upper_bytes = get_opt(j.at("disk"), "upper_bytes");
  r.shared_bytes = get_opt(j.at("disk"), "shared_bytes");
  r.page_cache_bytes = get_opt(j.at("memory"), "page_cache_bytes");
  r.cpu_user_ns = get_opt(j.at("cpu"), "user_ns");
  r.cpu_sys_ns = get_opt(j.at("cpu"), "sys_ns");
  if (j.contains("ground_truth")) {
    r.truth_copyups = get_opt(j["ground_truth"], "copyups");
    r.truth_copyup_bytes = get_opt(j["ground_truth"], "copyup_bytes");
    if (j["ground_truth"].contains("copyup_metadata_only"))
      r.truth_copyup_metadata_only = get_opt(j["ground_truth"], "copyup_metadata_only");
    r.truth_copyup_kinds = kinds_from(j["ground_truth"].value("copyup_kinds", json()));
    if (j["ground_truth"].contains("copyups_dropped"))
      r.truth_copyups_dropped = get_opt(j["ground_truth"], "copyups_dropped");
    r.truth_cow_extents = get_opt(j["ground_truth"], "cow_extents");
    r.truth_cow_bytes = get_opt(j["ground_truth"], "cow_bytes");
    r.truth_new_bytes = get_opt(j["ground_truth"], "new_bytes");
  }
  if (auto it = j.find("syscalls"); it != j.end() && !it->is_null())
    r.syscalls = it->get<std::map<std::string, int64_t>>();
  r.testbed = j.value("testbed", "");
  if (auto it = j.find("host_load"); it != j.end() && it->is_object())
    r.host_load = host_load_from(*it, j.value("busy", json()));
  r.digest = j.value("digest", "");
  r.extra = j.value("extra", json::object());
  if (r.extra.contains("trace") && r.extra["trace"].is_object())
    r.lost_events = r.extra["trace"].value("lost_events", int64_t{-1});
  return r;
}

json to_json(const Results& r) {
  json runs = json::array();
  for (const auto& run : r.runs) runs.push_back(to_json(run));
  json summary = json::array();
  for (const auto& s : summarize(r.runs)) {
    summary.push_back({{"backend", s.backend},
                       {"workload", s.workload},
                       {"n", s.n},
                       {"median_wall_ns", opt(s.median_wall_ns)},
                       {"ci95_ns", opt(s.ci95_ns)},
                       {"cv", s.cv < 0 ? json(nullptr) : json(s.cv)},
                       {"median_setup_ns", opt(s.median_setup_ns)},
                       {"median_copyup_events", opt(s.median_copyup_events)},
                       {"median_copyup_bytes", opt(s.median_copyup_bytes)},
                       {"median_upper_bytes", opt(s.median_upper_bytes)},
                       {"median_shared_bytes", opt(s.median_shared_bytes)},
                       {"median_page_cache_bytes", opt(s.median_page_cache_bytes)},
                       {"median_cpu_user_ns", opt(s.median_cpu_user_ns)},
                       {"median_cpu_sys_ns", opt(s.median_cpu_sys_ns)},
                       {"median_truth_copyups", opt(s.median_truth_copyups)},
                       {"median_truth_copyup_bytes", opt(s.median_truth_copyup_bytes)},
                       {"median_cow_extents", opt(s.median_cow_extents)},
                       {"median_cow_bytes", opt(s.median_cow_bytes)},
                       {"median_cow_new_bytes", opt(s.median_cow_new_bytes)},
                       {"median_truth_cow_extents", opt(s.median_truth_cow_extents)},
                       {"median_truth_cow_bytes", opt(s.median_truth_cow_bytes)},
                       {"median_truth_new_bytes", opt(s.median_truth_new_bytes)},
                       {"median_syscalls", s.median_syscalls.empty() ? json(nullptr) : json(s.median_syscalls)}});
    if (!s.testbed.empty()) summary.back()["testbed"] = s.testbed;
  }
  json doc{{"schema", kSchema},
           {"host", r.host},
           {"config", r.config},
           {"trace", {{"mode", r.trace_mode}, {"lost_events", r.lost_events}, {"details", r.trace_extra}}},
           {"interrupted", r.interrupted},
           {"runs", runs},
           {"summary", summary}};
  if (!r.testbeds.empty()) {
    json& tb = doc["testbeds"] = json::array();
    for (const auto& t : r.testbeds) tb.push_back({{"name", t.name}, {"host", t.host}});
  }
  return doc;
}

Results results_from_json(const json& j) {
  if (!j.is_object()) fail(Errc::kInvalidInput, "results: not a JSON object");
  std::string schema = j.value("schema", "");
  if (schema != kSchema) fail(Errc::kInvalidInput, "results: schema is '{}', this cowbench reads '{}'", schema, kSchema);
  Results r;
  try {
    r.host = j.value("host", json::object());
    r.config = j.value("config", json::object());
    const json& t = j.at("trace");
    r.trace_mode = t.value("mode", "off");
    r.lost_events = t.value("lost_events", int64_t{0});
    r.trace_extra = t.value("details", json::object());
    r.interrupted = j.value("interrupted", false);
    for (const auto& run : j.at("runs")) r.runs.push_back(run_from_json(run));
    if (auto it = j.find("testbeds"); it != j.end())
      for (const auto& t : *it) r.testbeds.push_back({t.at("name").get<std::string>(), t.value("host", json::object())});
    // With testbeds, every run names one of them; without, none does.
    for (const auto& run : r.runs) {
      bool known = std::any_of(r.testbeds.begin(), r.testbeds.end(), [&](const Testbed& t) { return t.name == run.testbed; });
      if (r.testbeds.empty() ? !run.testbed.empty() : !known)
        fail(Errc::kInvalidInput, "results: run {} {} #{} names testbed '{}', which is not in testbeds", run.backend,
             run.workload, run.repeat + 1, run.testbed);
    }
  } catch (const json::exception& e) {
    fail(Errc::kInvalidInput, "results: {}", e.what());
  }
  return r;
}

Results load_results(const std::string& path) {
  std::string text = read_file(path);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) fail(Errc::kInvalidInput, "{} is not valid JSON", path);
  try {
    return results_from_json(j);
  } catch (const Error& e) {
    fail(Errc::kInvalidInput, "{}: {}", path, e.what());
  }
}

void save_results(const Results& r, const std::string& path) { write_file_atomic(path, to_json(r).dump(2) + "\n", 0644, false); }

}  // namespace cowbench::rep
