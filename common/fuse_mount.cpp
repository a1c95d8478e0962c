// Mounting FUSE daemons (see fuse_mount.h): fuse-overlayfs on a /dev/fuse mounted here, unionfs-fuse mounting itself; the daemon an owned child.
#include "common/fuse_mount.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <ranges>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "common/fuse_daemon_args.h"
#include "common/log.h"
#include "common/text.h"

extern char** environ;

namespace cowbench {
namespace {

using namespace std::chrono_literals;

// How long the daemon may take to answer its first request (it scans every layer first:
// seconds for 600 layers, a minute and a half for 5000 on the development machines).
constexpr auto kServeTimeout = 300s;
// How long a daemon gets to exit by itself once its mount is gone.
constexpr auto kExitTimeout = 2s;
// Lines of the daemons' stderr that are noise: fuse-overlayfs asks libfuse for "lazytime",
// which libfuse 3.14 does not know; unionfs-fuse 1.0 with hide_meta_files prints two debug
// lines for every directory entry it lists.
constexpr std::string_view kNoise = "unknown argument ignored: lazytime";
constexpr std::string_view kNoisePrefixes[] = {"uopt.branches[branch].path = ", "METANAME = "};
constexpr std::string_view kIgnored = "unknown argument ignored: ";

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// True when the daemon must not share this process's mount namespace: the process is the
// init of a pid namespace (a container being set up, which will pivot_root), or it is not
// in host pid 1's mount namespace (when /proc lets us compare; often it does not).
bool daemon_needs_own_namespace() {
  if (getpid() == 1) return true;
  struct stat self {}, init {};
  if (::stat("/proc/self/ns/mnt", &self) != 0 || ::stat("/proc/1/ns/mnt", &init) != 0) return false;
  return self.st_ino != init.st_ino || self.st_dev != init.st_dev;
}

// One FUSE daemon process this process started: killed and reaped by the destructor
// while it still runs (only in the process that started it, never in a forked copy).
class FuseDaemon {
 public:
  FuseDaemon(const char* program, pid_t pid, Fd pidfd, Fd log, std::string binary, std::string target)
      : program_(program), pid_(pid), owner_(getpid()), pidfd_(std::move(pidfd)), log_(std::move(log)),
        binary_(std::move(binary)), target_(std::move(target)) {}
  FuseDaemon(const FuseDaemon&) = delete;
  FuseDaemon& operator=(const FuseDaemon&) = delete;
  ~FuseDaemon() { stop(); }

  pid_t pid() const noexcept { return pid_; }
  bool owned() const noexcept { return owner_ == getpid(); }
  const std::string& target() const noexcept { return target_; }
  uint64_t mnt_id = 0;  // the mount it serves, once up

  // Reaps the daemon if it has ended; true when it has.
  bool ended() noexcept {
    if (reaped_) return true;
    siginfo_t info{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) != 0) {
      if (errno != ECHILD) return false;
      reaped_ = true;  // someone else reaped it (a waitpid(-1) elsewhere)
      code_ = -1;
      return true;
    }
    if (info.si_pid == 0) return false;
    reaped_ = true;
    code_ = info.si_code;
    status_ = info.si_status;
    return true;
  }

  // Waits up to `timeout` for the daemon to end by itself; true when it did.
  bool wait_end(std::chrono::milliseconds timeout) noexcept {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!ended()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{pidfd_.get(), POLLIN, 0};
      poll(&p, 1, static_cast<int>(left.count()));
    }
    return true;
  }

  // Kills the daemon if it still runs and reaps it.
  void stop() noexcept {
    if (!pidfd_ || !owned() || ended()) return;
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    siginfo_t info{};
    while (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0 && errno == EINTR) {
    }
    reaped_ = true;
    code_ = info.si_code;
    status_ = info.si_status;
  }

  int pidfd() const noexcept { return pidfd_.get(); }

  // "fuse-overlayfs (pid 12, /usr/bin/fuse-overlayfs)".
  std::string name() const { return fmt::format("{} (pid {}, {})", program_, pid_, binary_); }

  // "exited with status 1", "was killed by signal 9 (Killed)"; call after ended().
  std::string how_it_ended() const {
    if (code_ == CLD_EXITED) return fmt::format("exited with status {}", status_);
    if (code_ == -1) return "has ended (reaped elsewhere)";
    return fmt::format("was killed by signal {} ({})", status_, strsignal(status_));
  }

