// The cowbench command line as a user meets it: --help everywhere, exit codes, one-line usage errors.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "common/fs.h"
#include "common/mount.h"
#include "runner/rows.h"
#include "snapshotters/registry.h"
#include "tests/test_util.h"
#include "workloads/exec.h"

namespace cowbench::test {
namespace {

using Result = CliResult;
Result run(const std::string& args) { return run_cli(COWBENCH_BIN, args); }

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
  for (const char* args : {"", "frobnicate", "list", "list backends --bogus", "gc --workdir", "doctor extra", "run --cpu foo", "run --budget soon", "run --budget 0", "run --ci --ci-target 200", "compare --gate some a b"}) {
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
  // The real tracer's row agrees with the probes of its program types: where one of the
  // probe modes works, the tracer's own programs load and attach.
  std::map<std::string, nlohmann::json> checks;
  for (const auto& c : j.at("checks")) checks[c.at("name").get<std::string>()] = c;
  ASSERT_TRUE(checks.count("tracer")) << j.at("checks").dump(1);
  bool probe_works = false;
  for (const char* mode : {"bpf tracepoint", "bpf fentry", "bpf kprobe"})
    probe_works = probe_works || (checks.count(mode) && checks[mode].at("ok").get<bool>());
  EXPECT_EQ(checks["tracer"].at("ok").get<bool>(), probe_works) << checks["tracer"].dump();
  // (A tracepoint this kernel lacks is no fault of the tracer's; a program refused is.)
  for (const char* fault : {"refused by the verifier", "attach failed"})
    EXPECT_EQ(checks["tracer"].at("detail").get<std::string>().find(fault), std::string::npos) << checks["tracer"].dump();
  // The host's own noise, from both probes, with advice.
  const auto& noise = j.at("host_noise");
  EXPECT_EQ(noise.at("samples"), 40);
  EXPECT_GT(noise.at("median_ns").get<int64_t>(), 0);
  EXPECT_GT(noise.at("kernel").at("median_ns").get<int64_t>(), 0);
  EXPECT_GT(noise.at("kernel").at("cv").get<double>(), 0.0) << "40 timed samples never all take the same ns";
  EXPECT_FALSE(noise.at("advice").get<std::string>().empty());
}

TEST(Cli, GcOnEmptyWorkdir) {
  TempDir w(scratch_root(), "cli");
  Result r = run("gc --workdir " + w.path());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("nothing to clean"), std::string::npos) << r.out;
}

// The main job end to end: a real synthetic image generated, imported into two backends,
// run, reported; the second run reuses the imported layers.
TEST(Cli, RunImportsARealImageAndReuses) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto host_lock = hold_host_lock();  // cowbench run borrows it
  TempDir w(scratch_root(), "cli-run");
  std::string common = fmt::format(
      "run --image synth:tiny@7 --backends overlayfs,copy --workloads db-random-write,startup --repeat 1 --no-warmup "
      "--trace off --workdir {}/work --out {}/out",
      w.path(), w.path());
  Result r = run(common);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(read_file(w.path() + "/out/results.json"));
  EXPECT_EQ(j["schema"], "cowbench/v1");
  ASSERT_EQ(j["runs"].size(), 4u) << j.dump(1);
  for (const auto& run : j["runs"]) EXPECT_EQ(run["status"], "ok") << run.dump();
  for (const char* b : {"overlayfs", "copy"}) {
    EXPECT_FALSE(j["config"]["images"][b]["top"].get<std::string>().empty()) << b;
    EXPECT_FALSE(j["config"]["images"][b]["cached"].get<bool>()) << b;
  }
  EXPECT_TRUE(j["host"]["filesystems"].contains("workdir")) << j["host"].dump();
  EXPECT_EQ(j["config"]["caches_dropped_at_start"], true) << "a run starts from dropped caches by default";
  for (const char* f : {"report.md", "report.html", "results.csv"})
    EXPECT_TRUE(std::filesystem::exists(w.path() + "/out/" + f)) << f;

  r = run(common + " --keep-caches");
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(read_file(w.path() + "/out/results.json"));
  for (const char* b : {"overlayfs", "copy"}) EXPECT_TRUE(j["config"]["images"][b]["cached"].get<bool>()) << b;
  EXPECT_EQ(j["config"]["caches_dropped_at_start"], false);
  EXPECT_TRUE(mounts_under(w.path()).empty());

