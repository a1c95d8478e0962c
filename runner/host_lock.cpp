// The host-wide measuring lock (see host_lock.h).
#include "runner/host_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace cowbench {
namespace {

using nlohmann::json;

constexpr const char* kRunLock = "/run/cowbench.lock";
constexpr const char* kVarTmpLock = "/var/tmp/cowbench.lock";

std::string utc_now() {
  time_t t = time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// This process's command line, arguments joined by spaces.
std::string own_command_line() {
  std::string raw;
  try {
    raw = read_file("/proc/self/cmdline");
  } catch (const Error&) {
    return "";
  }
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw)
    if (c == '\0') c = ' ';
  return raw;
}

std::string absolute(const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  char cwd[4096];
  return getcwd(cwd, sizeof cwd) ? path_join(cwd, p) : p;
}

// The descriptor named by kHostLockFdEnv when it is an open descriptor of `path` that holds
// the lock already (through the open file its parent locked); -1 otherwise.
int borrowed_descriptor(const std::string& path) {
  const char* env = std::getenv(kHostLockFdEnv);
  if (!env || !*env) return -1;
  int fd = -1;
  auto [end, ec] = std::from_chars(env, env + std::char_traits<char>::length(env), fd);
  if (ec != std::errc() || *end != '\0' || fd < 0) return -1;
  struct stat a {}, b {};
  if (fstat(fd, &a) != 0 || stat(path.c_str(), &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) return -1;
  // The same open file as the parent's: LOCK_EX succeeds at once when the parent holds it
  // (a flock belongs to the open file), and would take it for both when nobody does.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return -1;
  return fd;
}

// The holder's description, tried a few times: a holder writes it right after it got the lock.
std::optional<LockHolder> read_holder_settled(const std::string& path) {
  for (int i = 0; i < 10; ++i) {
    if (auto h = read_lock_holder(path)) return h;
    usleep(20'000);
  }
  return std::nullopt;
}

std::string holder_words(const std::string& path) {
  auto h = read_holder_settled(path);
  return h ? h->describe() : "a process that did not describe itself";
}

}  // namespace

std::string host_lock_path() {
  if (const char* env = std::getenv(kHostLockFileEnv); env && *env) return env;
  return access("/run", W_OK) == 0 ? kRunLock : kVarTmpLock;
}

std::string LockHolder::describe() const {
  std::string out = fmt::format("pid {}", pid);
  if (!command.empty()) out += fmt::format(" ({})", command);
  if (!since.empty()) out += fmt::format(", holding it since {}", since);
  if (!workdir.empty()) out += fmt::format(", work dir {}", workdir);
  return out;
}

std::optional<LockHolder> parse_lock_holder(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto pid = j.find("pid");
  if (pid == j.end() || !pid->is_number_integer() || pid->get<int64_t>() <= 0) return std::nullopt;
  LockHolder h;
  h.pid = static_cast<pid_t>(pid->get<int64_t>());
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  h.command = str("command");
  h.since = str("since");
  h.workdir = str("workdir");
  return h;
}

std::optional<LockHolder> read_lock_holder(const std::string& path) {
  try {
    return parse_lock_holder(read_file(path));
  } catch (const Error&) {
    return std::nullopt;
  }
}

HostLock::HostLock(const HostLockOptions& o) : path_(o.path.empty() ? host_lock_path() : o.path) {
  if (int fd = borrowed_descriptor(path_); fd >= 0) {
    borrowed_ = true;
    // Programs this one starts (FUSE daemons, containers) must not keep the parent's lock.
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    unsetenv(kHostLockFdEnv);
    return;
  }
  int flags = O_CLOEXEC | O_NOFOLLOW;
  fd_.reset(open(path_.c_str(), O_RDWR | O_CREAT | flags, 0644));
  // A lock file another user made: read-only is enough to lock it (not to describe oneself).
  if (!fd_ && errno == EACCES) fd_.reset(open(path_.c_str(), O_RDONLY | flags));
  if (!fd_) fail_sys("host lock {}: cannot open it", path_);
  if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) fail_sys("host lock {}: flock", path_);
    std::string who = holder_words(path_);
    if (!o.wait)
      fail(Errc::kFailedPrecondition,
           "another measurement holds the host lock {}: {} (without --no-wait, cowbench run waits for it)", path_, who);
    std::string line = fmt::format("waiting for the host lock {}, held by {}", path_, who);
    if (o.on_wait)
      o.on_wait(line);
    else
      fmt::print(stderr, "cowbench: {}\n", line);
    int64_t t0 = monotonic_ns();
    while (flock(fd_.get(), LOCK_EX) != 0) {
      if (errno == EINTR) throw Error(Errc::kInterrupted, fmt::format("interrupted while waiting for the host lock {}", path_));
      fail_sys("host lock {}: flock", path_);
    }
    waited_ns_ = monotonic_ns() - t0;
  }
  // Ours now: say who holds it, for whoever comes next.
  json me{{"pid", getpid()}, {"command", own_command_line()}, {"since", utc_now()}, {"workdir", absolute(o.workdir)}};
  std::string text = me.dump() + "\n";
  if (ftruncate(fd_.get(), 0) != 0 || pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    log::debug("host lock {}: cannot write the holder's description: {}", path_, std::strerror(errno));
}

void HostLock::share_with_children() {
  if (borrowed_ || !fd_) return;
  fcntl(fd_.get(), F_SETFD, fcntl(fd_.get(), F_GETFD) & ~FD_CLOEXEC);
  setenv(kHostLockFdEnv, std::to_string(fd_.get()).c_str(), 1);
  shared_ = true;
}

int HostLock::close() noexcept {
  if (borrowed_ || !fd_) return 0;
  if (shared_) unsetenv(kHostLockFdEnv);
  // Clear the description first: a reader then sees nothing rather than a holder that is gone.
  if (ftruncate(fd_.get(), 0) != 0) log::debug("host lock {}: cannot clear the description", path_);
  return fd_.close();  // the last descriptor of the open file: the flock goes with it
}

HostLock::~HostLock() {
  if (int rc = close(); rc != 0) log::warn("host lock {}: close: {}", path_, std::strerror(-rc));
}

}  // namespace cowbench
