// `cowbench doctor` (see doctor.h).
#include "runner/doctor.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "runner/host.h"
#include "runner/noise_probe.h"
#include "snapshotters/registry.h"

#ifdef COWBENCH_HAVE_BPF_TRACER
#include "ebpf/tracer.h"
#endif

namespace cowbench {
namespace {

struct BackendRow {
  std::string name;
  std::string description;
  bool available = false;
  std::string reason;
  std::string granularity;
  bool shares_page_cache = false;
  bool needs_root = false;
  std::string host_needs;
};

// Probes every built-in backend in `workdir`; a probe that throws is an unavailable backend.
std::vector<BackendRow> probe_backends(const std::string& workdir) {
  std::vector<BackendRow> rows;
  const auto& registry = snap::builtin_registry();
  for (const auto& name : registry.names()) {
    const auto& spec = registry.get(name);
    BackendRow r{name,
                 spec.description,
                 false,
                 "",
                 snap::granularity_name(spec.caps.cow_granularity),
                 spec.caps.shares_page_cache,
                 spec.caps.needs_root,
                 spec.caps.host_needs};
    try {
      snap::Availability a = spec.probe(workdir);
      r.available = a.available;
      r.reason = a.reason;
    } catch (const std::exception& e) {
      r.reason = fmt::format("probe failed: {}", e.what());
    }
    if (!r.available && r.reason.empty()) r.reason = "probe gave no reason";
    rows.push_back(std::move(r));
  }
  return rows;
}

// The tracer itself, as `cowbench run --trace auto` opens it: its BPF object loaded and
// attached (and released), the mode it gets and the programs that did not attach. The bpf
// rows above try one small program of each type; this one catches what only the real
// programs meet (the verifier refusing one of them).
HostCheck tracer_check() {
  HostCheck c{"tracer", false, ""};
#ifdef COWBENCH_HAVE_BPF_TRACER
  try {
    std::string why;
    auto tracer = ebpf::open_tracer("auto", {}, &why);
    if (!tracer) {
      c.detail = fmt::format("no probe mode works: {}", why);
      return c;
    }
    std::vector<std::string> missing;
    const nlohmann::json details = tracer->details();
    if (details.contains("programs"))
      for (const auto& [name, p] : details["programs"].items()) {
        std::string status = p.value("status", "");
        if (status != "attached") missing.push_back(fmt::format("{} ({})", name, status));
      }
    c.ok = true;
    c.detail = fmt::format("mode {}: the BPF programs loaded and attached{}", tracer->mode(),
                           missing.empty() ? "" : fmt::format(", but not {}", fmt::join(missing, "; ")));
  } catch (const Error& e) {
    c.detail = e.what();
  }
#else
  c.detail = "this cowbench was built without the eBPF tracer (clang, bpftool or libbpf missing)";
#endif
  return c;
}

// Prints rows under a header, every column but the last padded to its widest cell.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i + 1 < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : rows) {
    std::string line = " ";
    for (size_t i = 0; i < row.size(); ++i)
      line += " " + (i + 1 < row.size() ? fmt::format("{:<{}}", row[i], width[i]) : row[i]);
    out << line << "\n";
  }
}

nlohmann::json facts_json(const HostFacts& f) {
  return {{"kernel", f.kernel},
          {"arch", f.arch},
          {"cpu_model", f.cpu_model},
          {"cpus", f.cpus},
          {"memory_bytes", f.memory_bytes},
          {"lockdown", f.lockdown},
          {"cgroup_layout", f.cgroup_layout}};
}

}  // namespace

int run_doctor(std::ostream& out, const std::string& workdir, bool json) {
  make_dirs(workdir);
  HostFacts facts = host_facts();
  std::vector<HostCheck> checks = host_checks();
  // The tracer's load (the verifier's work, a few seconds) goes on beside the backends' trials
  // (mounts and mkfs, mostly waiting): neither is timed. The BPF probes of host_checks() are
  // done by then (libbpf's print callback is the process's), and the noise is measured after.
  auto tracer = std::async(std::launch::async, tracer_check);
  std::vector<BackendRow> backends = probe_backends(workdir);
  checks.push_back(tracer.get());
  nlohmann::json noise = measure_host_noise();

  if (json) {
    nlohmann::json doc;
    doc["host"] = facts_json(facts);
    doc["workdir"] = workdir;
    doc["checks"] = nlohmann::json::array();
    for (const auto& c : checks) doc["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    doc["backends"] = nlohmann::json::array();
    for (const auto& b : backends)
      doc["backends"].push_back({{"name", b.name},
                                 {"description", b.description},
                                 {"available", b.available},
                                 {"reason", b.reason},
                                 {"cow_granularity", b.granularity},
                                 {"shares_page_cache", b.shares_page_cache},
                                 {"needs_root", b.needs_root},
                                 {"host_needs", b.host_needs}});
    doc["workdir_caveats"] = workdir_caveats(workdir);
    doc["host_noise"] = noise;
    out << doc.dump(2) << "\n";
    return 0;
  }

  out << fmt::format("host: {} {}, {}, {} CPUs, {:.1f} GiB memory, lockdown {}\n", facts.kernel, facts.arch,
                     facts.cpu_model.empty() ? "unknown CPU" : facts.cpu_model, facts.cpus,
                     static_cast<double>(facts.memory_bytes) / (1ull << 30), facts.lockdown);
  out << "\nhost checks\n";
  std::vector<std::vector<std::string>> rows{{"check", "ok", "detail"}};
  for (const auto& c : checks) rows.push_back({c.name, c.ok ? "ok" : "NO", c.detail});
  print_table(out, rows);

  out << fmt::format("\nbackends (probed in {})\n", workdir);
  rows = {{"backend", "status", "cow", "page cache", "needs root", "detail"}};
  for (const auto& b : backends)
    rows.push_back({b.name, b.available ? "available" : "UNAVAILABLE", b.granularity,
                    b.shares_page_cache ? "shared" : "not shared", b.needs_root ? "yes" : "no", b.reason});
  print_table(out, rows);
  for (const auto& c : workdir_caveats(workdir)) out << "\nwork dir: " << c << "\n";
  auto pct = [](const nlohmann::json& p) { return p["cv"].is_number() ? fmt::format("{:.1f} %", p["cv"].get<double>() * 100) : "?"; };
  out << fmt::format("\nhost noise: over {} samples, in-memory work varied by {}, system calls by {} (coefficient of "
                     "variation)\n  {}\n",
                     noise["samples"].get<size_t>(), pct(noise), pct(noise["kernel"]), noise["advice"].get<std::string>());
  return 0;
}

}  // namespace cowbench