  // What the daemon wrote to stderr, noise removed, as "line; line" (the last 2 KiB).
  std::string log() const {
    std::string text;
    char buf[65536];
    struct stat st {};
    off_t from = fstat(log_.get(), &st) == 0 && st.st_size > off_t{sizeof buf} ? st.st_size - off_t{sizeof buf} : 0;
    ssize_t n = pread(log_.get(), buf, sizeof buf, from);
    if (n > 0) text.assign(buf, static_cast<size_t>(n));
    std::vector<std::string> lines;
    for (auto& l : split(text, '\n')) {
      bool noise = l.empty() || l == kNoise ||
                   std::any_of(std::begin(kNoisePrefixes), std::end(kNoisePrefixes),
                               [&](std::string_view p) { return l.starts_with(p); });
      if (!noise) lines.push_back(l);
    }
    std::string out = join(lines, "; ");
    if (out.size() > 2048) out = "..." + out.substr(out.size() - 2048);
    return out;
  }

 private:
  const char* program_;
  pid_t pid_;
  pid_t owner_;
  Fd pidfd_;
  Fd log_;
  std::string binary_;
  std::string target_;
  bool reaped_ = false;
  int code_ = 0;
  int status_ = 0;
};

// The daemons of this process, by mount. Never destroyed: a mount left up at exit keeps
// its daemon (cowbench gc unmounts it, which ends the daemon).
struct Daemons {
  std::mutex mu;
  std::vector<std::unique_ptr<FuseDaemon>> list;
};

Daemons& daemons() {
  static Daemons* d = [] {
    auto* r = new Daemons;
    // A fork while another thread holds the lock must not leave the child's copy locked.
    pthread_atfork([] { daemons().mu.lock(); }, [] { daemons().mu.unlock(); }, [] { daemons().mu.unlock(); });
    return r;
  }();
  return *d;
}

// The id of the mount at `path` (the mount it is on), without asking a FUSE daemon; 0 if unknown.
uint64_t mount_id_of(const std::string& path) {
  struct statx stx {};
  if (statx(AT_FDCWD, path.c_str(), AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) return 0;
  return (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
}

// Builds the daemon's argv and runs it. The child only makes system calls (the parent may
// have threads): signal mask cleared, own session (a Ctrl-C on the terminal is for the
// benchmark, which then unmounts), own mount namespace when asked, stdio and the FUSE fd
// in place, every other fd closed at exec, cwd, exec. Errors come back through a pipe.
// `fuse` is the mounted /dev/fuse for the daemon's fd 3, or empty for a daemon that mounts itself.
std::unique_ptr<FuseDaemon> spawn_daemon(const DaemonKind& kind, const std::string& binary, const DaemonArgs& args,
                                         const Fd& fuse, const std::string& target, bool own_namespace,
                                         Fd* exec_status) {
  std::string opts = join(args.options, ",");
  std::vector<const char*> argv{binary.c_str(), "-f", "-o", opts.c_str()};
  for (const auto& o : args.operands) argv.push_back(o.c_str());
  argv.push_back(nullptr);

  Fd log(memfd_create("fuse-daemon-stderr", MFD_CLOEXEC));
  if (!log) fail_sys("memfd_create");
  Fd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) fail_sys("open /dev/null");
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) fail_sys("pipe");
  Fd status_r(status[0]), status_w(status[1]);

  pid_t pid = fork();
  if (pid < 0) fail_sys("fork {}", kind.program);
  if (pid == 0) {
    int report = status_w.get();
    auto die = [&](int step) {
      int msg[2] = {step, errno};
      (void)!::write(report, msg, sizeof msg);
      _exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Open files up to the hard limit (unionfs-fuse keeps every branch open).
    struct rlimit files {};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
    }
    setsid();
    if (own_namespace) {
      if (unshare(CLONE_NEWNS) != 0) die(1);
      // Unmounts on the host reach a slave; the copy of our own mount would keep it alive.
      ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr);
      umount2(target.c_str(), MNT_DETACH);
    }
    // Out of the way of 0-3 first, then into place.
    int f = fuse ? fcntl(fuse.get(), F_DUPFD, 10) : 0, e = fcntl(log.get(), F_DUPFD, 10), n = fcntl(null.get(), F_DUPFD, 10);
    int r = fcntl(report, F_DUPFD_CLOEXEC, 10);
    if (f < 0 || e < 0 || n < 0 || r < 0) die(2);
    report = r;
    if (dup2(n, 0) < 0 || dup2(n, 1) < 0 || dup2(e, 2) < 0) die(2);
    if (fuse && dup2(f, kDaemonFuseFd) < 0) die(2);
    close_range(kDaemonFuseFd + 1, ~0U, CLOSE_RANGE_CLOEXEC);
    if (chdir(args.cwd.c_str()) != 0) die(3);
    execve(binary.c_str(), const_cast<char* const*>(argv.data()), environ);
    die(4);
  }
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    fail_errno(err, "pidfd_open {}", kind.program);
  }
  *exec_status = std::move(status_r);
  return std::make_unique<FuseDaemon>(kind.program, pid, std::move(pidfd), std::move(log), binary, target);
}

