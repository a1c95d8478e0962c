// The cowbench command line as a user meets it: --help everywhere, exit codes, one-line usage errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/test_util.h"

namespace cowbench::test {
namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr, interleaved
};

Result run(const std::string& args) {
  std::string cmd = std::string(COWBENCH_BIN) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, HelpOnEverySubcommand) {
  for (const char* sub : {"", "doctor", "list", "list backends", "gc"}) {
    Result r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << ": " << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
}

TEST(Cli, BadUsageExitsTwoWithOneLine) {
  for (const char* args : {"", "frobnicate", "list", "list backends --bogus", "gc --workdir", "doctor extra"}) {
    Result r = run(args);
    EXPECT_EQ(r.code, 2) << "'" << args << "': " << r.out;
    EXPECT_EQ(lines(r.out), 1) << "'" << args << "' must give a one-line message, got:\n" << r.out;
  }
}

TEST(Cli, ListBackendsJson) {
  TempDir w(scratch_root(), "cli");
  Result r = run("list backends --json --workdir " + w.path() + " 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  std::set<std::string> names;
  for (const auto& b : j) {
    names.insert(b.at("name").get<std::string>());
    EXPECT_FALSE(b.at("reason").get<std::string>().empty()) << b.dump();
  }
  EXPECT_TRUE(names.count("overlayfs"));
  EXPECT_TRUE(names.count("copy"));
}

TEST(Cli, DoctorJsonHasChecksAndBackends) {
  TempDir w(scratch_root(), "cli");
  Result r = run("doctor --json --workdir " + w.path() + " 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j.at("checks").empty());
  EXPECT_FALSE(j.at("backends").empty());
}

TEST(Cli, GcOnEmptyWorkdir) {
  TempDir w(scratch_root(), "cli");
  Result r = run("gc --workdir " + w.path());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("nothing to clean"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cowbench::test
