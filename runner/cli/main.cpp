// The cowbench executable: SIGPIPE made harmless, then the command line (runner/cli/app.h).
#include <signal.h>
#include <fmt/format.h>

#include <exception>

#include "common/error.h"
#include "runner/cli/app.h"

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