  r = run("run --image synth:no-such-profile --workdir " + w.path() + "/work --out " + w.path() + "/out2");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("no-such-profile"), std::string::npos) << r.out;
}

// Ctrl-C in the middle of a matrix: exit 130, the finished runs kept in a valid results.json,
// nothing left mounted.
TEST(Cli, SigintKeepsFinishedRuns) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto host_lock = hold_host_lock();  // cowbench run borrows it
  TempDir w(scratch_root(), "cli-int");
  std::string out = w.path() + "/out", results = out + "/results.json";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::string wd = w.path() + "/work";
    execl(COWBENCH_BIN, "cowbench", "run", "--image", "synth:tiny@3", "--backends", "overlayfs", "--workloads",
          "startup,metadata", "--repeat", "50", "--no-warmup", "--trace", "off", "--workdir", wd.c_str(), "--out",
          out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until at least two runs are on disk, then interrupt.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      seen = nlohmann::json::parse(read_file(results))["runs"].size();
    } catch (const std::exception&) {
    }
    if (seen >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_GE(seen, 2u) << "the run made no progress";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  auto j = nlohmann::json::parse(read_file(results));
  EXPECT_TRUE(j["interrupted"].get<bool>());
  EXPECT_GE(j["runs"].size(), seen);
  EXPECT_LT(j["runs"].size(), 100u);
  for (const auto& run : j["runs"]) EXPECT_EQ(run["status"], "ok") << run.dump();
  EXPECT_TRUE(mounts_under(w.path()).empty());
}


// Its output read by nobody (`cowbench run | head` after head has gone, a dead log pipe):
// SIGPIPE must not kill the run with its mounts in place; it finishes, and leaves nothing.
TEST(Cli, ClosedOutputPipeDoesNotKillTheRun) {
  if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
  auto host_lock = hold_host_lock();  // cowbench run borrows it
  TempDir w(scratch_root(), "cli-pipe");
  std::string out = w.path() + "/out", wd = w.path() + "/work";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execl(COWBENCH_BIN, "cowbench", "run", "--image", "synth:tiny@3", "--backends", "overlayfs", "--workloads",
          "startup", "--repeat", "2", "--no-warmup", "--trace", "off", "--workdir", wd.c_str(), "--out", out.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  close(fds[0]);  // the reader goes away before the first line
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(nlohmann::json::parse(read_file(out + "/results.json"))["runs"].size(), 2u);
  EXPECT_TRUE(mounts_under(w.path()).empty());
}


// --exec, --exec-name, --ready: how they pair, in command-line order.
using Opts = std::vector<std::pair<std::string, std::string>>;

std::string invalid_input_message(const Opts& in) {
  try {
    wl::pair_exec_options(in);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(ExecOptions, NamesPairByPositionAndReadyWithTheExecBefore) {
  auto specs = wl::pair_exec_options({{"exec", "python3 -c \"import os,re\""},
                                      {"ready", "Serving HTTP"},
                                      {"exec-name", "py"},
                                      {"exec", "sh -c 'ls /, /etc'"},
                                      {"exec-name", "ls"}});
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].command, "python3 -c \"import os,re\"") << "commas and quotes kept";
  EXPECT_EQ(specs[0].name, "py");
  EXPECT_EQ(specs[0].ready, "Serving HTTP");
  EXPECT_EQ(specs[1].command, "sh -c 'ls /, /etc'");
  EXPECT_EQ(specs[1].name, "ls");
  EXPECT_EQ(specs[1].ready, "") << "the --ready before it is the first --exec's";
  // Names may all come after the commands.
  specs = wl::pair_exec_options({{"exec", "a"}, {"exec", "b"}, {"ready", "x"}, {"exec-name", "A"}, {"exec-name", "B"}});
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "A");
  EXPECT_EQ(specs[1].name, "B");
  EXPECT_EQ(specs[0].ready, "");
  EXPECT_EQ(specs[1].ready, "x");
  EXPECT_TRUE(wl::pair_exec_options({}).empty());
}

