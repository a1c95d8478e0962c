// How a CLI command group plugs into `cowbench`: it adds its subcommands and says how to run them.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace cowbench {

// One runnable subcommand: when `sub` was given on the command line, `run` is called and
// its return value is the exit code. Errors are thrown as cowbench::Error and mapped to
// exit codes in one place (app.h).
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// Default work directory (snapshots, caches, scratch filesystems).
inline constexpr const char* kDefaultWorkdir = "./cowbench-work";

// The command groups; each lives in its own cmd_*.cpp.
void add_host_commands(CLI::App& app, Commands& out);  // doctor, list backends, gc
void add_image_commands(CLI::App& app, Commands& out);  // image synth, image inspect
void add_run_commands(CLI::App& app, Commands& out);   // run, list workloads (after add_host_commands)
void add_report_commands(CLI::App& app, Commands& out);  // report
void add_compare_commands(CLI::App& app, Commands& out);  // compare
void add_merge_commands(CLI::App& app, Commands& out);   // merge

}  // namespace cowbench
