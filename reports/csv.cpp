// The CSV form of the results (see csv.h).
#include "reports/csv.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "reports/metrics.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

std::string quote(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Scalars of `j` under dotted paths; arrays are left to the JSON.
void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix + "." + k, out);
  } else if (j.is_string()) {
    out[prefix] = j.get<std::string>();
  } else if (j.is_number() || j.is_boolean()) {
    out[prefix] = j.dump();
  }
}

void line(std::string& out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + quote(cells[i]);
  out += "\n";
}

}  // namespace

std::string render_csv(const Results& r) {
  std::vector<std::map<std::string, std::string>> extras;
  std::set<std::string> extra_cols;
  for (const auto& run : r.runs) {
    std::map<std::string, std::string> e;
    flatten(run.extra, "extra", e);
    for (const auto& [k, v] : e) extra_cols.insert(k);
    extras.push_back(std::move(e));
  }
  // A testbed column only in documents merged from several hosts; a column per system call
  // name that some run counted.
  bool testbeds = !r.testbeds.empty();
  // A backend_kind column only when some row is a variant (its backend is not its name).
  auto kind = [](const Run& run) { return run.backend_kind.empty() ? run.backend : run.backend_kind; };
  bool kinds = std::any_of(r.runs.begin(), r.runs.end(), [&](const Run& run) { return kind(run) != run.backend; });
  std::set<std::string> calls;
  for (const auto& run : r.runs)
    for (const auto& [name, n] : run.syscalls) calls.insert(name);
  std::vector<std::string> header{"backend", "workload", "repeat", "cache", "status", "error", "exit_code"};
  if (testbeds) header.insert(header.begin() + 2, "testbed");
  if (kinds) header.insert(header.begin() + 1, "backend_kind");
  for (const auto& m : run_metrics()) header.push_back(m.key);
  for (const auto& c : calls) header.push_back("syscalls." + c);
  header.insert(header.end(), {"busy", "digest", "stderr_tail"});
  header.insert(header.end(), extra_cols.begin(), extra_cols.end());
  std::string out;
  line(out, header);
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const Run& run = r.runs[i];
    std::vector<std::string> cells{run.backend, run.workload, std::to_string(run.repeat), run.cache,
                                   run.status,  run.error,    std::to_string(run.exit_code)};
    if (testbeds) cells.insert(cells.begin() + 2, run.testbed);
    if (kinds) cells.insert(cells.begin() + 1, kind(run));
    for (const auto& m : run_metrics()) {
      int64_t v = m.get(run);
      cells.push_back(v < 0 ? "" : std::to_string(v));
    }
    for (const auto& c : calls) {
      auto it = run.syscalls.find(c);
      // Not counted in this run: empty; counted but not made: 0.
      cells.push_back(run.syscalls.empty() ? "" : it == run.syscalls.end() ? "0" : std::to_string(it->second));
    }
    // true: taken while the host was busy (see results.h, busy_host); empty: not measured.
    cells.push_back(run.host_load ? (run.host_load->busy ? "true" : "false") : "");
    cells.insert(cells.end(), {run.digest, run.stderr_tail});
    for (const auto& c : extra_cols) {
      auto it = extras[i].find(c);
      cells.push_back(it == extras[i].end() ? "" : it->second);
    }
    line(out, cells);
  }
  return out;
}

}  // namespace cowbench::rep