TEST(ExecOptions, BadPairingsAreInvalidInput) {
  EXPECT_NE(invalid_input_message({{"exec", "a"}, {"exec", "b"}, {"exec-name", "A"}}).find("1 --exec-name for 2 --exec"),
            std::string::npos);
  EXPECT_NE(invalid_input_message({{"exec-name", "A"}}).find("for 0 --exec"), std::string::npos);
  EXPECT_NE(invalid_input_message({{"ready", "up"}}).find("no --exec before it"), std::string::npos);
  EXPECT_NE(invalid_input_message({{"ready", "up"}, {"exec", "a"}}).find("no --exec before it"), std::string::npos);
  EXPECT_NE(invalid_input_message({{"exec", "a"}, {"ready", "x"}, {"ready", "y"}}).find("two --ready"), std::string::npos);
  EXPECT_NE(invalid_input_message({{"exec", "a"}, {"ready", "(unclosed"}}).find("not a regular expression"),
            std::string::npos);
  EXPECT_NE(invalid_input_message({{"exec", ""}}).find("needs a command"), std::string::npos);
  EXPECT_NE(invalid_input_message({{"exec", "a"}, {"exec-name", "x,y"}}).find("comma"), std::string::npos);
}

TEST(ExecOptions, DisplayNames) {
  EXPECT_EQ(wl::exec_display_name({"ls /", "", ""}), "exec:ls /");
  EXPECT_EQ(wl::exec_display_name({"ls /", "listing", ""}), "listing");
  // White space runs become one space; longer than 32 characters: cut, with an ellipsis.
  EXPECT_EQ(wl::exec_display_name({"echo  a\n\techo b  ", "", ""}), "exec:echo a echo b");
  std::string long_cmd = "python3 -c \"import os,re; print(os.getcwd())\"";
  EXPECT_EQ(wl::exec_display_name({long_cmd, "", ""}), "exec:" + long_cmd.substr(0, 32) + "\u2026");
  // Cut between whole UTF-8 characters (each 'é' is two bytes).
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "\u00e9";
  std::string shown = wl::exec_display_name({accents, "", ""});
  EXPECT_EQ(shown, "exec:" + accents.substr(0, 64) + "\u2026");
}

TEST(ExecOptions, WorkloadNamesMustBeDistinct) {
  std::vector<wl::ExecSpec> two = {{"python3 -c 'print(1)' # the first of two commands", "", ""},
                                   {"python3 -c 'print(1)' # the first of two that differ late", "", ""}};
  try {
    wl::check_workload_names({}, two);
    ADD_FAILURE() << "two commands with one display name accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("--exec-name"), std::string::npos) << e.what();
  }
  two[0].name = "one";
  EXPECT_NO_THROW(wl::check_workload_names({"startup", "one", wl::exec_display_name(two[1])}, two));
  EXPECT_THROW(wl::check_workload_names({}, {{"true", "startup", ""}}), Error) << "a built-in workload's name";
  EXPECT_THROW(wl::check_workload_names({}, {{"true", "exec:false", ""}}), Error);
  EXPECT_THROW(wl::check_workload_names({}, {{"true", "same", ""}, {"false", "same", ""}}), Error);
  EXPECT_THROW(wl::check_workload_names({"startup", "startup"}, {}), Error);
  // The workload of a run is picked out by its display name.
  auto w = wl::make_run_workload("one", two, std::chrono::seconds(3));
  EXPECT_EQ(w->plan({}, 1).at("cmd"), two[0].command);
  EXPECT_EQ(wl::make_run_workload("startup", two, std::chrono::seconds(3))->name(), "startup");
}

TEST(ExecOptions, ReadyIsInThePlanWithTheTimeout) {
  auto w = wl::make_run_workload("web", {{"httpd -f", "web", "listening on"}}, std::chrono::seconds(7));
  auto plan = w->plan({}, 1);
  EXPECT_EQ(plan.at("ready"), "listening on");
  EXPECT_EQ(plan.at("timeout_ms"), 7000);
  EXPECT_TRUE(w->ends_at_timeout());
  EXPECT_EQ(w->plan_facts(plan), (nlohmann::json{{"command", "httpd -f"}, {"ready", "listening on"}}));
  EXPECT_FALSE(wl::make_workload("exec:true")->ends_at_timeout());
}

// The same mistakes on the command line: exit 2 with one line, before anything is touched.
TEST(Cli, ExecOptionMistakesExitTwo) {
  TempDir w(scratch_root(), "cli-exec");
  std::string dirs = fmt::format(" --workdir {}/work --out {}/out", w.path(), w.path());
  for (const char* args : {"run --ready up", "run --workloads exec:true --ready up", "run --exec true --exec false --exec-name a",
                           "run --exec-name a", "run --exec true --ready up --ready down", "run --exec true --ready '('",
                           "run --exec 'echo 1' --exec 'echo  1'", "run --exec true --exec-name startup",
                           "run --workloads exec:true --exec true"}) {
    Result r = run(args + dirs);
    EXPECT_EQ(r.code, 2) << "'" << args << "': " << r.out;
    EXPECT_EQ(lines(r.out), 1) << "'" << args << "' must give a one-line message, got:\n" << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(w.path() + "/work")) << "refused before any work";
  Result help = run("run --help");
  for (const char* opt : {"--exec", "--exec-name", "--ready"}) EXPECT_NE(help.out.find(opt), std::string::npos) << opt;
}

