// The host-wide measuring lock: a second run fails (--no-wait) or waits naming the holder, a killed holder releases it, a child borrows its parent's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "runner/host_lock.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

// A process that takes the lock at `path` and holds it until told to let go or killed.
class Holder {
 public:
  Holder(const std::string& path, const std::string& workdir) {
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      unsetenv(kHostLockFdEnv);
      char c = 1;
      try {
        HostLockOptions o;
        o.path = path;
        o.workdir = workdir;
        o.wait = false;
        HostLock lock(o);
        if (write(ready[1], &c, 1) != 1) _exit(4);
        if (read(go[0], &c, 1) < 0) _exit(5);  // until a byte comes or the pipe closes
      } catch (const std::exception&) {
        _exit(3);
      }
      _exit(0);
    }
    ::close(ready[1]);
    ::close(go[0]);
    go_ = go[1];
    char c = 0;
    holding_ = read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
  }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;
  ~Holder() {
    if (pid_ > 0) kill_now();
    if (go_ >= 0) ::close(go_);
  }

  bool holding() const { return holding_; }
  pid_t pid() const { return pid_; }
  // Tells it to release the lock and exit; its exit status (-1 when it died otherwise).
  int release() {
    char c = 1;
    if (write(go_, &c, 1) != 1) return -1;
    return reap();
  }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    reap();
  }

 private:
  int reap() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t pid_ = -1;
  int go_ = -1;
  bool holding_ = false;
};

// Starts `cowbench ARGS` with COWBENCH_LOCK_FILE=lock, its output (both streams) into `log`.
pid_t start_cowbench(const std::vector<std::string>& args, const std::string& lock, const std::string& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setenv(kHostLockFileEnv, lock.c_str(), 1);
  unsetenv(kHostLockFdEnv);
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> argv{const_cast<char*>(COWBENCH_BIN)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(COWBENCH_BIN, argv.data());
  _exit(127);
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

class HostLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>(scratch_root(), "host-lock");
    lock_ = path_join(tmp_->path(), "cowbench.lock");  // a lock of its own, not the host's
  }
  std::vector<std::string> tiny_run(const std::string& name) const {
    return {"run", "--backends", "copy", "--workloads", "metadata", "--image", "synth:tiny", "--repeat", "1",
            "--no-warmup", "--trace", "off", "--workdir", path_join(tmp_->path(), name + "-work"),
            "--out", path_join(tmp_->path(), name + "-out")};
  }

  std::unique_ptr<TempDir> tmp_;
  std::string lock_;
};

TEST(HostLockHolder, DescriptionRoundTripsAndJunkIsNobody) {
  auto h = parse_lock_holder(
      R"({"pid": 4242, "command": "cowbench run --backends copy", "since": "2026-12-01T10:00:00Z", "workdir": "/var/tmp/w"})");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->pid, 4242);
  std::string d = h->describe();
  for (const char* part : {"pid 4242", "cowbench run --backends copy", "2026-12-01T10:00:00Z", "/var/tmp/w"})
    EXPECT_NE(d.find(part), std::string::npos) << part << " in " << d;
  EXPECT_FALSE(parse_lock_holder(""));
  EXPECT_FALSE(parse_lock_holder("{\"pid\": 42"));  // half written
  EXPECT_FALSE(parse_lock_holder("{\"pid\": 0}"));
  EXPECT_FALSE(parse_lock_holder("[1, 2]"));
}

