// The container sandbox (see sandbox.h).
#include "runner/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/clock.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "runner/cgroup.h"

namespace cowbench {
namespace {

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

// mkdir if missing; a read-only root (a view) simply keeps what it has.
bool ensure_dir(const std::string& p) {
  if (mkdir(p.c_str(), 0755) == 0 || errno == EEXIST) return true;
  return false;
}

void setup_dev(const std::string& dev) {
  if (::mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") != 0) fail_sys("mount /dev");
  struct Node {
    const char* name;
    unsigned maj, min;
  };
  for (const Node& n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7}, Node{"random", 1, 8},
                        Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    std::string p = path_join(dev, n.name);
    if (mknod(p.c_str(), S_IFCHR | 0666, makedev(n.maj, n.min)) != 0) fail_sys("mknod {}", p);
    chmod(p.c_str(), 0666);
  }
  symlink("/proc/self/fd", path_join(dev, "fd").c_str());
  ensure_dir(path_join(dev, "shm"));
}

// Inside the new namespaces, as the container's pid 1: build the root and pivot into it.
void enter_rootfs(const SandboxOptions& o) {
  // Nothing we mount may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail_sys("make / private");
  mount_all(o.mounts, o.rootfs);
  std::string proc = path_join(o.rootfs, "proc");
  if (ensure_dir(proc) && ::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    fail_sys("mount /proc");
  std::string dev = path_join(o.rootfs, "dev");
  if (ensure_dir(dev)) setup_dev(dev);
  if (chdir(o.rootfs.c_str()) != 0) fail_sys("chdir {}", o.rootfs);
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail_sys("pivot_root into {}", o.rootfs);
  if (umount2(".", MNT_DETACH) != 0) fail_sys("detach the old root");
  if (chdir("/") != 0) fail_sys("chdir /");
  if (sethostname(o.hostname.data(), o.hostname.size()) != 0) fail_sys("sethostname");
}

[[noreturn]] void container_main(const SandboxOptions& o, const std::function<nlohmann::json()>& fn, int out_fd) {
  nlohmann::json msg;
  int code = 0;
  int64_t t0 = monotonic_ns();
  try {
    enter_rootfs(o);
    if (o.cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(o.cpu, &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) fail_sys("pin the container to CPU {}", o.cpu);
      sched_yield();  // on its CPU before the clock starts
    }
    int64_t t1 = monotonic_ns();
    msg["setup_ns"] = t1 - t0;
    nlohmann::json r = fn();
    msg["run_ns"] = monotonic_ns() - t1;
    msg["result"] = std::move(r);
  } catch (const std::exception& e) {
    msg["error"] = e.what();
    code = 1;
  }
  write_all(out_fd, msg.dump());
  _exit(code);
}

}  // namespace

StartedSandbox start_sandbox(const SandboxOptions& o, const std::function<nlohmann::json()>& fn) {
  int out[2], go[2];
  if (pipe2(out, O_CLOEXEC) != 0) fail_sys("pipe");
  Fd out_r(out[0]), out_w(out[1]);
  if (pipe2(go, O_CLOEXEC) != 0) fail_sys("pipe");
  Fd go_r(go[0]), go_w(go[1]);

  pid_t outer = fork();
  if (outer < 0) fail_sys("fork container");
  if (outer == 0) {
    // The outer child: waits until its cgroup is set, makes the namespaces, forks pid 1.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setsid();
    char c;
    if (::read(go_r.get(), &c, 1) != 1) _exit(120);
    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) {
      write_all(out_w.get(), nlohmann::json{{"error", fmt::format("unshare: {}", std::strerror(errno))}}.dump());
      _exit(121);
    }
    pid_t init = fork();
    if (init < 0) _exit(122);
    if (init == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      container_main(o, fn, out_w.get());
    }
    int status = 0;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
    _exit(WEXITSTATUS(status));
  }

  // The caller: join the cgroup for the container, then let it go.
  out_w.reset();
  go_r.reset();
  try {
    if (o.cgroup) o.cgroup->add(outer);
  } catch (...) {
    kill(outer, SIGKILL);
    waitpid(outer, nullptr, 0);
    throw;
  }
  if (::write(go_w.get(), "g", 1) != 1) {
    int e = errno;
    kill(outer, SIGKILL);
    waitpid(outer, nullptr, 0);
    errno = e;
    fail_sys("start container");
  }
  go_w.reset();

  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, outer, 0)));
  if (!pidfd) {
    kill(outer, SIGKILL);
    waitpid(outer, nullptr, 0);
    fail_sys("pidfd_open container");
  }
  StartedSandbox s;
  s.outer_ = outer;
  s.out_ = out_r.release();
  s.pidfd_ = pidfd.release();
  s.timeout_ = o.timeout;
  s.deadline_ns_ = o.timeout.count() > 0 ? monotonic_ns() + o.timeout.count() * 1'000'000 : 0;
  s.cgroup_ = o.cgroup;
  s.cancel_ = o.cancel;
  return s;
}

