// `cowbench merge`: one results document from several shards or hosts (see merge.h).
#include "reports/merge.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/log.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

// The facts of `host` that tell machines apart, by name; boot_id apart (older files lack it).
const char* const kIdentity[] = {"kernel", "arch", "cpu_model", "cpus", "memory_bytes"};

json fact(const json& host, const char* key) {
  auto it = host.find(key);
  return it == host.end() ? json(nullptr) : *it;
}
json workdir_fs(const json& host) {
  auto it = host.find("filesystems");
  return it != host.end() && it->is_object() ? fact(*it, "workdir") : json(nullptr);
}
std::string text(const json& v) { return v.is_null() ? "none" : v.is_string() ? v.get<std::string>() : v.dump(); }

// The keys of object doc[key] in `more` that `doc` lacks are added (the first input wins a key).
void add_missing(json& doc, const char* key, const json& more) {
  json m = fact(more, key);
  if (!m.is_object()) return;
  json& into = doc[key];
  if (!into.is_object()) into = json::object();
  for (const auto& [k, v] : m.items())
    if (!into.contains(k)) into[k] = v;
}

// The entries of array doc[key] in `more` that `doc` lacks are appended, in order.
void add_names(json& doc, const char* key, const json& more) {
  json m = fact(more, key);
  if (!m.is_array()) return;
  json& into = doc[key];
  if (!into.is_array()) into = json::array();
  for (const auto& v : m)
    if (std::find(into.begin(), into.end(), v) == into.end()) into.push_back(v);
}

// The host a run of `in` was measured on: the input's host, or, for an input that is itself a
// merge of several hosts, its testbed's.
const json& host_of(const Results& in, const Run& run) {
  for (const auto& t : in.testbeds)
    if (t.name == run.testbed) return t.host;
  return in.host;
}

// The config fields whose difference makes rows measure different things.
const char* const kSameConfig[] = {"image", "platform", "seed", "cache"};

}  // namespace

std::string host_difference(const json& a, const json& b) {
  std::vector<std::string> diff;
  for (const char* k : kIdentity)
    if (fact(a, k) != fact(b, k)) diff.push_back(fmt::format("{} {} vs {}", k, text(fact(a, k)), text(fact(b, k))));
  if (workdir_fs(a) != workdir_fs(b))
    diff.push_back(fmt::format("work directory on {} vs {}", text(workdir_fs(a)), text(workdir_fs(b))));
  std::string ba = fact(a, "boot_id").is_string() ? fact(a, "boot_id").get<std::string>() : "";
  std::string bb = fact(b, "boot_id").is_string() ? fact(b, "boot_id").get<std::string>() : "";
  if (!ba.empty() && !bb.empty() && ba != bb) diff.push_back(fmt::format("boot_id {} vs {}", ba, bb));
  return fmt::format("{}", fmt::join(diff, ", "));
}

bool same_host(const json& a, const json& b) { return host_difference(a, b).empty(); }

