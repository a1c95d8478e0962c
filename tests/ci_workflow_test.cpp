// The example GitHub Actions workflow (docs/examples/cowbench.yml): valid YAML, a self-hosted job, and only cowbench commands and options that exist.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "common/fs.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

using nlohmann::json;

std::string workflow_path() { return source_path("docs/examples/cowbench.yml"); }

// The workflow as JSON (PyYAML), or nullopt with the reason in `why`.
std::optional<json> load_workflow(std::string& why) {
  CliResult probe = run_cli("python3", "-c 'import yaml' 2>/dev/null");
  if (probe.code != 0) {
    why = "no python3 with PyYAML (Debian: python3-yaml; scripts/install-deps.sh installs it)";
    return std::nullopt;
  }
  CliResult r = run_cli("python3", "-c 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' " +
                                       workflow_path());
  if (r.code != 0) {
    ADD_FAILURE() << "docs/examples/cowbench.yml is not valid YAML:\n" << r.out;
    return std::nullopt;
  }
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "PyYAML's JSON did not parse: " << r.out;
    return std::nullopt;
  }
  return j;
}

// One `cowbench SUB ...` call in a step's script.
struct Call {
  std::string sub;
  std::vector<std::string> args;  // after SUB, quotes removed
  std::string line;
};

// Words of a shell line, quotes removed (enough for the workflow's own lines).
std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  bool in_word = false;
  for (char c : line) {
    if (quote) {
      if (c == quote) quote = 0;
      else cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

// Every cowbench call of a script: a word that is $COWBENCH or a path ending in cowbench.
std::vector<Call> cowbench_calls(const std::string& script) {
  std::vector<Call> out;
  std::istringstream in(script);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> w = words(line);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      const std::string& x = w[i];
      bool is_cowbench = x == "$COWBENCH" || x == "cowbench" || (x.size() > 9 && x.ends_with("/cowbench"));
      if (!is_cowbench) continue;
      Call c;
      c.sub = w[i + 1];
      c.args.assign(w.begin() + static_cast<long>(i) + 2, w.end());
      c.line = line;
      out.push_back(c);
      break;
    }
  }
  return out;
}

// The subcommands `cowbench --help` lists.
std::set<std::string> subcommands() {
  Output o = run_cowbench({"--help"});
  std::set<std::string> out;
  std::istringstream in(o.out);
  std::string line;
  bool listing = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0 || line.rfind("SUBCOMMANDS:", 0) == 0) {
      listing = true;
      continue;
    }
    if (!listing) continue;
    std::istringstream f(line);
    std::string name;
    if (line.rfind("  ", 0) == 0 && f >> name) out.insert(name);
  }
  return out;
}

// The options `cowbench SUB --help` lists ("--out", "--format", ...).
std::set<std::string> options_of(const std::string& sub) {
  Output o = run_cowbench({sub, "--help"});
  std::set<std::string> out;
  for (const std::string& w : words(o.out)) {
    for (size_t p = w.find("--"); p != std::string::npos; p = w.find("--", p + 2)) {
      size_t e = p + 2;
      while (e < w.size() && (std::isalnum(static_cast<unsigned char>(w[e])) || w[e] == '-')) ++e;
      if (e > p + 2) out.insert(w.substr(p, e - p));
    }
  }
  return out;
}