// Reads the child's report from before exec: "" when exec succeeded, else what failed.
std::string exec_failure(Fd& status) {
  int msg[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(status.get(), msg, sizeof msg)) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof msg)) return "";
  static const char* const kSteps[] = {"", "unshare(CLONE_NEWNS)", "dup2", "chdir", "exec"};
  return fmt::format("{}: {}", kSteps[std::clamp(msg[0], 0, 4)], std::strerror(msg[1]));
}

// Blocks until the daemon answers a request on `target` (the first one waits for its
// FUSE_INIT reply); returns 0 or the errno of the failed request (ENOTCONN when the daemon
// died first). A watchdog kills a daemon that has not answered after kServeTimeout.
int wait_serving(FuseDaemon& d, const std::string& target, bool* timed_out) {
  Fd cancel(eventfd(0, EFD_CLOEXEC));
  if (!cancel) fail_sys("eventfd");
  std::thread watchdog([&] {
    pollfd fds[2] = {{d.pidfd(), POLLIN, 0}, {cancel.get(), POLLIN, 0}};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kServeTimeout).count());
    int n;
    while ((n = poll(fds, 2, ms)) < 0 && errno == EINTR) {
    }
    if (n == 0) {
      *timed_out = true;
      syscall(SYS_pidfd_send_signal, d.pidfd(), SIGKILL, nullptr, 0);
    }
  });
  Fd root(open(target.c_str(), O_RDONLY | O_CLOEXEC));
  int err = root ? 0 : errno;
  uint64_t one = 1;
  (void)!::write(cancel.get(), &one, sizeof one);
  watchdog.join();
  return err;
}

// Options that fuse-overlayfs reported it ignores (it goes on without them).
std::vector<std::string> ignored_options(const std::string& log) {
  std::vector<std::string> out;
  for (const auto& l : split(log, ';')) {
    std::string line = l.starts_with(' ') ? l.substr(1) : l;
    if (line.starts_with(kIgnored)) out.push_back(line.substr(kIgnored.size()));
  }
  return out;
}

// Reaps every daemon (of this process) whose mount is gone; those on `target` (if given)
// get kExitTimeout to end by themselves first. The lock is not held while waiting.
void release(const std::string* target) {
  std::vector<std::unique_ptr<FuseDaemon>> done;
  {
    Daemons& ds = daemons();
    std::lock_guard lock(ds.mu);
    for (auto it = ds.list.begin(); it != ds.list.end();) {
      FuseDaemon& d = **it;
      bool mounted = d.mnt_id != 0 && mount_id_of(d.target()) == d.mnt_id;
      if (!d.owned() || mounted || (!(target && d.target() == *target) && !d.ended())) {
        ++it;
        continue;
      }
      done.push_back(std::move(*it));
      it = ds.list.erase(it);
    }
  }
  for (auto& d : done)
    if (!d->wait_end(kExitTimeout)) log::warn("{} still ran after {} was unmounted; killing it", d->name(), d->target());
  // The destructors kill what still runs and reap it.
}

// The daemon's program: its variable's path when set, else the first of its names in $PATH.
std::string daemon_binary(const DaemonKind& k) {
  if (const char* env = getenv(k.env); env && *env) {
    std::string p = env;
    if (!executable_file(p))
      fail(Errc::kUnsupported, "{} not found: {}={} is not an executable file{}", k.program, k.env, p,
           access(p.c_str(), F_OK) == 0 ? "" : " (no such file)");
    return p;
  }
  const char* path = getenv("PATH");
  auto dirs = split(path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ':');
  for (const char* name : k.names) {
    if (!name) continue;
    for (const auto& dir : dirs) {
      std::string p = path_join(dir.empty() ? "." : dir, name);
      if (executable_file(p)) return p;
    }
  }
  fail(Errc::kUnsupported, "{} not installed (apt-get install {})", k.program, k.package);
}

