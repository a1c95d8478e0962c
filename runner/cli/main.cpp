// The cowbench command line: subcommand groups, usage errors and the one mapping of errors to exit codes.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <fmt/format.h>

#include <iostream>

#include "common/error.h"
#include "common/log.h"
#include "runner/cli/command.h"

namespace cowbench {
namespace {

// Exit codes: 0 ok, 1 failure, 2 bad usage or bad input, 77 unsupported on this host,
// 130 interrupted.
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

int run_cli(int argc, char** argv) {
  CLI::App app{"cowbench: benchmarks copy-on-write snapshot storage for containers"};
  app.set_version_flag("--version", COWBENCH_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  app.add_flag("-v,--verbose", verbosity, "more log output (repeat for debug)");

  Commands commands;
  add_host_commands(app, commands);
  add_image_commands(app, commands);
  add_report_commands(app, commands);
  add_merge_commands(app, commands);
  add_compare_commands(app, commands);
  add_run_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "cowbench: " << e.what() << " (see --help)\n";
    return 2;
  }
  log::set_level(verbosity >= 2 ? log::Level::kDebug : verbosity == 1 ? log::Level::kInfo : log::Level::kWarn);
  for (const auto& c : commands)
    if (c.sub->parsed()) return c.run();
  std::cerr << "cowbench: no command given (see --help)\n";
  return 2;
}

}  // namespace
}  // namespace cowbench

extern "C" void ignore_sigpipe(int) {}

int main(int argc, char** argv) {
  // A reader of our output that goes away (`| head`, a dead log pipe) must not kill a run with
  // its mounts, loop devices and cgroups in place: writes then fail with EPIPE instead. Caught,
  // not ignored, so the programs cowbench starts get the default action back at exec.
  struct sigaction sa {};
  sa.sa_handler = ignore_sigpipe;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
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
