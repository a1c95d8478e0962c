// The tests' shared tracer (see trace_util.h).
#include "tests/trace_util.h"

#include <memory>

#include "common/error.h"

namespace cowbench::test {

ebpf::TraceSession* shared_tracer(std::string* error) {
  static std::unique_ptr<ebpf::TraceSession> tracer;
  static std::string failure;
  static bool tried = false;
  if (!tried) {
    tried = true;
    try {
      tracer = ebpf::open_tracer("tracepoint");
    } catch (const Error& e) {
      failure = e.what();
    }
  }
  *error = failure;
  return tracer.get();
}

}  // namespace cowbench::test
