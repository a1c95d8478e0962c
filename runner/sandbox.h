// The container sandbox: namespaces, the snapshot mounted and pivot_root'ed into, /proc, /dev, a cgroup.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/mount.h"

namespace cowbench {

class Cgroup;

struct SandboxOptions {
  std::vector<Mount> mounts;  // the snapshot's mounts: the container's root file system
  std::string rootfs;         // an existing empty host directory to mount them on
  std::string hostname = "cowbench";
  std::chrono::milliseconds timeout{0};  // 0: none
  Cgroup* cgroup = nullptr;              // joined before anything runs; may be null
  const std::atomic<bool>* cancel = nullptr;  // set (e.g. by SIGINT) → the container is killed
  // Pins the workload (fn, after the set-up: a FUSE daemon its mounts start is not pinned)
  // to this CPU; -1: not pinned.
  int cpu = -1;
};

struct SandboxResult {
  bool ok = false;          // fn returned normally
  bool timed_out = false;   // killed by the timeout
  bool cancelled = false;   // killed because options.cancel was set
  int term_signal = 0;      // the container's pid 1 died of this signal
  int64_t setup_ns = 0;     // namespaces + mounts + pivot_root, inside the container
  int64_t run_ns = 0;       // fn alone
  std::string error;        // why it failed (setup or fn threw), when !ok
  nlohmann::json result;    // what fn returned
};

// Runs fn as pid 1 of a new container: fork → unshare(mount, pid, uts, ipc, net) → fork →
// mount the snapshot on rootfs, mount /proc and a minimal /dev (tmpfs with null, zero, full,
// random, urandom, tty), pivot_root into it, set the hostname → fn(). All of the
// container's mounts live in its own mount namespace and vanish with it, so a container that
// dies (or is killed by the timeout) leaves nothing mounted on the host. The container dies
// with the calling process (PR_SET_PDEATHSIG). fn's return value comes back as `result`; an
// exception in fn becomes `error`. Throws only when the container cannot be started at all.
SandboxResult run_in_sandbox(const SandboxOptions& options, const std::function<nlohmann::json()>& fn);

// A container started by start_sandbox and not yet collected: wait() collects it (once); a
// container never waited for is killed and reaped by the destructor. Move-only.
class StartedSandbox {
 public:
  StartedSandbox() = default;
  StartedSandbox(StartedSandbox&& o) noexcept;
  StartedSandbox& operator=(StartedSandbox&& o) noexcept;
  StartedSandbox(const StartedSandbox&) = delete;
  StartedSandbox& operator=(const StartedSandbox&) = delete;
  ~StartedSandbox();
  // Reads its result until it exits, the timeout or the cancel flag; as run_in_sandbox.
  SandboxResult wait();

 private:
  friend StartedSandbox start_sandbox(const SandboxOptions& options, const std::function<nlohmann::json()>& fn);
  pid_t outer_ = -1;
  int out_ = -1, pidfd_ = -1;
  int64_t deadline_ns_ = 0;  // 0: no timeout
  std::chrono::milliseconds timeout_{0};
  Cgroup* cgroup_ = nullptr;
  const std::atomic<bool>* cancel_ = nullptr;
};

// Starts the container of run_in_sandbox and returns at once. Several containers that must run
// together are started one after another from one thread, then waited for (wait() may run in
// threads of their own): forking from several threads at once can leave a child stuck on a
// lock another thread held at the fork (the sanitizers' allocators have no fork handlers).
StartedSandbox start_sandbox(const SandboxOptions& options, const std::function<nlohmann::json()>& fn);

}  // namespace cowbench