Results merge_results(const std::vector<MergeInput>& inputs, const MergeOptions& options) {
  if (inputs.empty()) fail(Errc::kInvalidInput, "merge: no results file given");
  const MergeInput& first = inputs.front();

  // The same measurement everywhere: image, platform, seed, cache mode.
  for (const auto& in : inputs)
    for (const char* k : kSameConfig)
      if (fact(in.results.config, k) != fact(first.results.config, k))
        fail(Errc::kInvalidInput, "merge: {} measured {} {} but {} measured {} {}: their rows do not measure the same thing",
             first.path, k, text(fact(first.results.config, k)), in.path, k, text(fact(in.results.config, k)));
  // A row's name means one thing everywhere: a variant two inputs define is one backend with one
  // option set in both.
  std::map<std::string, std::pair<json, std::string>> variants;  // name → (definition, file)
  for (const auto& in : inputs) {
    json v = fact(in.results.config, "variants");
    if (!v.is_object()) continue;
    for (const auto& [name, def] : v.items()) {
      auto [it, fresh] = variants.emplace(name, std::make_pair(def, in.path));
      if (!fresh && it->second.first != def)
        fail(Errc::kInvalidInput, "merge: variant {} is {} in {} but {} in {}: its rows do not measure the same thing", name,
             it->second.first.dump(), it->second.second, def.dump(), in.path);
    }
  }

  // Testbeds: one per distinct host, in the order they first appear; which input (file) each
  // host came from first, for messages.
  struct Bed {
    json host;
    std::string file;
    std::string hostname;
  };
  std::vector<Bed> beds;
  auto bed_of = [&](const json& host, const std::string& file) {
    for (size_t i = 0; i < beds.size(); ++i)
      if (same_host(beds[i].host, host)) return i;
    if (!beds.empty() && !options.allow_mixed_hosts)
      fail(Errc::kInvalidInput,
           "merge: {} and {} come from different hosts ({}); pass --allow-mixed-hosts to keep each host apart as a testbed",
           beds.front().file, file, host_difference(beds.front().host, host));
    beds.push_back({host, file, fact(host, "hostname").is_string() ? fact(host, "hostname").get<std::string>() : ""});
    return beds.size() - 1;
  };
  std::vector<std::vector<size_t>> run_beds(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    for (const auto& run : inputs[i].results.runs) run_beds[i].push_back(bed_of(host_of(inputs[i].results, run), inputs[i].path));
  if (beds.empty()) beds.push_back({first.results.host, first.path, ""});  // no runs at all
  // Named after the hostname where it tells them apart, else host1, host2...
  std::vector<std::string> names;
  for (size_t i = 0; i < beds.size(); ++i) {
    const std::string& h = beds[i].hostname;
    bool unique = !h.empty() && std::count_if(beds.begin(), beds.end(), [&](const Bed& b) { return b.hostname == h; }) == 1;
    names.push_back(unique ? h : fmt::format("host{}", i + 1));
  }
  bool mixed = beds.size() > 1;

  Results out;
  out.host = first.results.host;
  out.config = first.results.config;
  out.config.erase("shard");
  out.config["merged_from"] = json::array();
  out.trace_mode = first.results.trace_mode;
  out.trace_extra = first.results.trace_extra;
  json modes = json::object();
  // (testbed, backend, workload, repeat) → the file it came from.
  std::map<std::tuple<size_t, std::string, std::string, int>, std::string> seen;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const MergeInput& in = inputs[i];
    const Results& r = in.results;
    for (size_t k = 0; k < r.runs.size(); ++k) {
      Run run = r.runs[k];
      size_t bed = run_beds[i][k];
      auto key = std::make_tuple(bed, run.backend, run.workload, run.repeat);
      if (auto it = seen.find(key); it != seen.end())
        fail(Errc::kInvalidInput, "merge: run {} {} #{}{} is in {} and in {}: overlapping shards, or a file given twice",
             run.backend, run.workload, run.repeat + 1, mixed ? " on " + names[bed] : "", it->second, in.path);
      seen.emplace(key, in.path);
      run.testbed = mixed ? names[bed] : "";
      out.runs.push_back(std::move(run));
    }
    // The host's facts that differ by backend (file systems, storage), from every input of one host.
    if (!mixed)
      for (const char* k : {"filesystems", "mount_options", "storage"}) add_missing(out.host, k, r.host);
    for (const char* k : {"backends", "workloads"}) add_names(out.config, k, r.config);
    for (const char* k : {"plans", "images", "skipped_backends", "backend_options", "variants"}) add_missing(out.config, k, r.config);
    json from{{"file", in.path}, {"runs", r.runs.size()}, {"shard", fact(r.config, "shard")}, {"trace_mode", r.trace_mode}};
    if (mixed && !r.runs.empty()) from["testbed"] = names[run_beds[i].front()];
    out.config["merged_from"].push_back(std::move(from));
    modes[in.path] = r.trace_mode;
    if (r.trace_mode != out.trace_mode) out.trace_mode = "mixed";
    out.lost_events += r.lost_events;
    out.interrupted = out.interrupted || r.interrupted;
  }
  if (out.trace_mode == "mixed") out.trace_extra["modes"] = modes;  // the inputs' modes, by file
  // Shards of one matrix: its workloads (and runs) back in the matrix's order, as an unsharded
  // run would have them.
  json order = nullptr;
  for (const auto& in : inputs) {
    json s = fact(in.results.config, "shard");
    json w = s.is_object() ? fact(s, "workloads") : json(nullptr);
    if (!w.is_array() || (!order.is_null() && order != w)) {
      order = nullptr;
      break;
    }
    order = w;
  }
  if (order.is_array()) {
    std::vector<std::string> list = order.get<std::vector<std::string>>();
    // A run's workload's place in the list (a scale-out point "scale-out/4" at its family's).
    auto place = [&](const std::string& w) {
      for (size_t i = 0; i < list.size(); ++i)
        if (w == list[i] || (w.size() > list[i].size() && w.starts_with(list[i] + "/"))) return i;
      return list.size();
    };
    std::stable_sort(out.runs.begin(), out.runs.end(), [&](const Run& a, const Run& b) { return place(a.workload) < place(b.workload); });
    json present = json::array();
    for (const auto& w : list)
      if (std::find(out.config["workloads"].begin(), out.config["workloads"].end(), w) != out.config["workloads"].end())
        present.push_back(w);
    out.config["workloads"] = present;
  }
  if (mixed) {
    for (size_t i = 0; i < beds.size(); ++i) out.testbeds.push_back({names[i], beds[i].host});
    out.host = beds.front().host;
  }

  // Shards of one split that are missing: said, not refused (the failed shard's job says why).
  std::map<int, std::set<int>> shards;  // N → the indices present
  for (const auto& in : inputs) {
    json s = fact(in.results.config, "shard");
    if (s.is_object() && s.value("count", 0) > 0) shards[s["count"].get<int>()].insert(s.value("index", 0));
  }
  if (shards.size() == 1) {
    auto [count, present] = *shards.begin();
    std::vector<int> missing;
    for (int k = 0; k < count; ++k)
      if (!present.count(k)) missing.push_back(k);
    if (!missing.empty())
      log::warn("merge: shard{} {} of {} {} missing: their workloads have no runs here", missing.size() == 1 ? "" : "s",
                fmt::join(missing, ", "), count, missing.size() == 1 ? "is" : "are");
  }
  return out;
}

}  // namespace cowbench::rep