TEST_F(HostLockTest, NoWaitFailsNamingTheHolderAndAKilledHolderReleasesIt) {
  std::string holder_work = path_join(tmp_->path(), "holder-work");
  Holder holder(lock_, holder_work);
  ASSERT_TRUE(holder.holding());
  std::string pid = "pid " + std::to_string(holder.pid());

  // In process: refused at once, naming the holder.
  HostLockOptions o;
  o.path = lock_;
  o.wait = false;
  try {
    HostLock second(o);
    ADD_FAILURE() << "a second holder got the lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find(pid), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(holder_work), std::string::npos) << e.what();
  }

  // The CLI: exit 1 with the holder named, nothing made.
  std::string log = path_join(tmp_->path(), "no-wait.log");
  std::vector<std::string> args = tiny_run("second");
  args.push_back("--no-wait");
  EXPECT_EQ(wait_exit(start_cowbench(args, lock_, log)), 1) << read_or_empty(log);
  std::string said = read_or_empty(log);
  EXPECT_NE(said.find(pid), std::string::npos) << said;
  EXPECT_NE(said.find(lock_), std::string::npos) << said;
  EXPECT_FALSE(std::filesystem::exists(path_join(tmp_->path(), "second-out"))) << "a refused run makes nothing";
  EXPECT_FALSE(std::filesystem::exists(path_join(tmp_->path(), "second-work"))) << "a refused run makes nothing";

  // SIGKILL: the kernel drops the flock with the holder's last descriptor.
  holder.kill_now();
  HostLock after(o);
  EXPECT_FALSE(after.borrowed());
  auto now = read_lock_holder(lock_);
  ASSERT_TRUE(now) << "the new holder describes itself";
  EXPECT_EQ(now->pid, getpid());
}

TEST_F(HostLockTest, WaitingRunProceedsOnceTheHolderExits) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto host_lock = hold_host_lock();  // the waiting run measures, once it may
  Holder holder(lock_, path_join(tmp_->path(), "holder-work"));
  ASSERT_TRUE(holder.holding());
  std::string log = path_join(tmp_->path(), "waiting.log");
  std::vector<std::string> args = tiny_run("waiting");
  pid_t run = start_cowbench(args, lock_, log);
  ASSERT_GT(run, 0);

  // It says once that it waits and for whom (a progress guard, not a timing assertion).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_or_empty(log).find("waiting for the host lock") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline && waitpid(run, nullptr, WNOHANG) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string said = read_or_empty(log);
  ASSERT_NE(said.find("waiting for the host lock"), std::string::npos) << said;
  EXPECT_NE(said.find("pid " + std::to_string(holder.pid())), std::string::npos) << said;
  // While the holder holds it, the run has measured nothing.
  EXPECT_EQ(waitpid(run, nullptr, WNOHANG), 0) << "the run ended while another held the lock: " << said;
  EXPECT_FALSE(std::filesystem::exists(path_join(tmp_->path(), "waiting-out/results.json")));

  EXPECT_EQ(holder.release(), 0);
  int code = wait_exit(run);
  said = read_or_empty(log);
  EXPECT_EQ(code, 0) << said;
  EXPECT_TRUE(std::filesystem::exists(path_join(tmp_->path(), "waiting-out/results.json"))) << said;
  EXPECT_NE(said.find("got the host lock after"), std::string::npos) << said;
  size_t first = said.find("waiting for the host lock");
  EXPECT_EQ(said.find("waiting for the host lock", first + 1), std::string::npos) << "said once: " << said;
}

TEST_F(HostLockTest, ChildrenBorrowTheLockTheirParentShares) {
  HostLockOptions o;
  o.path = lock_;
  o.wait = false;
  HostLock mine(o);
  mine.share_with_children();
  // A child that inherits it (as `cowbench run` started by a test) gets it without waiting...
  pid_t borrower = fork();
  if (borrower == 0) {
    try {
      HostLock l(o);
      _exit(l.borrowed() ? 0 : 2);
    } catch (const std::exception&) {
      _exit(3);
    }
  }
  EXPECT_EQ(wait_exit(borrower), 0);
  // ...and its end does not release the parent's: a stranger is still refused.
  pid_t stranger = fork();
  if (stranger == 0) {
    unsetenv(kHostLockFdEnv);
    try {
      HostLock l(o);
      _exit(2);
    } catch (const Error& e) {
      _exit(e.code() == Errc::kFailedPrecondition ? 0 : 3);
    }
  }
  EXPECT_EQ(wait_exit(stranger), 0);
  EXPECT_EQ(mine.close(), 0);
  EXPECT_EQ(getenv(kHostLockFdEnv), nullptr) << "closing stops sharing";
}

}  // namespace
}  // namespace cowbench::test
