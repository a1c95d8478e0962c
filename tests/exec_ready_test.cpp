// `cowbench run --exec ... --ready REGEX` end to end: a real image with a shell and sleep, real
// containers; the time to the ready line, the container stopped, and a line that never comes.
#include <gtest/gtest.h>
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

#include "common/fs.h"
#include "tests/image_samples.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

// Processes on the host whose command line is exactly `argv` (NUL-separated words).
int processes_running(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) want += a + '\0';
  int n = 0;
  DIR* d = opendir("/proc");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    try {
      if (read_file(fmt::format("/proc/{}/cmdline", e->d_name)) == want) ++n;
    } catch (const std::exception&) {
    }
  }
  closedir(d);
  return n;
}

class ExecReady : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    for (const char* need : {"/bin/dash", "/bin/sleep", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"})
      if (access(need, R_OK) != 0) GTEST_SKIP() << "this host has no " << need << " to put in the test image";
    host_lock_ = hold_host_lock();  // cowbench run borrows it
    tmp_ = std::make_unique<TempDir>(scratch_root(), "exec-ready");
    // A shell, sleep and the libc they need: an image a real program can run in.
    std::string libc = read_file("/lib/x86_64-linux-gnu/libc.so.6");
    write_oci_image(path_join(tmp_->path(), "image"),
                    {LayerSpec()
                         .dir("bin")
                         .dir("lib")
                         .dir("lib/x86_64-linux-gnu")
                         .dir("lib64")
                         .dir("proc")
                         .dir("dev")
                         .dir("etc")
                         .file("bin/sh", read_file("/bin/dash"), 0755)
                         .file("bin/sleep", read_file("/bin/sleep"), 0755)
                         .file("lib/x86_64-linux-gnu/libc.so.6", libc, 0755)
                         .file("lib64/ld-linux-x86-64.so.2", read_file("/lib64/ld-linux-x86-64.so.2"), 0755)
                         .file("etc/motd", "a file to read\n")});
    common_ = fmt::format("run --image oci:{}/image --backends overlayfs --repeat 1 --no-warmup --trace off "
                          "--workdir {}/work --out {}/out",
                          tmp_->path(), tmp_->path(), tmp_->path());
  }
  void TearDown() override {
    if (!tmp_) return;
    EXPECT_EQ(left_behind(tmp_->path()), "") << "a run must leave nothing mounted";
    std::string containers = path_join(tmp_->path(), "work/containers");
    if (std::filesystem::exists(containers)) {
      EXPECT_TRUE(std::filesystem::is_empty(containers)) << "a run must remove its containers";
    }
  }

  // Runs `cowbench <common> <args>`; returns the result and its wall time in seconds.
  std::pair<CliResult, double> run(const std::string& args) {
    auto t0 = std::chrono::steady_clock::now();
    CliResult r = run_cli(COWBENCH_BIN, common_ + " " + args);
    return {r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  }
  nlohmann::json results() { return nlohmann::json::parse(read_file(path_join(tmp_->path(), "out/results.json"))); }

  std::unique_ptr<HostLock> host_lock_;
  std::unique_ptr<TempDir> tmp_;
  std::string common_;
};

// The run ends at the ready line: its time is at least the 0.3 s before it and far below the
// 97 s the command would go on for; the command is gone afterwards.
TEST_F(ExecReady, EndsAtTheReadyLineAndStopsTheContainer) {
  auto [r, seconds] = run(
      "--exec 'sleep 0.3; echo starting up; echo ready now >&2; sleep 97' --ready 'ready n[aeiou]w' --exec-name boot "
      "--exec 'echo \"a,b\" > /tmp-file; read l < /etc/motd; echo \"$l\"' --exec-name motd --timeout 60");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_LT(seconds, 60) << "the run waited for the command instead of its ready line";
  auto j = results();
  ASSERT_EQ(j["runs"].size(), 2u) << j.dump(1);
  EXPECT_EQ(j["config"]["workloads"], (nlohmann::json{"boot", "motd"}));
  const auto& boot = j["runs"][0];
  EXPECT_EQ(boot["workload"], "boot");
  ASSERT_EQ(boot["status"], "ok") << boot.dump(1);
  int64_t wall = boot["wall_ns"].get<int64_t>();
  EXPECT_GE(wall, 300'000'000) << "the time runs to the ready line, after the 0.3 s sleep";
  EXPECT_LT(wall, 30'000'000'000) << "the time ends at the ready line";
  EXPECT_EQ(boot["extra"]["ready_line"], "ready now") << "stderr is read too";
  EXPECT_EQ(boot["extra"]["ready_ns"], wall);
  // results.json keeps the commands in full.
  EXPECT_EQ(j["config"]["plans"]["boot"]["command"], "sleep 0.3; echo starting up; echo ready now >&2; sleep 97");
  EXPECT_EQ(j["config"]["plans"]["boot"]["ready"], "ready n[aeiou]w");
  EXPECT_EQ(j["config"]["plans"]["motd"]["command"], "echo \"a,b\" > /tmp-file; read l < /etc/motd; echo \"$l\"");
  EXPECT_EQ(j["runs"][1]["status"], "ok") << j["runs"][1].dump(1);
  EXPECT_EQ(processes_running({"sleep", "97"}), 0) << "the command is stopped at its ready line";
  if (auto why = schema_skip_reason()) {
    std::fprintf(stderr, "not validated against the schema: %s\n", why->c_str());
  } else {
    EXPECT_EQ(schema_errors(path_join(tmp_->path(), "out/results.json")), "");
  }
  std::string md = read_file(path_join(tmp_->path(), "out/report.md"));
  EXPECT_NE(md.find("boot"), std::string::npos);
  EXPECT_NE(md.find("motd"), std::string::npos);
}

// Without --exec-name a long command is named by its first 32 characters in every report;
// results.json has the whole of it.
TEST_F(ExecReady, LongCommandsAreShortenedInReports) {
  std::string cmd = "echo this command is longer than thirty-two characters, with a comma";
  auto [r, seconds] = run("--exec '" + cmd + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string shown = "exec:" + cmd.substr(0, 32) + "\u2026";
  auto j = results();
  ASSERT_EQ(j["runs"].size(), 1u);
  EXPECT_EQ(j["runs"][0]["workload"], shown);
  EXPECT_EQ(j["config"]["plans"][shown]["command"], cmd);
  for (const char* f : {"report.md", "results.csv", "report.html"}) {
    std::string text = read_file(path_join(tmp_->path(), std::string("out/") + f));
    EXPECT_NE(text.find(cmd.substr(0, 32)), std::string::npos) << f;
    if (std::string(f) != "report.html") {  // whose configuration section shows config.plans as it is
      EXPECT_EQ(text.find(cmd), std::string::npos) << f << " names the workload, not its whole command";
    }
  }
}

// The line never comes: the run fails at --timeout with the output's tail (exit 1); a command
// that ends before its line fails at once; nothing stays mounted or running.
TEST_F(ExecReady, NoReadyLineFailsWithTheOutputsTail) {
  auto [r, seconds] = run(
      "--exec 'echo first line; echo the last words >&2; sleep 97' --ready 'never printed' "
      "--exec 'echo bye; exit 4' --ready 'never printed' --timeout 3");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_GE(seconds, 3.0) << "the first run waits for its line until --timeout";
  EXPECT_LT(seconds, 30.0) << "and not much longer";
  auto j = results();
  ASSERT_EQ(j["runs"].size(), 2u) << j.dump(1);
  const auto& waited = j["runs"][0];
  EXPECT_EQ(waited["status"], "failed");
  std::string error = waited["error"].get<std::string>();
  EXPECT_NE(error.find("never printed"), std::string::npos) << error;
  EXPECT_NE(error.find("3000 ms timeout"), std::string::npos) << error;
  EXPECT_NE(error.find("first line\nthe last words"), std::string::npos) << "the output's tail: " << error;
  EXPECT_NE(r.out.find("the last words"), std::string::npos) << "said on the terminal too: " << r.out;
  const auto& ended = j["runs"][1];
  EXPECT_EQ(ended["status"], "failed");
  error = ended["error"].get<std::string>();
  EXPECT_NE(error.find("exited with status 4 before"), std::string::npos) << error;
  EXPECT_NE(error.find("bye"), std::string::npos) << error;
  EXPECT_EQ(processes_running({"sleep", "97"}), 0) << "the command is killed at the timeout";
  if (!schema_skip_reason()) {
    EXPECT_EQ(schema_errors(path_join(tmp_->path(), "out/results.json")), "");
  }
}

}  // namespace
}  // namespace cowbench::test
