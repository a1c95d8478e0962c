// The tests' one tracer per test program, as `cowbench run` has one for the whole matrix.
#pragma once

#include <string>

#include "ebpf/tracer.h"

namespace cowbench::test {

// The tracepoint-mode tracer, opened on first use and kept for the whole program; null with
// *error saying why when it cannot be opened here.
ebpf::TraceSession* shared_tracer(std::string* error);

}  // namespace cowbench::test
