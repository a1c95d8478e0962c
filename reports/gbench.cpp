// Google Benchmark JSON output read for the reports (see gbench.h).
#include "reports/gbench.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "reports/metrics.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

// The fields Google Benchmark writes for every run; any other number is a user counter.
const std::set<std::string>& standard_fields() {
  static const std::set<std::string> s{"name", "family_index", "per_family_instance_index", "run_name", "run_type",
                                       "repetitions", "repetition_index", "threads", "iterations", "real_time",
                                       "cpu_time", "time_unit", "aggregate_name", "aggregate_unit", "error_occurred",
                                       "error_message", "label", "big_o", "rms"};
  return s;
}

double ns_per(const std::string& unit, const std::string& path) {
  if (unit == "ns") return 1;
  if (unit == "us") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  fail(Errc::kInvalidInput, "{}: unknown time_unit '{}'", path, unit);
}

// Collects the rows of one run_name before they are folded into one GbenchRow.
struct GbenchPending {
  std::vector<json> iterations;
  std::optional<json> median, mean;
};

GbenchRow fold(const std::string& name, const GbenchPending& p, const std::string& path) {
  GbenchRow row;
  row.name = name;
  auto slash = name.find('/');
  row.family = name.substr(0, slash);
  row.instance = slash == std::string::npos ? "" : name.substr(slash + 1);
  const json* pick = p.median ? &*p.median : p.mean ? &*p.mean : nullptr;
  std::vector<double> real, cpu;
  for (const auto& it : p.iterations) {
    if (it.value("error_occurred", false)) row.error = it.value("error_message", std::string("error"));
    double k = ns_per(it.value("time_unit", std::string("ns")), path);
    real.push_back(it.value("real_time", 0.0) * k);
    cpu.push_back(it.value("cpu_time", 0.0) * k);
    row.iterations += it.value("iterations", int64_t{0});
  }
  row.repetitions = std::max<int>(1, static_cast<int>(p.iterations.size()));
  const json& src = pick ? *pick : p.iterations.front();
  if (pick) {
    double k = ns_per(pick->value("time_unit", std::string("ns")), path);
    row.real_ns = pick->value("real_time", 0.0) * k;
    row.cpu_ns = pick->value("cpu_time", 0.0) * k;
  } else {
    row.real_ns = median(real);
    row.cpu_ns = median(cpu);
  }
  for (const auto& [k, v] : src.items())
    if (v.is_number() && !standard_fields().count(k)) row.counters[k] = v.get<double>();
  return row;
}

// A counter printed by what its name says it counts.
std::string counter_cell(const std::string& name, double v) {
  bool rate = name.ends_with("per_second") || name.ends_with("_per_s");
  if (name.find("bytes") != std::string::npos) return format_bytes(v) + (rate ? "/s" : "");
  return rate ? format_value(Unit::kPerSecond, v) : format_count(v);
}

}  // namespace

GbenchFile gbench_from_json(const json& j, const std::string& path) {
  if (!j.is_object() || !j.contains("benchmarks") || !j["benchmarks"].is_array())
    fail(Errc::kInvalidInput, "{}: not Google Benchmark JSON (no \"benchmarks\" array)", path);
  GbenchFile f;
  f.path = path;
  if (j.contains("context") && j["context"].is_object()) {
    f.executable = j["context"].value("executable", "");
    f.date = j["context"].value("date", "");
  }
  std::vector<std::string> order;
  std::map<std::string, GbenchPending> pending;
  try {
    for (const auto& b : j["benchmarks"]) {
      std::string name = b.value("run_name", b.at("name").get<std::string>());
      if (!pending.count(name)) order.push_back(name);
      GbenchPending& p = pending[name];
      std::string agg = b.value("aggregate_name", "");
      if (b.value("run_type", "iteration") != "aggregate")
        p.iterations.push_back(b);
      else if (agg == "median")
        p.median = b;
      else if (agg == "mean")
        p.mean = b;
    }
    for (const auto& name : order) {
      const GbenchPending& p = pending[name];
      if (p.iterations.empty() && !p.median && !p.mean) continue;  // only stddev/cv/BigO rows
      f.rows.push_back(fold(name, p, path));
    }
  } catch (const json::exception& e) {
    fail(Errc::kInvalidInput, "{}: {}", path, e.what());
  }
  return f;
}

GbenchFile load_gbench(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    fail(Errc::kInvalidInput, "cannot read benchmark file: {}", e.what());
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) fail(Errc::kInvalidInput, "{} is not valid JSON", path);
  return gbench_from_json(j, path);
}

Table gbench_table(const GbenchFile& f) {
  Table t;
  t.title = f.executable.empty() ? f.path : f.executable;
  t.caption = fmt::format("Google Benchmark output {}{}", f.path, f.date.empty() ? "" : " of " + f.date);
  std::vector<std::string> counters;
  for (const auto& r : f.rows)
    for (const auto& [k, v] : r.counters)
      if (std::find(counters.begin(), counters.end(), k) == counters.end()) counters.push_back(k);
  std::sort(counters.begin(), counters.end());
  t.header = {"benchmark", "time", "CPU", "iterations", "repetitions"};
  t.header.insert(t.header.end(), counters.begin(), counters.end());
  bool errors = std::any_of(f.rows.begin(), f.rows.end(), [](const GbenchRow& r) { return !r.error.empty(); });
  if (errors) t.header.push_back("error");
  t.numeric.assign(t.header.size(), true);
  t.numeric.front() = false;
  if (errors) t.numeric.back() = false;
  for (const auto& r : f.rows) {
    std::vector<std::string> row{r.name, r.error.empty() ? format_ns(r.real_ns) : "—", r.error.empty() ? format_ns(r.cpu_ns) : "—",
                                 format_count(static_cast<double>(r.iterations)), std::to_string(r.repetitions)};
    for (const auto& c : counters) {
      auto it = r.counters.find(c);
      row.push_back(it == r.counters.end() ? "—" : counter_cell(c, it->second));
    }
    if (errors) row.push_back(r.error);
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace cowbench::rep
