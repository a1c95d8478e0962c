// The cowbench command line: subcommand groups, usage errors and the mapping of errors to exit codes (see app.h).
#include "runner/cli/app.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "common/log.h"
#include "runner/cli/command.h"

namespace cowbench {

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

}  // namespace cowbench

