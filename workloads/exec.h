// The exec workload: a command of the user's run with /bin/sh -c inside the container, to its
// exit or (--ready) until its output shows it is ready.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workloads/workload.h"

namespace cowbench::wl {

// One exec workload as `cowbench run` was given it.
struct ExecSpec {
  std::string command;  // verbatim, for /bin/sh -c
  std::string name;     // --exec-name; empty: named after the command
  std::string ready;    // --ready: an ECMAScript regular expression; empty: runs to its exit
};

// The name reports and results.json give it: `name` when set, else "exec:" and the command with
// its runs of white space made one space, cut after 32 characters (whole UTF-8 characters) with
// "…" appended.
std::string exec_display_name(const ExecSpec& spec);

// The exec workload. With spec.ready its run ends when a line of the command's output (stdout
// and stderr together) matches, and its time is the time to that line; the command's process
// group is then killed. When no line matches within `timeout` from the command's start (or it
// exits first), the run fails with the output's last lines.
std::unique_ptr<Workload> make_exec_workload(ExecSpec spec, std::chrono::milliseconds timeout);

// The exec workloads of `cowbench run` from its options in command-line order: each pair is an
// option ("exec", "exec-name" or "ready") and its value. The k-th --exec-name names the k-th
// --exec (as many of each, or no --exec-name at all); a --ready belongs to the --exec before it
// (at most one each). Throws kInvalidInput naming the problem: counts that differ, a --ready
// with no --exec before it or a second one for the same --exec, an empty command, name or
// expression, an expression std::regex rejects.
std::vector<ExecSpec> pair_exec_options(const std::vector<std::pair<std::string, std::string>>& in_order);

// The workload `name` of a run: the exec workload of `execs` with that display name, else the
// built-in or exec:CMD workload of make_workload. `timeout` is the run's (--timeout).
std::unique_ptr<Workload> make_run_workload(const std::string& name, const std::vector<ExecSpec>& execs,
                                            std::chrono::milliseconds timeout);

// Checks that the workload names of a run (built-in names and exec display names) are
// distinct and that no --exec-name takes a built-in workload's name; throws kInvalidInput
// naming the clash.
void check_workload_names(const std::vector<std::string>& names, const std::vector<ExecSpec>& execs);

}  // namespace cowbench::wl
