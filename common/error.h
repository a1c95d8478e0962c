// The one error type of cowbench: a category (mapped to an exit code by the CLI) and a message.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cowbench {

// What went wrong, in the vocabulary of containerd's errdefs plus the CLI's needs.
// The CLI maps these to exit codes in one place, exit_code_for in runner/cli/main.cpp: usage,
// invalid input, not found and already-exists are the caller's fault (2), unsupported is 77,
// interrupted 130, the rest 1.
enum class Errc {
  kFailure,             // an operation failed (I/O, kernel refused, child died)
  kUsage,               // bad command-line usage
  kInvalidInput,        // bad input: image, name, option value, file
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a name is taken
  kFailedPrecondition,  // the thing exists but is in the wrong state (e.g. remove with children)
  kUnsupported,         // the host lacks a feature this needs
  kInterrupted,         // stopped by a signal
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, std::string message, int sys_errno = 0)
      : std::runtime_error(std::move(message)), code_(code), sys_errno_(sys_errno) {}

  Errc code() const noexcept { return code_; }
  // The errno behind the error, 0 when it did not come from a system call.
  int sys_errno() const noexcept { return sys_errno_; }

 private:
  Errc code_;
  int sys_errno_;
};

// Throws Error(code, formatted message).
template <typename... Args>
[[noreturn]] void fail(Errc code, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

// Throws Error(kFailure, "<formatted message>: <strerror(err)>", err), whatever the errno: a
// full disk reads "No space left on device" (ENOSPC) or "Disk quota exceeded" (EDQUOT), and
// sys_errno() tells them apart.
template <typename... Args>
[[noreturn]] void fail_errno(int err, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(Errc::kFailure,
              fmt::format("{}: {}", fmt::format(f, std::forward<Args>(args)...), std::strerror(err)),
              err);
}

// Same as fail_errno(errno, ...): call right after the failing system call.
template <typename... Args>
[[noreturn]] void fail_sys(fmt::format_string<Args...> f, Args&&... args) {
  int err = errno;
  fail_errno(err, f, std::forward<Args>(args)...);
}

}  // namespace cowbench