// --variant NAME=BACKEND:K=V,...: parsing, and the rows of a run.
std::string rows_error(const std::vector<std::string>& backends, const std::vector<std::string>& variants,
                       const std::map<std::string, snap::BackendOptions>& opts = {}) {
  try {
    std::vector<Variant> vs;
    for (const auto& v : variants) vs.push_back(parse_variant(v));
    plan_rows(backends, opts, vs, snap::builtin_registry());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << fmt::format("{} / {}", fmt::join(backends, ","), fmt::join(variants, " "));
  return "";
}

std::vector<std::string> row_names(const std::vector<RowSpec>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.name);
  return out;
}

TEST(Variants, Parse) {
  Variant v = parse_variant("ovl-meta=overlayfs:metacopy=on,index=on,volatile");
  EXPECT_EQ(v.name, "ovl-meta");
  EXPECT_EQ(v.backend, "overlayfs");
  EXPECT_EQ(v.options, (snap::BackendOptions{{"metacopy", "on"}, {"index", "on"}, {"volatile", "on"}}));
  EXPECT_EQ(parse_variant("plain=copy:").options, snap::BackendOptions{});
  for (const char* bad : {"ovl-meta", "=overlayfs:metacopy=on", "ovl-meta=overlayfs", "ovl-meta=:metacopy=on",
                          "x=overlayfs:=on"}) {
    try {
      parse_variant(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << bad;
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << "names the text: " << e.what();
    }
  }
}

TEST(Variants, RowsInOrderWithTheirBackendsAndOptions) {
  const auto& reg = snap::builtin_registry();
  std::vector<Variant> vs{parse_variant("ovl-meta=overlayfs:metacopy=on"), parse_variant("ovl-vol=overlayfs:volatile=on")};
  // Listed rows first, in their order, then the variants the list leaves out.
  auto rows = plan_rows({"ovl-meta", "overlayfs"}, {{"overlayfs", {{"index", "on"}}}}, vs, reg);
  EXPECT_EQ(row_names(rows), (std::vector<std::string>{"ovl-meta", "overlayfs", "ovl-vol"}));
  EXPECT_TRUE(rows[0].variant);
  EXPECT_EQ(rows[0].spec->name, "overlayfs");
  EXPECT_EQ(rows[0].options, (snap::BackendOptions{{"metacopy", "on"}}));
  EXPECT_FALSE(rows[1].variant);
  EXPECT_EQ(rows[1].options, (snap::BackendOptions{{"index", "on"}})) << "--backend-opt is the plain row's";
  EXPECT_EQ(rows[2].options, (snap::BackendOptions{{"volatile", "on"}}));
  for (const auto& r : rows) EXPECT_TRUE(r.required) << r.name;
  EXPECT_EQ(describe_row(rows[0]), "variant ovl-meta (overlayfs metacopy=on)");
  EXPECT_EQ(describe_row(rows[1]), "overlayfs (index=on)");
  // No --backends: every backend of the default set (skipped when unavailable), then every
  // variant (required); `all`: every backend.
  rows = plan_rows({}, {}, vs, reg);
  std::vector<std::string> want, every = reg.names();
  for (const auto& n : every)
    if (reg.get(n).in_default) want.push_back(n);
  EXPECT_LT(want.size(), every.size()) << "unionfs-fuse is left out of the default run";
  for (const char* research : {"unionfs-fuse", "erofs", "composefs"})
    EXPECT_EQ(std::count(want.begin(), want.end(), research), 0) << research;
  for (auto* v : {&want, &every}) {
    v->push_back("ovl-meta");
    v->push_back("ovl-vol");
  }
  EXPECT_EQ(row_names(rows), want);
  EXPECT_FALSE(rows.front().required);
  EXPECT_TRUE(rows.back().required);
  EXPECT_EQ(row_names(plan_rows({"all"}, {}, vs, reg)), every);
  EXPECT_THROW(plan_rows({"all", "overlayfs"}, {}, vs, reg), Error);
  EXPECT_THROW(plan_rows({}, {}, {parse_variant("all=overlayfs:metacopy=on")}, reg), Error);
  nlohmann::json j = variants_json(vs);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"ovl-meta": {"backend": "overlayfs", "options": {"metacopy": "on"}},
                                         "ovl-vol": {"backend": "overlayfs", "options": {"volatile": "on"}}})"));
  EXPECT_EQ(variants_json({}), nlohmann::json::object());
}

