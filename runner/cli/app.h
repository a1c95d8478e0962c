// The cowbench command line as a function: its subcommands parsed and run, and the one mapping
// of errors to exit codes. main.cpp calls it; it lives in the cli library so that CLI11 is
// compiled once, with the commands.
#pragma once

#include "common/error.h"

namespace cowbench {

// Exit codes: 0 ok, 1 failure, 2 bad usage or bad input, 77 unsupported on this host,
// 130 interrupted.
int exit_code_for(Errc c);

// Parses argv, runs the subcommand and returns its exit code (2 for usage errors). Errors of
// the command itself propagate (main maps them with exit_code_for).
int run_cli(int argc, char** argv);

}  // namespace cowbench
