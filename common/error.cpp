// Names of error categories, for messages and logs.
#include "common/error.h"

namespace cowbench {

const char* errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kFailure: return "failure";
    case Errc::kUsage: return "usage";
    case Errc::kInvalidInput: return "invalid input";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kFailedPrecondition: return "failed precondition";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kInterrupted: return "interrupted";
  }
  return "unknown";
}

}  // namespace cowbench