// Waits until the daemon has mounted `target` itself (its mount id is no longer `before`);
// throws kFailure when the daemon ends first or does not mount within kServeTimeout.
void wait_mounted(FuseDaemon& d, const DaemonKind& k, const std::string& target, uint64_t before) {
  auto deadline = std::chrono::steady_clock::now() + kServeTimeout;
  while (mount_id_of(target) == before) {
    if (d.wait_end(20ms)) {
      std::string log = d.log();
      fail(Errc::kFailure, "mount {} on {}: {} {} before it mounted{}", k.program, target, d.name(), d.how_it_ended(),
           log.empty() ? "" : ": " + log);
    }
    if (std::chrono::steady_clock::now() > deadline)
      fail(Errc::kFailure, "mount {} on {}: {} did not mount within {} s", k.program, target, d.name(),
           kServeTimeout.count());
  }
}

// Waits for the daemon's first answer on `target`; on failure detaches the mount and throws
// naming how the daemon ended and what it said.
void wait_first_answer(FuseDaemon& d, const DaemonKind& k, const std::string& target) {
  bool timed_out = false;
  int err = wait_serving(d, target, &timed_out);
  if (err == 0) return;
  umount2(target.c_str(), MNT_DETACH);
  std::string how = timed_out ? fmt::format("did not answer within {} s and was killed", kServeTimeout.count())
                              : (d.wait_end(kExitTimeout) ? d.how_it_ended() : "stopped answering");
  std::string log = d.log();
  throw Error(Errc::kFailure,
              fmt::format("mount {} on {}: {} {} ({}){}", k.program, target, d.name(), how, std::strerror(err),
                          log.empty() ? "" : ": " + log),
              err);
}

// Keeps the daemon of a mount that serves, for release() and fuse_mount_failure().
void keep(std::unique_ptr<FuseDaemon> daemon, const std::string& target) {
  daemon->mnt_id = mount_id_of(target);
  std::lock_guard lock(daemons().mu);
  daemons().list.push_back(std::move(daemon));
}

// fuse-overlayfs: /dev/fuse mounted here, the daemon handed the fd.
void mount_with_fd(const DaemonKind& k, const std::string& binary, const DaemonArgs& args, const std::string& target) {
  // The mount, made here in this process's namespace; the daemon only gets the fd.
  Fd fuse = open_fuse_device();
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) fail_sys("mount {} on {}", k.program, target);
  std::string data = fmt::format("fd={},rootmode={:o},user_id={},group_id={},default_permissions,allow_other", fuse.get(),
                                 st.st_mode & S_IFMT, getuid(), getgid());
  std::string fstype = fmt::format("fuse.{}", k.program);
  if (::mount(k.program, target.c_str(), fstype.c_str(), args.flags, data.c_str()) != 0) {
    int err = errno;
    if (err == ENODEV) fail(Errc::kUnsupported, "mount {} on {}: the kernel has no FUSE", k.program, target);
    fail_errno(err, "mount {} on {}", k.program, target);
  }
  try {
    Fd exec_status;
    auto daemon = spawn_daemon(k, binary, args, fuse, target, daemon_needs_own_namespace(), &exec_status);
    // Only the daemon may hold the connection now: when it dies, the kernel must end it.
    fuse.reset();
    if (std::string why = exec_failure(exec_status); !why.empty())
      fail(Errc::kFailure, "mount {} on {}: cannot start {}: {}", k.program, target, binary, why);
    wait_first_answer(*daemon, k, target);
    if (auto ignored = ignored_options(daemon->log()); !ignored.empty())
      fail(Errc::kInvalidInput, "mount {} on {}: {} does not know the option(s) {}", k.program, target, binary,
           join(ignored, ", "));
    keep(std::move(daemon), target);
  } catch (...) {
    umount2(target.c_str(), MNT_DETACH);
    throw;
  }
}

