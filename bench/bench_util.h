// Helpers the benchmark programs share: running a peer command, CPU time with children, taking our own flags.
#pragma once

#include <spawn.h>
#include <sys/resource.h>
#include <benchmark/benchmark.h>
#include <fmt/core.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

extern char** environ;

namespace cowbench::bench {

// Runs argv (searched in PATH) to completion; returns its exit status, or -1 when it died.
inline int run_command(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (int err = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ)) fail_errno(err, "spawn {}", argv[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) fail_sys("wait for {}", argv[0]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// CPU seconds (user + system) used so far by this process and its waited-for children: wall
// time on a shared machine depends on the neighbours, CPU time much less.
inline double cpu_seconds() {
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  rusage self {}, children {};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return secs(self.ru_utime) + secs(self.ru_stime) + secs(children.ru_utime) + secs(children.ru_stime);
}

// Takes "--NAME=value" flags (prefix "--NAME=") out of argv, before Google Benchmark parses
// the rest; calls set(value) for each.
template <typename Set>
void take_flag(int& argc, char** argv, std::string_view prefix, Set set) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with(prefix))
      set(std::string(a.substr(prefix.size())));
    else
      argv[out++] = argv[i];
  }
  argc = out;
}

// Google Benchmark's main, after the benchmarks are registered: parses its flags (2 on an
// unknown one), runs them; a cowbench::Error ends the run with 1, naming `program`. The
// caller cleans up and calls benchmark::Shutdown().
inline int run_benchmarks(int& argc, char** argv, const char* program) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const Error& e) {
    fmt::print(stderr, "{}: {}\n", program, e.what());
    return 1;
  }
  return 0;
}

}  // namespace cowbench::bench