StartedSandbox::StartedSandbox(StartedSandbox&& o) noexcept { *this = std::move(o); }

StartedSandbox& StartedSandbox::operator=(StartedSandbox&& o) noexcept {
  if (this != &o) {
    this->~StartedSandbox();
    outer_ = std::exchange(o.outer_, -1);
    out_ = std::exchange(o.out_, -1);
    pidfd_ = std::exchange(o.pidfd_, -1);
    deadline_ns_ = o.deadline_ns_;
    timeout_ = o.timeout_;
    cgroup_ = o.cgroup_;
    cancel_ = o.cancel_;
  }
  return *this;
}

StartedSandbox::~StartedSandbox() {
  if (outer_ > 0) {
    if (cgroup_) {
      try {
        cgroup_->kill_all();
      } catch (...) {
      }
    }
    kill(outer_, SIGKILL);
    while (waitpid(outer_, nullptr, 0) < 0 && errno == EINTR) {
    }
    outer_ = -1;
  }
  if (out_ >= 0) close(out_);
  if (pidfd_ >= 0) close(pidfd_);
  out_ = pidfd_ = -1;
}

SandboxResult StartedSandbox::wait() {
  if (outer_ <= 0) fail(Errc::kFailedPrecondition, "wait for a container that was not started or was collected");
  pid_t outer = std::exchange(outer_, -1);
  Fd out_r(std::exchange(out_, -1)), pidfd(std::exchange(pidfd_, -1));
  SandboxResult res;
  const std::chrono::milliseconds timeout = timeout_;
  const int64_t deadline = deadline_ns_;
  Cgroup* cgroup = cgroup_;
  const std::atomic<bool>* cancel = cancel_;
  std::string buf;
  bool exited = false, eof = false;
  while (!(exited && eof)) {
    pollfd fds[2];
    nfds_t nf = 0;
    if (!eof) fds[nf++] = {out_r.get(), POLLIN, 0};
    nfds_t pid_at = nf;
    if (!exited) fds[nf++] = {pidfd.get(), POLLIN, 0};
    int wait_ms = deadline ? static_cast<int>(std::max<int64_t>(0, (deadline - monotonic_ns()) / 1'000'000)) : -1;
    if (cancel && (wait_ms < 0 || wait_ms > 100)) wait_ms = 100;  // look at the cancel flag often
    int n = poll(fds, nf, wait_ms);
    if (cancel && cancel->load()) {
      res.cancelled = true;
      if (cgroup) cgroup->kill_all();
      kill(outer, SIGKILL);
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_sys("wait for container");
    if (n == 0 && deadline && monotonic_ns() >= deadline) {
      res.timed_out = true;
      if (cgroup) cgroup->kill_all();
      kill(outer, SIGKILL);
      break;
    }
    if (!eof && fds[0].revents) {
      char chunk[65536];
      ssize_t r = ::read(out_r.get(), chunk, sizeof chunk);
      if (r > 0) buf.append(chunk, static_cast<size_t>(r));
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) eof = true;
    }
    if (!exited && pid_at < nf && fds[pid_at].revents) exited = true;
  }
  int status = 0;
  while (waitpid(outer, &status, 0) < 0 && errno == EINTR) {
  }
  if (res.timed_out) {
    res.error = fmt::format("container killed after the {} ms timeout", timeout.count());
    return res;
  }
  if (res.cancelled) {
    res.error = "interrupted";
    return res;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) > 128) res.term_signal = WEXITSTATUS(status) - 128;
  nlohmann::json msg;
  if (!buf.empty()) msg = nlohmann::json::parse(buf, nullptr, false);
  if (msg.is_object()) {
    res.setup_ns = msg.value("setup_ns", int64_t{0});
    res.run_ns = msg.value("run_ns", int64_t{0});
    if (msg.contains("result")) res.result = msg["result"];
    if (msg.contains("error")) res.error = msg["error"].get<std::string>();
  }
  res.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && res.error.empty() && msg.is_object();
  if (!res.ok && res.error.empty())
    res.error = res.term_signal ? fmt::format("container died of signal {} ({})", res.term_signal, strsignal(res.term_signal))
                                : fmt::format("container exited with status {} and no result", WEXITSTATUS(status));
  return res;
}

SandboxResult run_in_sandbox(const SandboxOptions& o, const std::function<nlohmann::json()>& fn) {
  return start_sandbox(o, fn).wait();
}

}  // namespace cowbench
