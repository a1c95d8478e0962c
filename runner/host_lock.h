// The host-wide lock every measuring run holds, so that two runs on one machine do not distort each other.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace cowbench {

// The environment variable that names another lock file (tests, or hosts where /run is shared
// by unrelated machines); the default is host_lock_path().
inline constexpr const char* kHostLockFileEnv = "COWBENCH_LOCK_FILE";
// The environment variable through which a holder hands the lock to the programs it starts
// (HostLock::share_with_children): the number of an inherited descriptor of the lock file.
inline constexpr const char* kHostLockFdEnv = "COWBENCH_HOST_LOCK_FD";

// The lock file: $COWBENCH_LOCK_FILE when set, else /run/cowbench.lock when /run is writable
// by this process, else /var/tmp/cowbench.lock. (A root run and an unprivileged one may thus
// use different files; cowbench run needs root anyway.)
std::string host_lock_path();

// Who holds the lock, as the holder wrote it into the lock file.
struct LockHolder {
  pid_t pid = 0;
  std::string command;  // its command line, arguments joined by spaces
  std::string since;    // when it took the lock, UTC, ISO 8601 ("2026-12-01T10:00:00Z")
  std::string workdir;  // its work directory ("" when it did not say)
  // "pid 123 (cowbench run --backends copy), holding it since 2026-12-01T10:00:00Z, work dir /var/tmp/w".
  std::string describe() const;
};
// The holder in a lock file's content (JSON written by HostLock); nullopt when the content is
// empty or not such a document. Pure.
std::optional<LockHolder> parse_lock_holder(std::string_view text);
// What the lock file at `path` says about its holder now, read without locking; nullopt when
// it says nothing (no file, empty, half written).
std::optional<LockHolder> read_lock_holder(const std::string& path);

struct HostLockOptions {
  std::string path;     // "" = host_lock_path()
  bool wait = true;     // false: fail at once when another process holds it
  std::string workdir;  // written into the lock file for whoever waits
  // Told once, when the lock is held by another process and this one starts waiting for it
  // (the line names the holder); default: printed to stderr as "cowbench: ...".
  std::function<void(const std::string& line)> on_wait;
};

// Holds the lock from construction to destruction: flock(2) LOCK_EX on the lock file, with
// the holder's description (pid, command line, since when, work dir) written into it. The
// kernel drops a flock with the last descriptor of its open file, so a holder that is killed
// (SIGKILL included) releases the lock at once; nothing stale is left to clean up.
//
// When the environment names an inherited descriptor of the same file that already holds the
// lock (kHostLockFdEnv, set by a parent's share_with_children()), the lock is the parent's and
// this one only borrows it: it neither waits nor rewrites the description nor unlocks.
//
// Errors: kFailedPrecondition when !wait and another process holds it (the message names the
// holder: the CLI exits 1, a busy host is not a usage error); kFailure when the file cannot be
// opened or locked. Interrupted by a signal while waiting: kInterrupted.
class HostLock {
 public:
  explicit HostLock(const HostLockOptions& options = {});
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;
  ~HostLock();

  const std::string& path() const noexcept { return path_; }
  // True when the lock came from a parent (see above).
  bool borrowed() const noexcept { return borrowed_; }
  // Nanoseconds spent waiting for it (0 when it was free).
  int64_t waited_ns() const noexcept { return waited_ns_; }
  // Lets the programs this process starts share the lock instead of waiting for it: the
  // descriptor stays open across exec and kHostLockFdEnv names it. For test suites that hold
  // the lock while they run `cowbench run`.
  void share_with_children();
  // Releases now: the description is cleared and the lock dropped; 0 or -errno.
  int close() noexcept;

 private:
  std::string path_;
  Fd fd_;
  bool borrowed_ = false;
  bool shared_ = false;
  int64_t waited_ns_ = 0;
};

}  // namespace cowbench
