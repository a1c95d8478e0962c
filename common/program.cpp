// Running helper programs (see program.h).
#include "common/program.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"

extern char** environ;

namespace cowbench {

std::optional<std::string> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return access(name.c_str(), X_OK) == 0 ? std::optional<std::string>(name) : std::nullopt;
  const char* env = getenv("PATH");
  std::string dirs = std::string(env ? env : "") + ":/sbin:/usr/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty()) {
      std::string p = path_join(dir, name);
      if (access(p.c_str(), X_OK) == 0) return p;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

ProgramResult run_program(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) fail_sys("pipe for {}", argv[0]);
  Fd rd(fds[0]), wr(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int err = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) fail_errno(err, "run {}", argv[0]);
  wr.reset();
  ProgramResult r;
  char buf[4096];
  while (true) {
    ssize_t n = read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.output.append(buf, static_cast<size_t>(n));
  }
  while (waitpid(pid, &r.status, 0) < 0)
    if (errno != EINTR) fail_sys("wait for {}", argv[0]);
  return r;
}

std::string program_failure(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? "" : fmt::format("exit status {}", WEXITSTATUS(status));
  return fmt::format("signal {}", WTERMSIG(status));
}

std::string one_line(std::string s) {
  if (size_t usage = s.find("\nUsage:"); usage != std::string::npos) s.resize(usage);
  if (s.size() > 400) s = s.substr(0, 400) + "...";
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  return s.empty() ? "no output" : s;
}

}  // namespace cowbench