TEST(CiWorkflow, ExampleIsASelfHostedJobThatCallsRealCommands) {
  std::string why;
  auto wf = load_workflow(why);
  if (!wf) {
    if (!why.empty()) GTEST_SKIP() << why;
    return;
  }
  // PyYAML reads the key `on` as the boolean true (YAML 1.1).
  const json& on = wf->contains("on") ? (*wf)["on"] : (*wf)["true"];
  EXPECT_TRUE(on.contains("push") && on.contains("pull_request")) << on.dump();
  ASSERT_TRUE(wf->contains("jobs") && (*wf)["jobs"].is_object() && !(*wf)["jobs"].empty());

  std::set<std::string> subs = subcommands();
  ASSERT_TRUE(subs.count("run") && subs.count("compare") && subs.count("report")) << "cowbench --help lists no subcommands?";
  std::map<std::string, std::set<std::string>> options;
  std::set<std::string> used_subs, used_actions;
  std::vector<Call> calls;
  for (const auto& [name, job] : (*wf)["jobs"].items()) {
    // cowbench needs root, loop devices and BPF: a self-hosted Linux runner.
    std::set<std::string> runs_on;
    for (const auto& l : job.at("runs-on")) runs_on.insert(l.get<std::string>());
    EXPECT_TRUE(runs_on.count("self-hosted") && runs_on.count("linux")) << name << ": " << job["runs-on"].dump();
    ASSERT_TRUE(job.contains("steps") && job["steps"].is_array()) << name;
    for (const auto& step : job["steps"]) {
      EXPECT_NE(step.contains("uses"), step.contains("run")) << "a step either uses an action or runs a script: " << step.dump();
      if (step.contains("uses")) {
        std::string u = step["uses"].get<std::string>();
        used_actions.insert(u.substr(0, u.find('@')));
      }
      if (!step.contains("run")) continue;
      for (auto& c : cowbench_calls(step["run"].get<std::string>())) calls.push_back(c);
    }
  }
  ASSERT_FALSE(calls.empty()) << "the workflow calls no cowbench";
  std::string run_out;
  for (const Call& c : calls) {
    used_subs.insert(c.sub);
    EXPECT_TRUE(subs.count(c.sub)) << "`cowbench " << c.sub << "` is no subcommand: " << c.line;
    if (!subs.count(c.sub)) continue;
    if (!options.count(c.sub)) options[c.sub] = options_of(c.sub);
    for (size_t i = 0; i < c.args.size(); ++i) {
      std::string a = c.args[i];
      if (a.rfind("--", 0) != 0) continue;
      std::string opt = a.substr(0, a.find('='));
      if (options[c.sub].count(opt)) {
        if (c.sub == "run" && opt == "--out" && i + 1 < c.args.size()) run_out = c.args[i + 1];
        continue;
      }
      ADD_FAILURE() << "`cowbench " << c.sub << "` has no option " << opt << ": " << c.line;
    }
  }
  // The gate's steps, in the documented order of docs/ci.md: measure, BMF, compare.
  for (const char* s : {"run", "report", "compare"}) EXPECT_TRUE(used_subs.count(s)) << "no `cowbench " << s << "`";
  ASSERT_FALSE(run_out.empty()) << "cowbench run has no --out";
  for (const Call& c : calls) {
    if (c.sub != "compare") continue;
    std::vector<std::string> positional;
    for (const auto& a : c.args)
      if (a.rfind("--", 0) != 0) positional.push_back(a);
    ASSERT_EQ(positional.size(), 2u) << c.line;
    EXPECT_EQ(positional[1], run_out + "/results.json") << "compare judges what run wrote: " << c.line;
  }
  for (const char* a : {"actions/checkout", "actions/upload-artifact", "actions/cache/restore", "actions/cache/save"})
    EXPECT_TRUE(used_actions.count(a)) << "no " << a;
}

TEST(CiWorkflow, CallParserFindsCommandsAndOptions) {
  auto calls = cowbench_calls("set -e\nsudo \"$COWBENCH\" run --ci --out new\n  build/default/cowbench compare 'a b.json' n.json\necho cowbench\n");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].sub, "run");
  EXPECT_EQ(calls[0].args, (std::vector<std::string>{"--ci", "--out", "new"}));
  EXPECT_EQ(calls[1].sub, "compare");
  EXPECT_EQ(calls[1].args, (std::vector<std::string>{"a b.json", "n.json"}));
  std::set<std::string> report = options_of("report");
  EXPECT_TRUE(report.count("--format") && report.count("--out")) << "cowbench report --help names its options";
  EXPECT_FALSE(report.count("--no-such-option"));
}

}  // namespace
}  // namespace cowbench::test