TEST(Variants, BadDefinitionsAreInvalidInputNamingThem) {
  EXPECT_NE(rows_error({}, {"x=nosuch:a=b"}).find("unknown backend 'nosuch'"), std::string::npos);
  EXPECT_NE(rows_error({}, {"x=overlayfs:nosuch=on"}).find("no option 'nosuch'"), std::string::npos);
  EXPECT_NE(rows_error({}, {"x=overlayfs:metacopy=on", "x=overlayfs:index=on"}).find("two variants are named 'x'"),
            std::string::npos);
  EXPECT_NE(rows_error({}, {"overlayfs=overlayfs:metacopy=on"}).find("a backend's name"), std::string::npos);
  EXPECT_NE(rows_error({}, {"containers=overlayfs:metacopy=on"}).find("work directory uses"), std::string::npos);
  for (const char* unsafe : {"a/b=overlayfs:metacopy=on", "..=overlayfs:metacopy=on", ".hidden=overlayfs:metacopy=on",
                             "a b=overlayfs:metacopy=on", "a:b=overlayfs:metacopy=on"}) {
    std::string name = std::string(unsafe).substr(0, std::string(unsafe).find('='));
    std::string e = rows_error({}, {unsafe});
    EXPECT_NE(e.find("'" + name + "' cannot name a variant"), std::string::npos) << e;
  }
  EXPECT_NE(rows_error({}, {std::string(65, 'v') + "=overlayfs:"}).find("longer than 64"), std::string::npos);
  EXPECT_NE(rows_error({"overlayfs", "ovl-typo"}, {"ovl-meta=overlayfs:metacopy=on"}).find("unknown backend 'ovl-typo'"),
            std::string::npos);
  EXPECT_NE(rows_error({"overlayfs", "overlayfs"}, {}).find("twice"), std::string::npos);
  EXPECT_NE(rows_error({"overlayfs"}, {"m=overlayfs:metacopy=on"}, {{"m", {{"index", "on"}}}}).find("is a variant"),
            std::string::npos);
  EXPECT_NE(rows_error({"overlayfs"}, {}, {{"copy", {{"threads", "2"}}}}).find("not in this run"), std::string::npos);
  EXPECT_NE(rows_error({"overlayfs"}, {}, {{"overlayfs", {{"bogus", "1"}}}}).find("no option 'bogus'"), std::string::npos);
}

// The same mistakes on the command line: exit 2 with one line naming them, nothing created.
TEST(Cli, VariantMistakesExitTwo) {
  TempDir w(scratch_root(), "cli-variant");
  std::string dirs = fmt::format(" --workdir {}/work --out {}/out", w.path(), w.path());
  for (auto [args, named] : std::vector<std::pair<std::string, std::string>>{
           {"run --variant x=nosuch:a=b", "nosuch"},
           {"run --variant x=overlayfs:nosuch=on", "nosuch"},
           {"run --variant x=overlayfs:metacopy=on --variant x=overlayfs:index=on", "'x'"},
           {"run --variant overlayfs=overlayfs:metacopy=on", "overlayfs"},
           {"run --variant 'a/b=overlayfs:metacopy=on'", "a/b"},
           {"run --variant novalue", "novalue"},
           {"run --backends overlayfs,nosuch --variant m=overlayfs:metacopy=on", "nosuch"}}) {
    Result r = run(args + dirs);
    EXPECT_EQ(r.code, 2) << "'" << args << "': " << r.out;
    EXPECT_EQ(lines(r.out), 1) << "'" << args << "' must give a one-line message, got:\n" << r.out;
    EXPECT_NE(r.out.find(named), std::string::npos) << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(w.path() + "/work")) << "refused before any work";
  Result help = run("run --help");
  EXPECT_NE(help.out.find("--variant"), std::string::npos);
  EXPECT_NE(help.out.find("explicit --backends does not name it"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace cowbench::test
