// CLI commands about the host and the work directory: doctor, list backends, gc.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "runner/cli/command.h"
#include "runner/doctor.h"
#include "runner/gc.h"
#include "snapshotters/registry.h"

namespace cowbench {
namespace {

int list_backends(const std::string& workdir, bool json) {
  const auto& reg = snap::builtin_registry();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& name : reg.names()) {
    const auto& spec = reg.get(name);
    snap::Availability a = spec.probe(workdir);
    nlohmann::json opts = nlohmann::json::array();
    for (const auto& o : spec.options) opts.push_back({{"name", o.name}, {"values", o.values}, {"help", o.help}});
    out.push_back({{"name", name},
                   {"available", a.available},
                   {"reason", a.reason},
                   {"description", spec.description},
                   {"cow_granularity", snap::granularity_name(spec.caps.cow_granularity)},
                   {"shares_page_cache", spec.caps.shares_page_cache},
                   {"needs_root", spec.caps.needs_root},
                   {"host_needs", spec.caps.host_needs},
                   {"in_default_run", spec.in_default},
                   {"options", opts}});
  }
  if (json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& b : out) {
    std::cout << fmt::format("{:<16} {:<12} {}\n", b["name"].get<std::string>(),
                             b["available"].get<bool>() ? "available" : "UNAVAILABLE",
                             b["description"].get<std::string>());
    std::cout << fmt::format("{:<16} cow granularity: {}, shares page cache: {}, needs: {}{}\n", "",
                             b["cow_granularity"].get<std::string>(), b["shares_page_cache"].get<bool>() ? "yes" : "no",
                             b["host_needs"].get<std::string>(),
                             b["in_default_run"].get<bool>() ? "" : "; not in a run without --backends (--backends all)");
    std::cout << fmt::format("{:<16} {}: {}\n", "", b["available"].get<bool>() ? "checked" : "why",
                             b["reason"].get<std::string>());
    for (const auto& o : b["options"])
      std::cout << fmt::format("{:<16} option {}={}: {}\n", "", o["name"].get<std::string>(),
                               o["values"].get<std::string>(), o["help"].get<std::string>());
  }
  return 0;
}

int run_gc(const std::string& workdir, bool everything) {
  GcReport r = collect_garbage(workdir, everything);
  for (const auto& m : r.unmounted) std::cout << "unmounted " << m << "\n";
  for (const auto& d : r.detached) std::cout << "detached " << d << "\n";
  for (const auto& d : r.removed) std::cout << "removed " << d << "\n";
  for (const auto& e : r.errors) std::cerr << "cowbench: gc: " << e << "\n";
  if (r.unmounted.empty() && r.detached.empty() && r.removed.empty() && r.errors.empty())
    std::cout << "nothing to clean in " << workdir << "\n";
  return r.errors.empty() ? 0 : 1;
}

}  // namespace

void add_host_commands(CLI::App& app, Commands& out) {
  struct Opts {
    std::string workdir = kDefaultWorkdir;
    bool json = false;
    bool everything = false;
  };
  auto o = std::make_shared<Opts>();

  auto* doctor = app.add_subcommand("doctor", "what this host supports for each backend and tracer, and why not");
  doctor->add_option("--workdir", o->workdir, "work directory whose file system is probed")->capture_default_str();
  doctor->add_flag("--json", o->json, "print one JSON object");
  out.push_back({doctor, [o] { return run_doctor(std::cout, o->workdir, o->json); }});

  auto* list = app.add_subcommand("list", "list backends or workloads");
  list->require_subcommand(1);
  auto* backends = list->add_subcommand("backends", "snapshotter backends, their capabilities and availability here");
  backends->add_option("--workdir", o->workdir, "work directory whose file system is probed")->capture_default_str();
  backends->add_flag("--json", o->json, "print JSON");
  out.push_back({backends, [o] { return list_backends(o->workdir, o->json); }});

  auto* gc = app.add_subcommand("gc", "unmount and detach whatever a killed run left in a work directory");
  gc->add_option("--workdir", o->workdir, "work directory to clean")->capture_default_str();
  gc->add_flag("--all", o->everything, "also delete the work directory itself, cached layers included");
  out.push_back({gc, [o] { return run_gc(o->workdir, o->everything); }});
}

}  // namespace cowbench