// unionfs-fuse (libfuse 2): the daemon mounts `target` itself, in this namespace.
void mount_by_daemon(const DaemonKind& k, const std::string& binary, const DaemonArgs& args, const std::string& target) {
  open_fuse_device();  // a missing /dev/fuse named as such, not in the daemon's words
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) fail_sys("mount {} on {}", k.program, target);
  const uint64_t before = mount_id_of(target);
  std::unique_ptr<FuseDaemon> daemon;
  try {
    Fd exec_status;
    daemon = spawn_daemon(k, binary, args, Fd(), target, false, &exec_status);
    if (std::string why = exec_failure(exec_status); !why.empty())
      fail(Errc::kFailure, "mount {} on {}: cannot start {}: {}", k.program, target, binary, why);
    wait_mounted(*daemon, k, target, before);
    wait_first_answer(*daemon, k, target);
    keep(std::move(daemon), target);
  } catch (...) {
    // Reaped first, so that it cannot mount after the check below.
    if (daemon) daemon->stop();
    if (mount_id_of(target) != before) umount2(target.c_str(), MNT_DETACH);
    throw;
  }
}

}  // namespace

bool is_fuse_daemon_type(std::string_view type) noexcept {
  return find_daemon_kind(type) != nullptr;
}

std::string fuse_overlayfs_binary() { return daemon_binary(kind_of(kFuseOverlayfsType)); }

std::string unionfs_fuse_binary() { return daemon_binary(kind_of(kUnionfsFuseType)); }

std::optional<FuseCopyupSite> fuse_copyup_site(const Mount& m) {
  std::string upper, work;
  for (const auto& o : m.options) {
    if (o.starts_with("upperdir=")) upper = o.substr(9);
    if (o.starts_with("workdir=")) work = o.substr(8);
  }
  if (upper.empty()) return std::nullopt;
  if (m.type == kFuseOverlayfsType) {
    if (work.empty()) return std::nullopt;
    return FuseCopyupSite{work, 2, "", false};
  }
  // unionfs-fuse copies a file up to its own path in the writable branch (open O_CREAT of it,
  // then read/write), and keeps its whiteouts below <branch>/.unionfs-fuse.
  if (m.type == kUnionfsFuseType) return FuseCopyupSite{upper, 0, kUnionfsMetaDir, true};
  return std::nullopt;
}

Fd open_fuse_device() {
  Fd fd(open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    throw Error(Errc::kUnsupported,
                fmt::format("/dev/fuse: {}{}", std::strerror(err), err == ENOENT ? " (modprobe fuse)" : ""), err);
  }
  return fd;
}

void mount_fuse(const Mount& m, const std::string& target) {
  const DaemonKind& k = kind_of(m.type);
  DaemonArgs args = daemon_args(k, m, target);
  std::string binary = daemon_binary(k);
  release(nullptr);  // reap the daemons of mounts detached elsewhere
  if (k.mounts_itself)
    mount_by_daemon(k, binary, args, target);
  else
    mount_with_fd(k, binary, args, target);
}

void release_fuse_daemons(const std::string& target) noexcept {
  try {
    release(&target);
  } catch (const std::exception& e) {
    log::warn("releasing the FUSE daemons of {}: {}", target, e.what());
  }
}

std::optional<std::string> fuse_mount_failure(const std::string& target) {
  // A request on the mount: fails with ENOTCONN (or ECONNABORTED, when it was under way)
  // once the daemon is gone.
  Fd root(open(target.c_str(), O_RDONLY | O_CLOEXEC));
  int err = root ? 0 : errno;
  bool dead = err == ENOTCONN || err == ECONNABORTED;
  uint64_t id = mount_id_of(target);
  Daemons& ds = daemons();
  std::lock_guard lock(ds.mu);
  for (const auto& d : ds.list) {
    if (!d->owned() || (d->mnt_id != id && d->target() != target)) continue;
    if (!dead && !d->ended()) return std::nullopt;
    // The connection dies while the process exits: give it a moment to become a status.
    std::string how = d->wait_end(kExitTimeout) ? d->how_it_ended() : "still runs, but its connection was aborted";
    std::string log = d->log();
    return fmt::format("the FUSE mount on {} is dead: its daemon {} {}; every operation on it fails with ENOTCONN{}",
                       target, d->name(), how, log.empty() ? "" : "; its stderr: " + log);
  }
  if (dead) return fmt::format("the FUSE mount on {} is dead: its daemon is gone ({})", target, std::strerror(err));
  return std::nullopt;
}

void check_fuse_mount(const std::string& target) {
  if (auto why = fuse_mount_failure(target)) throw Error(Errc::kFailure, *why, ENOTCONN);
}

}  // namespace cowbench
