// Running helper programs (mkfs.xfs, mkfs.btrfs, mkfs.erofs): finding them, running them, their output for an error message.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cowbench {

// `name` if it holds a slash (and is executable), else the first executable `name` in PATH,
// /sbin or /usr/sbin; nullopt when there is none.
std::optional<std::string> find_program(const std::string& name);

struct ProgramResult {
  int status = 0;      // as waitpid reports it
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv (argv[0] a path) with stdin from /dev/null, waits for it and collects what it
// prints. Throws kFailure when it cannot be started.
ProgramResult run_program(const std::vector<std::string>& argv);

// "exit status N" or "signal N" for a status from ProgramResult; empty for exit status 0.
std::string program_failure(int status);

// A program's output as one short line for an error message: its usage text (mkfs.xfs prints
// it after the error) and anything past 400 characters left out; "no output" when empty.
std::string one_line(std::string s);

}  // namespace cowbench
