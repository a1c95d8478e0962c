// The exec workload (see exec.h): a user's command in the container, to its exit or to its ready line.
#include "workloads/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <regex>
#include <set>

#include "common/clock.h"
#include "common/error.h"
#include "common/fd.h"
#include "common/sha256.h"

namespace cowbench::wl {
namespace {

using nlohmann::json;

constexpr size_t kTailBytes = 2048;     // of the output kept for errors and stderr_tail
constexpr size_t kDisplayChars = 32;    // of a command in its display name

// Keeps the last kTailBytes of what was appended (cut at a line start where it can).
class Tail {
 public:
  void add(std::string_view s) {
    text_.append(s);
    if (text_.size() > 64 * 1024) text_.erase(0, text_.size() - 4 * kTailBytes);
  }
  std::string str() const {
    if (text_.size() <= kTailBytes) return text_;
    std::string t = text_.substr(text_.size() - kTailBytes);
    auto nl = t.find('\n');
    return nl != std::string::npos && nl + 1 < t.size() ? t.substr(nl + 1) : t;
  }

 private:
  std::string text_;
};

std::string signal_note(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return fmt::format("killed by signal {} ({})", abbrev ? fmt::format("SIG{}", abbrev) : "?", strsignal(sig));
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

void reap(pid_t pid, int* status) {
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
}

// Forks /bin/sh -c cmd in a process group of its own, stdin from /dev/null; its stdout goes to
// out_fd (or /dev/null when -1), its stderr to err_fd.
pid_t spawn_shell(const std::string& cmd, int out_fd, int err_fd) {
  pid_t pid = fork();
  if (pid < 0) fail_sys("fork");
  if (pid == 0) {
    setpgid(0, 0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) dup2(null, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // as the child does: whichever runs first
  return pid;
}

// Kills the command's process group (what it started in the background and kept in its group
// too; anything that left the group dies with the container) and collects the command.
void kill_group(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  reap(pid, nullptr);
}

class Exec final : public Workload {
 public:
  Exec(ExecSpec spec, std::chrono::milliseconds timeout) : spec_(std::move(spec)), timeout_(timeout) {}
  std::string name() const override { return spec_.name.empty() ? "exec:" + spec_.command : spec_.name; }
  std::string description() const override {
    return "run a command with /bin/sh -c inside the container (to its exit, or with --ready to its ready line)";
  }
  bool ends_at_timeout() const override { return !spec_.ready.empty(); }
  json plan(const FileList&, uint64_t) const override {
    json p = {{"cmd", spec_.command}};
    if (!spec_.ready.empty()) {
      p["ready"] = spec_.ready;
      p["timeout_ms"] = timeout_.count();
    }
    return p;
  }
  json plan_facts(const json& plan) const override {
    json f = {{"command", plan.at("cmd")}};
    if (plan.contains("ready")) f["ready"] = plan["ready"];
    return f;
  }
  Outcome run(const json& plan) const override {
    std::string cmd = plan.at("cmd").get<std::string>();
    if (access("/bin/sh", X_OK) != 0)
      fail(Errc::kInvalidInput, "exec: the image has no /bin/sh to run '{}' with", cmd);
    if (!plan.contains("ready")) return run_to_exit(cmd);
    return run_to_ready(cmd, plan.at("ready").get<std::string>(), plan.value("timeout_ms", int64_t{0}));
  }

 private:
  // The command to its exit; stdout is discarded, the tail of stderr kept.
  static Outcome run_to_exit(const std::string& cmd) {
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) fail_sys("pipe");
    Fd err_r(errpipe[0]), err_w(errpipe[1]);
    Outcome o;
    int64_t t0 = monotonic_ns();
    pid_t pid = spawn_shell(cmd, -1, err_w.get());
    err_w.reset();
    Tail err;
    char buf[4096];
    ssize_t n;
    while ((n = read(err_r.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) err.add({buf, static_cast<size_t>(n)});
    int status = 0;
    reap(pid, &status);
    o.latencies_ns.push_back(monotonic_ns() - t0);
    o.ops = 1;
    o.exit_code = exit_code_of(status);
    std::string tail = err.str();
    if (WIFSIGNALED(status)) tail += (tail.empty() || tail.back() == '\n' ? "" : "\n") + signal_note(WTERMSIG(status)) + "\n";
    o.stderr_tail = tail.size() > kTailBytes ? tail.substr(tail.size() - kTailBytes) : tail;
    Sha256 d;
    d.update(cmd);
    d.update(std::to_string(o.exit_code));
    o.digest = d.hex();
    return o;
  }

  // The command until a line of its output matches `ready`; then its group is killed.
  static Outcome run_to_ready(const std::string& cmd, const std::string& ready, int64_t timeout_ms) {
    std::regex re;
    try {
      re = std::regex(ready, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail(Errc::kInvalidInput, "--ready '{}' is not a regular expression: {}", ready, e.what());
    }
    int outpipe[2];
    if (pipe2(outpipe, O_CLOEXEC) != 0) fail_sys("pipe");
    Fd out_r(outpipe[0]), out_w(outpipe[1]);
    int64_t t0 = monotonic_ns();
    int64_t deadline = timeout_ms > 0 ? t0 + timeout_ms * 1'000'000 : 0;
    pid_t pid = spawn_shell(cmd, out_w.get(), out_w.get());
    out_w.reset();
    Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
      int e = errno;
      kill_group(pid);
      errno = e;
      fail_sys("pidfd_open the command");
    }
    Tail tail;
    std::string line;  // the output since the last newline
    bool eof = false, exited = false;
    int64_t ready_ns = -1;
    std::string ready_line;
    auto matches = [&](const std::string& l) {
      if (!std::regex_search(l, re)) return false;
      ready_ns = monotonic_ns() - t0;
      ready_line = l.size() > 512 ? l.substr(0, 512) : l;
      return true;
    };
    while (ready_ns < 0 && !(eof && exited)) {
      pollfd fds[2];
      nfds_t nf = 0;
      if (!eof) fds[nf++] = {out_r.get(), POLLIN, 0};
      nfds_t pid_at = nf;
      if (!exited) fds[nf++] = {pidfd.get(), POLLIN, 0};
      int wait_ms = deadline ? static_cast<int>(std::max<int64_t>(0, (deadline - monotonic_ns() + 999'999) / 1'000'000)) : -1;
      int n = poll(fds, nf, wait_ms);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        kill_group(pid);
        errno = e;
        fail_sys("wait for the command's output");
      }
      if (n == 0 && deadline && monotonic_ns() >= deadline) break;
      if (!eof && fds[0].revents) {
        char buf[4096];
        ssize_t r = read(out_r.get(), buf, sizeof buf);
        if (r > 0) {
          std::string_view chunk(buf, static_cast<size_t>(r));
          tail.add(chunk);
          line.append(chunk);
          size_t nl;
          while (ready_ns < 0 && (nl = line.find('\n')) != std::string::npos) {
            std::string l = line.substr(0, nl);
            line.erase(0, nl + 1);
            matches(l);
          }
          if (line.size() > 64 * 1024) line.erase(0, line.size() - 64 * 1024);
          if (ready_ns < 0 && !line.empty()) matches(line);  // a prompt without its newline yet
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          eof = true;
        }
      }
      if (!exited && pid_at < nf && fds[pid_at].revents) exited = true;
    }
    if (ready_ns >= 0) {
      kill_group(pid);
      Outcome o;
      o.ops = 1;
      o.latencies_ns.push_back(ready_ns);
      o.wall_ns = ready_ns;
      o.extra["ready_ns"] = ready_ns;
      o.extra["ready_line"] = ready_line;
      Sha256 d;
      d.update(cmd);
      d.update("ready " + ready);
      o.digest = d.hex();
      return o;
    }
    std::string out = tail.str();
    std::string shown = out.empty() ? "(no output)" : out;
    if (exited) {
      int status = 0;
      reap(pid, &status);
      std::string how = WIFSIGNALED(status) ? signal_note(WTERMSIG(status)) : fmt::format("exited with status {}", exit_code_of(status));
      fail(Errc::kFailure, "exec: '{}' {} before a line of its output matched --ready '{}'; its last output:\n{}", cmd, how,
           ready, shown);
    }
    kill_group(pid);
    fail(Errc::kFailure, "exec: no line of the output of '{}' matched --ready '{}' within the {} ms timeout; its last output:\n{}",
         cmd, ready, timeout_ms, shown);
  }

  ExecSpec spec_;
  std::chrono::milliseconds timeout_;
};

// Length of the UTF-8 sequence starting with byte c (1 for anything not a lead byte).
size_t utf8_length(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0) return c < 0xf0 ? 3 : 1;
  if (c >= 0xc0) return 2;
  return 1;
}

}  // namespace

std::string exec_display_name(const ExecSpec& spec) {
  if (!spec.name.empty()) return spec.name;
  std::string flat;
  for (char c : spec.command) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (space) {
      if (!flat.empty() && flat.back() != ' ') flat += ' ';
    } else {
      flat += c;
    }
  }
  while (!flat.empty() && flat.back() == ' ') flat.pop_back();
  size_t at = 0, chars = 0;
  while (at < flat.size() && chars < kDisplayChars) {
    at += std::min(utf8_length(static_cast<unsigned char>(flat[at])), flat.size() - at);
    ++chars;
  }
  return "exec:" + (at < flat.size() ? flat.substr(0, at) + "\u2026" : flat);
}

std::unique_ptr<Workload> make_exec_workload(ExecSpec spec, std::chrono::milliseconds timeout) {
  if (spec.command.empty()) fail(Errc::kInvalidInput, "an exec workload needs a command");
  return std::make_unique<Exec>(std::move(spec), timeout);
}

std::vector<ExecSpec> pair_exec_options(const std::vector<std::pair<std::string, std::string>>& in_order) {
  std::vector<ExecSpec> specs;
  std::vector<std::string> names;
  std::vector<bool> has_ready;
  for (const auto& [opt, value] : in_order) {
    if (opt == "exec") {
      if (value.empty()) fail(Errc::kInvalidInput, "--exec needs a command, not an empty string");
      specs.push_back({value, "", ""});
      has_ready.push_back(false);
    } else if (opt == "exec-name") {
      if (value.empty()) fail(Errc::kInvalidInput, "--exec-name needs a name, not an empty string");
      names.push_back(value);
    } else if (opt == "ready") {
      if (specs.empty())
        fail(Errc::kInvalidInput, "--ready '{}' has no --exec before it (a --ready applies to the --exec it follows)", value);
      if (has_ready.back())
        fail(Errc::kInvalidInput, "--exec '{}' has two --ready; give one after each --exec that needs it",
             specs.back().command);
      if (value.empty()) fail(Errc::kInvalidInput, "--ready needs a regular expression, not an empty string");
      try {
        std::regex check(value, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail(Errc::kInvalidInput, "--ready '{}' is not a regular expression: {}", value, e.what());
      }
      specs.back().ready = value;
      has_ready.back() = true;
    } else {
      fail(Errc::kInvalidInput, "unknown exec option '{}'", opt);
    }
  }
  if (!names.empty() && names.size() != specs.size())
    fail(Errc::kInvalidInput, "{} --exec-name for {} --exec: give one name per --exec, in the same order, or none",
         names.size(), specs.size());
  for (size_t i = 0; i < names.size(); ++i) {
    for (char c : names[i])
      if (static_cast<unsigned char>(c) < 0x20 || c == ',')
        fail(Errc::kInvalidInput, "--exec-name '{}' has a comma or a control character", names[i]);
    specs[i].name = names[i];
  }
  return specs;
}

std::unique_ptr<Workload> make_run_workload(const std::string& name, const std::vector<ExecSpec>& execs,
                                            std::chrono::milliseconds timeout) {
  for (const auto& e : execs)
    if (exec_display_name(e) == name) return make_exec_workload(e, timeout);
  return make_workload(name);
}

void check_workload_names(const std::vector<std::string>& names, const std::vector<ExecSpec>& execs) {
  std::set<std::string> builtin;
  for (const auto& [n, d] : workload_catalog()) builtin.insert(n);
  for (const auto& e : execs)
    if (!e.name.empty() && (builtin.count(e.name) || e.name.starts_with("exec:")))
      fail(Errc::kInvalidInput, "--exec-name '{}' is {}; choose another name", e.name,
           builtin.count(e.name) ? "a built-in workload's name" : "reserved (names starting exec: are the commands')");
  std::map<std::string, std::string> seen;  // display name → what it came from
  for (const auto& e : execs) {
    std::string shown = exec_display_name(e);
    auto [it, fresh] = seen.emplace(shown, e.command);
    if (!fresh)
      fail(Errc::kInvalidInput,
           "two exec workloads are both named '{}' ('{}' and '{}'); give them distinct --exec-name", shown, it->second,
           e.command);
  }
  std::set<std::string> listed;
  for (const auto& n : names)
    if (!listed.insert(n).second) fail(Errc::kInvalidInput, "workload '{}' is given twice", n);
}

}  // namespace cowbench::wl
