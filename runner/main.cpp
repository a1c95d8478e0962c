// The cowbench command line: subcommands, usage errors and the one mapping of errors to exit codes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/log.h"
#include "runner/doctor.h"
#include "runner/gc.h"
#include "snapshotters/registry.h"

namespace cowbench {
namespace {

constexpr const char* kDefaultWorkdir = "./cowbench-work";

// Exit codes: 0 ok, 1 failure, 2 bad usage or bad input, 77 unsupported on this host.
int exit_code_for(Errc c) {
  switch (c) {
    case Errc::kUsage:
    case Errc::kInvalidInput:
    case Errc::kNotFound:
    case Errc::kAlreadyExists: return 2;
    case Errc::kUnsupported: return 77;
    case Errc::kInterrupted: return 130;
    case Errc::kFailure:
    case Errc::kFailedPrecondition: return 1;
  }
  return 1;
}

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
    std::cout << fmt::format("{:<16} cow granularity: {}, shares page cache: {}, needs: {}\n", "",
                             b["cow_granularity"].get<std::string>(), b["shares_page_cache"].get<bool>() ? "yes" : "no",
                             b["host_needs"].get<std::string>());
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

int run_cli(int argc, char** argv) {
  CLI::App app{"cowbench: benchmarks copy-on-write snapshot storage for containers"};
  app.set_version_flag("--version", COWBENCH_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "more log output (repeat for debug)");

  std::string workdir = kDefaultWorkdir;
  bool json = false;

  auto* doctor = app.add_subcommand("doctor", "what this host supports for each backend and tracer, and why not");
  doctor->add_option("--workdir", workdir, "work directory whose file system is probed")->capture_default_str();
  doctor->add_flag("--json", json, "print one JSON object");

  auto* list = app.add_subcommand("list", "list backends (or, later, workloads)");
  list->require_subcommand(1);
  auto* list_b = list->add_subcommand("backends", "snapshotter backends, their capabilities and availability here");
  list_b->add_option("--workdir", workdir, "work directory whose file system is probed")->capture_default_str();
  list_b->add_flag("--json", json, "print JSON");

  bool everything = false;
  auto* gc = app.add_subcommand("gc", "unmount and detach whatever a killed run left in a work directory");
  gc->add_option("--workdir", workdir, "work directory to clean")->capture_default_str();
  gc->add_flag("--all", everything, "also delete the work directory itself, cached layers included");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::cerr << "cowbench: " << msg << " (see cowbench --help)\n";
    return 2;
  }
  log::set_level(verbosity >= 2 ? log::Level::kDebug : verbosity == 1 ? log::Level::kInfo : log::Level::kWarn);

  if (*doctor) return run_doctor(std::cout, workdir, json);
  if (*list_b) return list_backends(workdir, json);
  if (*gc) return run_gc(workdir, everything);
  return 2;
}

}  // namespace
}  // namespace cowbench

int main(int argc, char** argv) {
  try {
    return cowbench::run_cli(argc, argv);
  } catch (const cowbench::Error& e) {
    fmt::print(stderr, "cowbench: error: {}\n", e.what());
    return cowbench::exit_code_for(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "cowbench: error: {}\n", e.what());
    return 1;
  }
}
