// Past one machine: `run --shard I/N` splits the matrix, `merge` joins shards and hosts back, and the fleet manifests in docs/examples use only options cowbench has.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <optional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/fs.h"
#include "reports/merge.h"
#include "reports/results.h"
#include "runner/shard.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"
#include "workloads/workload.h"

namespace cowbench::test {
namespace {

using nlohmann::json;
using Row = std::tuple<std::string, std::string, int>;  // (backend, workload, repeat)

bool path_exists(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0;
}

// The message of the Error that fn throws, with its code checked; "" (and a failure) if none.
template <class F>
std::string error_of(F&& fn, Errc code = Errc::kInvalidInput) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// --- shards (pure) -------------------------------------------------------------------------

TEST(Shard, ParsesZeroBasedIndexOfCount) {
  Shard s = parse_shard("0/1");
  EXPECT_EQ(s.index, 0);
  EXPECT_EQ(s.count, 1);
  s = parse_shard("2/3");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 3);
  EXPECT_NE(error_of([] { parse_shard("3/3"); }).find("0-based"), std::string::npos);
  for (const char* bad : {"1", "-1/2", "1/0", "a/b", "1/2/3", "/2", "1/", " 1/2", "0/1001"})
    EXPECT_NE(error_of([&] { parse_shard(bad); }).find(bad), std::string::npos) << bad;
}

// Whatever N, the shards split the workloads exactly: each in one shard, shard sizes within one
// of each other, the same split whatever order the list came in, each shard in the list's order.
TEST(Shard, SplitsEveryWorkloadIntoExactlyOneShard) {
  std::vector<std::string> names;
  for (const auto& [n, d] : wl::workload_catalog())
    if (n != "exec:CMD") names.push_back(n);
  names.push_back("exec:echo a/b");
  ASSERT_GE(names.size(), 5u);
  std::vector<std::string> reversed(names.rbegin(), names.rend());
  for (int n = 1; n <= static_cast<int>(names.size()); ++n) {
    SCOPED_TRACE(n);
    std::multiset<std::string> all;
    size_t smallest = names.size(), largest = 0;
    for (int i = 0; i < n; ++i) {
      auto mine = shard_workloads(names, {i, n});
      auto again = shard_workloads(reversed, {i, n});
      EXPECT_EQ(std::set<std::string>(mine.begin(), mine.end()), std::set<std::string>(again.begin(), again.end()));
      // In the list's order.
      std::vector<size_t> at;
      for (const auto& w : mine) at.push_back(static_cast<size_t>(std::find(names.begin(), names.end(), w) - names.begin()));
      EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
      all.insert(mine.begin(), mine.end());
      smallest = std::min(smallest, mine.size());
      largest = std::max(largest, mine.size());
    }
    EXPECT_EQ(all, std::multiset<std::string>(names.begin(), names.end()));
    EXPECT_LE(largest - smallest, 1u);
  }
}

TEST(Shard, AShardWithoutWorkloadsNamesNAndTheCount) {
  std::vector<std::string> three{"startup", "metadata", "append-log"};
  std::string e = error_of([&] { shard_workloads(three, {3, 4}); });
  EXPECT_NE(e.find("4 shards of 3 workloads"), std::string::npos) << e;
  EXPECT_NO_THROW(shard_workloads(three, {2, 3}));
}

// --- merge (pure: host identity and testbed names) -----------------------------------------

json host(const std::string& kernel, const std::string& boot, const std::string& name) {
  return {{"kernel", kernel}, {"arch", "x86_64"}, {"cpu_model", "cpu"}, {"cpus", 2}, {"memory_bytes", 1 << 30},
          {"filesystems", {{"workdir", "ext4"}}}, {"boot_id", boot}, {"hostname", name}};
}

// Pods of one node share its boot id and facts (their hostnames differ: the pod names); two
// identical machines differ only in boot id; files without a boot id compare by facts.
TEST(MergeHosts, OneMachineIsItsFactsAndBootId) {
  EXPECT_TRUE(rep::same_host(host("6.18", "b1", "pod-a"), host("6.18", "b1", "pod-b")));
  EXPECT_FALSE(rep::same_host(host("6.18", "b1", "a"), host("6.18", "b2", "a")));
  EXPECT_FALSE(rep::same_host(host("6.18", "b1", "a"), host("6.1", "b1", "a")));
  json old = host("6.18", "", "a");
  old.erase("boot_id");
  EXPECT_TRUE(rep::same_host(old, host("6.18", "b9", "a")));
  json other_fs = host("6.18", "b1", "a");
  other_fs["filesystems"]["workdir"] = "xfs";
  EXPECT_NE(rep::host_difference(host("6.18", "b1", "a"), other_fs).find("work directory on ext4 vs xfs"), std::string::npos);
}

rep::Results doc(const json& h, std::vector<std::string> backends) {
  rep::Results r;
  r.host = h;
  r.config = {{"image", "synth:tiny"}, {"seed", 1}, {"cache", "warm"}, {"backends", backends}};
  for (const auto& b : backends) {
    rep::Run run;
    run.backend = b;
    run.workload = "startup";
    run.wall_ns = 1000;
    r.runs.push_back(run);
  }
  return r;
}

// Testbeds are named after their hostnames where those tell them apart, else host1, host2...
TEST(MergeHosts, TestbedsNamedByHostnameWhenUnique) {
  rep::MergeOptions o;
  o.allow_mixed_hosts = true;
  rep::Results m = rep::merge_results({{"a.json", doc(host("6.18", "b1", "alpha"), {"copy"})},
                                       {"b.json", doc(host("6.18", "b2", "beta"), {"copy"})},
                                       {"c.json", doc(host("6.18", "b1", "alpha-pod-2"), {"overlayfs"})}},
                                      o);
  ASSERT_EQ(m.testbeds.size(), 2u);
  EXPECT_EQ(m.testbeds[0].name, "alpha");
  EXPECT_EQ(m.testbeds[1].name, "beta");
  ASSERT_EQ(m.runs.size(), 3u);
  EXPECT_EQ(m.runs[0].testbed, "alpha");
  EXPECT_EQ(m.runs[1].testbed, "beta");
  EXPECT_EQ(m.runs[2].testbed, "alpha");  // the same machine (boot id) under another pod name
  m = rep::merge_results({{"a.json", doc(host("6.18", "b1", "same"), {"copy"})}, {"b.json", doc(host("6.18", "b2", "same"), {"copy"})}}, o);
  ASSERT_EQ(m.testbeds.size(), 2u);
  EXPECT_EQ(m.testbeds[0].name, "host1");
  EXPECT_EQ(m.testbeds[1].name, "host2");
  // One host in the end: no testbeds, no run names one.
  m = rep::merge_results({{"a.json", doc(host("6.18", "b1", "x"), {"copy"})}, {"b.json", doc(host("6.18", "b1", "y"), {"overlayfs"})}}, o);
  EXPECT_TRUE(m.testbeds.empty());
  for (const auto& r : m.runs) EXPECT_EQ(r.testbed, "");
  EXPECT_EQ(m.config.at("backends"), json({"copy", "overlayfs"}));
}

// Inputs that measured another image, seed or cache mode are refused, naming both files.
TEST(MergeHosts, DifferentMeasurementsAreRefused) {
  rep::Results a = doc(host("6.18", "b1", "x"), {"copy"}), b = doc(host("6.18", "b1", "x"), {"overlayfs"});
  b.config["seed"] = 2;
  std::string e = error_of([&] { rep::merge_results({{"a.json", a}, {"b.json", b}}, {}); });
  EXPECT_NE(e.find("a.json"), std::string::npos) << e;
  EXPECT_NE(e.find("b.json"), std::string::npos) << e;
  EXPECT_NE(e.find("seed"), std::string::npos) << e;
  EXPECT_NE(error_of([] { rep::merge_results({}, {}); }).find("no results file"), std::string::npos);
}

// --- shards and merge of real runs ---------------------------------------------------------

// The tiny matrix, run once unsharded and once as two shards, shared by the tests below.
class Fleet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (root_skip_reason()) return;
    tmp_ = new TempDir(scratch_root(), "fleet");
    const std::string& d = tmp_->path();
    std::string common = fmt::format(
        "run --backends overlayfs,copy --workloads startup,metadata,append-log --image synth:tiny --repeat 1 "
        "--no-warmup --trace off --workdir {}",
        path_join(d, "work"));
    whole_ = run_cli(COWBENCH_BIN, common + " --out " + path_join(d, "whole"));
    for (int i = 0; i < 2; ++i)
      shard_[i] = run_cli(COWBENCH_BIN, common + fmt::format(" --shard {}/2 --out {}", i, path_join(d, fmt::format("shard{}", i))));
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    if (auto why = root_skip_reason()) GTEST_SKIP() << *why;
    ASSERT_EQ(whole_.code, 0) << whole_.out;
    ASSERT_EQ(shard_[0].code, 0) << shard_[0].out;
    ASSERT_EQ(shard_[1].code, 0) << shard_[1].out;
  }
  void TearDown() override {
    if (tmp_) {
      EXPECT_EQ(left_behind(tmp_->path()), "");
    }
  }

  static std::string dir(const std::string& name) { return path_join(tmp_->path(), name); }
  static std::string results(const std::string& name) { return path_join(dir(name), "results.json"); }
  static json read_json(const std::string& path) { return json::parse(read_file(path)); }
  static std::multiset<Row> rows(const rep::Results& r) {
    std::multiset<Row> out;
    for (const auto& run : r.runs) out.insert({run.backend, run.workload, run.repeat});
    return out;
  }
  // A copy of results file `from` as `name`.json, changed by `edit`.
  static std::string forged(const std::string& from, const std::string& name, const std::function<void(json&)>& edit) {
    json j = read_json(results(from));
    edit(j);
    std::string p = path_join(tmp_->path(), name + ".json");
    write_file_atomic(p, j.dump(2), 0644, false);
    return p;
  }
  // `merge` refused with exit 2, the message naming each of `names`, and nothing written.
  static void expect_refused(const std::string& args, const std::vector<std::string>& names) {
    static int n = 0;
    std::string out = dir(fmt::format("refused{}", n++));
    CliResult r = run_cli(COWBENCH_BIN, "merge " + args + " --out " + out);
    EXPECT_EQ(r.code, 2) << r.out;
    for (const auto& s : names) EXPECT_NE(r.out.find(s), std::string::npos) << "'" << s << "' not in: " << r.out;
    EXPECT_FALSE(path_exists(out)) << "a refused merge wrote " << out;
  }

  static TempDir* tmp_;
  static CliResult whole_, shard_[2];
};
TempDir* Fleet::tmp_ = nullptr;
CliResult Fleet::whole_, Fleet::shard_[2];

// The two shards' merge holds exactly the rows of the unsharded run: none missing, none twice;
// each shard ran every backend of its workloads and says which shard it is.
TEST_F(Fleet, MergedShardsAreTheWholeMatrix) {
  rep::Results whole = rep::load_results(results("whole"));
  rep::Results s0 = rep::load_results(results("shard0")), s1 = rep::load_results(results("shard1"));
  EXPECT_EQ(whole.runs.size(), 6u);
  std::set<std::string> w0, w1;
  for (const auto& r : s0.runs) w0.insert(r.workload);
  for (const auto& r : s1.runs) w1.insert(r.workload);
  EXPECT_FALSE(w0.empty());
  EXPECT_FALSE(w1.empty());
  for (const auto& w : w0) EXPECT_EQ(w1.count(w), 0u) << w << " is in both shards";
  for (const auto* s : {&s0, &s1}) {
    // Every backend of a workload in the same shard.
    std::map<std::string, std::set<std::string>> backends;
    for (const auto& r : s->runs) backends[r.workload].insert(r.backend);
    for (const auto& [w, b] : backends) EXPECT_EQ(b, (std::set<std::string>{"overlayfs", "copy"})) << w;
  }
  json c0 = read_json(results("shard0")).at("config");
  EXPECT_EQ(c0.at("shard").at("index"), 0);
  EXPECT_EQ(c0.at("shard").at("count"), 2);
  EXPECT_EQ(c0.at("shard").at("workloads"), json({"startup", "metadata", "append-log"}));
  EXPECT_EQ(read_json(results("shard1")).at("config").at("shard").at("index"), 1);

  CliResult m = run_cli(COWBENCH_BIN, fmt::format("merge {} {} --out {}", results("shard0"), results("shard1"), dir("merged")));
  ASSERT_EQ(m.code, 0) << m.out;
  rep::Results merged = rep::load_results(results("merged"));
  std::multiset<Row> got = rows(merged);
  EXPECT_EQ(got, rows(whole));
  EXPECT_EQ(std::set<Row>(got.begin(), got.end()).size(), merged.runs.size()) << "a row twice";
  EXPECT_TRUE(merged.testbeds.empty()) << "two shards of one host are one testbed";
  json mc = read_json(results("merged")).at("config");
  EXPECT_FALSE(mc.contains("shard"));
  ASSERT_EQ(mc.at("merged_from").size(), 2u);
  EXPECT_EQ(mc.at("merged_from")[0].at("file"), results("shard0"));
  EXPECT_EQ(mc.at("workloads"), json({"startup", "metadata", "append-log"})) << "the matrix's order";
  // The reports `run` writes, from the merged runs.
  for (const char* f : {"report.md", "results.csv", "report.html"}) EXPECT_TRUE(path_exists(path_join(dir("merged"), f))) << f;
  std::string md = read_file(path_join(dir("merged"), "report.md"));
  for (const char* w : {"### startup", "### metadata", "### append-log"}) EXPECT_NE(md.find(w), std::string::npos) << w;
  if (auto why = schema_skip_reason()) {
    std::cerr << "schema not checked: " << *why << "\n";
  } else {
    for (const char* f : {"shard0", "merged"}) EXPECT_EQ(schema_errors(results(f)), "") << f;
  }
}

TEST_F(Fleet, MergeRefusesMixedSchemasDuplicatesAndHosts) {
  std::string v2 = forged("shard1", "schema-v2", [](json& j) { j["schema"] = "cowbench/v2"; });
  expect_refused(results("shard0") + " " + v2, {v2, "cowbench/v2"});
  // The unsharded run overlaps shard 0: the first duplicate row names both files.
  expect_refused(results("shard0") + " " + results("whole"), {results("shard0"), results("whole"), "#1"});
  expect_refused(results("shard1") + " " + results("shard1"), {results("shard1"), "twice"});
  // Another host: a copy of shard 1 with another kernel and boot id.
  std::string other = forged("shard1", "other-host", [](json& j) {
    j["host"]["kernel"] = "6.1.0-forged";
    j["host"]["boot_id"] = "00000000-0000-0000-0000-000000000000";
    j["host"]["hostname"] = "forged-host";
  });
  expect_refused(results("shard0") + " " + other, {results("shard0"), other, "--allow-mixed-hosts", "6.1.0-forged"});
}

// With --allow-mixed-hosts each host is a testbed: every run names its own, reports keep its
// rows apart and name every testbed.
TEST_F(Fleet, MixedHostsBecomeTestbeds) {
  std::string other = forged("whole", "other-whole", [](json& j) {
    j["host"]["kernel"] = "6.1.0-forged";
    j["host"]["cpu_model"] = "Forged CPU";
    j["host"]["boot_id"] = "00000000-0000-0000-0000-000000000000";
    j["host"]["hostname"] = "forged-host";
  });
  CliResult m = run_cli(COWBENCH_BIN, fmt::format("merge {} {} --allow-mixed-hosts --out {}", results("whole"), other, dir("mixed")));
  ASSERT_EQ(m.code, 0) << m.out;
  rep::Results r = rep::load_results(results("mixed"));
  ASSERT_EQ(r.testbeds.size(), 2u);
  EXPECT_EQ(r.testbeds[1].name, "forged-host");
  EXPECT_EQ(r.testbeds[1].host.at("kernel"), "6.1.0-forged");
  EXPECT_EQ(r.runs.size(), 12u) << "the same rows from two hosts are not duplicates";
  std::map<std::string, int> per_bed;
  for (const auto& run : r.runs) ++per_bed[run.testbed];
  EXPECT_EQ(per_bed[r.testbeds[0].name], 6);
  EXPECT_EQ(per_bed["forged-host"], 6);
  // A summary row per (testbed, backend, workload).
  EXPECT_EQ(rep::summarize(r.runs).size(), 12u);
  std::string md = read_file(path_join(dir("mixed"), "report.md"));
  EXPECT_NE(md.find("testbed forged-host: Linux 6.1.0-forged"), std::string::npos) << md;
  EXPECT_NE(md.find("Forged CPU"), std::string::npos);
  EXPECT_NE(md.find("testbed " + r.testbeds[0].name + ": Linux"), std::string::npos);
  EXPECT_NE(md.find("| overlayfs @ forged-host |"), std::string::npos) << md;
  EXPECT_NE(md.find("| copy @ " + r.testbeds[0].name + " |"), std::string::npos) << md;
  EXPECT_NE(read_file(path_join(dir("mixed"), "report.html")).find("overlayfs @ forged-host"), std::string::npos);
  std::string csv = read_file(path_join(dir("mixed"), "results.csv"));
  EXPECT_EQ(csv.rfind("backend,workload,testbed,", 0), 0u) << csv.substr(0, 80);
  if (!schema_skip_reason()) {
    EXPECT_EQ(schema_errors(results("mixed")), "");
  }
  // A merged document merges again: its testbeds keep their hosts, a third host joins them,
  // and a host already in it is the same testbed (its rows then are duplicates).
  std::string third = forged("shard1", "third-host", [](json& j) {
    j["host"]["boot_id"] = "11111111-1111-1111-1111-111111111111";
    j["host"]["hostname"] = "third";
  });
  m = run_cli(COWBENCH_BIN, fmt::format("merge {} {} --allow-mixed-hosts --out {}", results("mixed"), third, dir("remerged")));
  ASSERT_EQ(m.code, 0) << m.out;
  rep::Results again = rep::load_results(results("remerged"));
  ASSERT_EQ(again.testbeds.size(), 3u);
  EXPECT_EQ(again.testbeds[1].host.at("kernel"), "6.1.0-forged");
  EXPECT_EQ(again.runs.size(), 12u + 2u);
  expect_refused(results("mixed") + " " + results("shard1") + " --allow-mixed-hosts", {results("mixed"), results("shard1")});
}

TEST_F(Fleet, BadShardsAreUsageErrorsThatLeaveNothing) {
  std::string base = fmt::format("run --backends copy --workloads startup,metadata,append-log --trace off --workdir {}",
                                 dir("work"));
  CliResult r = run_cli(COWBENCH_BIN, base + " --shard 3/4 --out " + dir("bad-shard"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("4 shards of 3 workloads"), std::string::npos) << r.out;
  r = run_cli(COWBENCH_BIN, base + " --shard 2/2 --out " + dir("bad-shard"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("2/2"), std::string::npos) << r.out;
  EXPECT_FALSE(path_exists(dir("bad-shard")));
}

// --- the manifests of docs/fleet.md ---------------------------------------------------------

// Every YAML document of `path` as JSON (through python3's yaml module), or a skip reason.
std::optional<json> yaml_docs(const std::string& path, std::string* skip) {
  CliResult r = run_cli("python3", "-c 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1]))), "
                                   "default=str))' " + path);
  if (r.code != 0) {
    *skip = "python3 with its yaml module (Debian: python3-yaml) is needed to read the manifests: " + r.out;
    return std::nullopt;
  }
  return json::parse(r.out);
}

// Every string of a JSON tree; a list whose first item is a cowbench binary also as one
// command line.
void strings_of(const json& j, std::vector<std::string>& out) {
  if (j.is_string()) out.push_back(j.get<std::string>());
  if (j.is_array() && !j.empty() && j[0].is_string() && j[0].get<std::string>().ends_with("cowbench")) {
    std::string line;
    for (const auto& a : j) line += (line.empty() ? "" : " ") + (a.is_string() ? a.get<std::string>() : a.dump());
    out.push_back(line);
    return;
  }
  if (j.is_structured())
    for (const auto& v : j) strings_of(v, out);
}

// One cowbench command line of a manifest: its subcommand, and what follows up to a shell
// separator, as text and as words.
struct Command {
  std::string sub;
  std::string text;
  std::vector<std::string> words;
};

// The cowbench command lines in `docs`.
std::vector<Command> cowbench_commands(const json& docs) {
  std::vector<std::string> texts;
  strings_of(docs, texts);
  std::vector<Command> out;
  std::regex cmd(R"((?:^|[\s/])cowbench\s+([a-z]+)([^;&|>\n]*))");
  for (const auto& t : texts) {
    std::string flat = std::regex_replace(t, std::regex(R"(\s*\n\s*)"), " ");
    for (std::sregex_iterator it(flat.begin(), flat.end(), cmd), end; it != end; ++it) {
      std::vector<std::string> words;
      std::string rest = (*it)[2];
      std::regex word(R"(\S+)");
      for (std::sregex_iterator w(rest.begin(), rest.end(), word), e; w != e; ++w) words.push_back(w->str());
      out.push_back({(*it)[1], rest, words});
    }
  }
  return out;
}

// Each option a manifest gives cowbench is in that subcommand's --help.
void expect_known_options(const std::vector<Command>& commands) {
  std::map<std::string, std::string> help;
  for (const auto& [sub, text, words] : commands) {
    if (!help.count(sub)) {
      CliResult h = run_cli(COWBENCH_BIN, sub + " --help");
      EXPECT_EQ(h.code, 0) << "cowbench " << sub << " --help: " << h.out;
      help[sub] = h.out;
    }
    for (const auto& w : words) {
      if (!w.starts_with("--")) continue;
      std::string opt = w.substr(0, w.find('='));
      EXPECT_NE(help[sub].find(opt + " "), std::string::npos) << "cowbench " << sub << " has no " << opt;
    }
  }
}

// The word after `opt` in a command line ("" when absent).
std::string value_of(const std::vector<std::string>& words, const std::string& opt) {
  auto it = std::find(words.begin(), words.end(), opt);
  return it == words.end() || it + 1 == words.end() ? "" : *(it + 1);
}

TEST(FleetManifests, KubernetesIndexedJob) {
  std::string skip;
  auto docs = yaml_docs(source_path("docs/examples/k8s-indexed-job.yaml"), &skip);
  if (!docs) GTEST_SKIP() << skip;
  ASSERT_EQ(docs->size(), 2u);
  const json& job = (*docs)[0];
  EXPECT_EQ(job.at("kind"), "Job");
  const json& spec = job.at("spec");
  EXPECT_EQ(spec.at("completionMode"), "Indexed");
  int n = spec.at("completions").get<int>();
  EXPECT_GE(n, 2);
  EXPECT_GE(spec.at("parallelism").get<int>(), 1);
  const json& pod = spec.at("template").at("spec");
  const json& c = pod.at("containers").at(0);
  EXPECT_EQ(c.at("securityContext").at("privileged"), true);
  // The host's /dev, BPF file system and tracefs, mounted where the kernel has them.
  std::map<std::string, std::string> host_paths, mounts;
  for (const auto& v : pod.at("volumes"))
    if (v.contains("hostPath")) host_paths[v.at("name")] = v.at("hostPath").at("path");
  for (const auto& m : c.at("volumeMounts")) mounts[m.at("mountPath")] = m.at("name");
  for (const char* p : {"/dev", "/sys/fs/bpf", "/sys/kernel/tracing"}) {
    ASSERT_TRUE(mounts.count(p)) << p;
    EXPECT_EQ(host_paths[mounts[p]], p);
  }
  auto commands = cowbench_commands(*docs);
  auto run = std::find_if(commands.begin(), commands.end(), [](const Command& c) { return c.sub == "run"; });
  ASSERT_NE(run, commands.end());
  EXPECT_EQ(value_of(run->words, "--shard"), fmt::format("$(JOB_COMPLETION_INDEX)/{}", n));
  EXPECT_NE(value_of(run->words, "--out").find("$(JOB_COMPLETION_INDEX)"), std::string::npos) << "one results dir per shard";
  auto merge = std::find_if(commands.begin(), commands.end(), [](const Command& c) { return c.sub == "merge"; });
  ASSERT_NE(merge, commands.end());
  EXPECT_FALSE(value_of(merge->words, "--out").empty());
  expect_known_options(commands);
}

TEST(FleetManifests, GithubActionsMatrix) {
  std::string skip;
  auto docs = yaml_docs(source_path("docs/examples/github-actions-shards.yml"), &skip);
  if (!docs) GTEST_SKIP() << skip;
  ASSERT_EQ(docs->size(), 1u);
  const json& jobs = (*docs)[0].at("jobs");
  const json& shard = jobs.at("shard");
  std::vector<int> shards = shard.at("strategy").at("matrix").at("shard").get<std::vector<int>>();
  ASSERT_GE(shards.size(), 2u);
  for (size_t i = 0; i < shards.size(); ++i) EXPECT_EQ(shards[i], static_cast<int>(i)) << "0-based, every index once";
  // The shard job runs its shard and uploads its results under a name of its own.
  auto commands = cowbench_commands(shard);
  auto run = std::find_if(commands.begin(), commands.end(), [](const Command& c) { return c.sub == "run"; });
  ASSERT_NE(run, commands.end());
  std::string shard_arg = fmt::format("--shard ${{{{ matrix.shard }}}}/{}", shards.size());
  EXPECT_NE(run->text.find(shard_arg), std::string::npos) << run->text;
  bool uploads = false;
  for (const auto& step : shard.at("steps"))
    if (step.value("uses", "").starts_with("actions/upload-artifact") &&
        step.at("with").at("name").get<std::string>().find("${{ matrix.shard }}") != std::string::npos)
      uploads = true;
  EXPECT_TRUE(uploads) << "an artifact per shard";
  // The merge job waits for the shards, downloads their artifacts and merges them.
  const json& merge_job = jobs.at("merge");
  json needs = merge_job.at("needs");
  EXPECT_TRUE(needs == "shard" || (needs.is_array() && std::find(needs.begin(), needs.end(), "shard") != needs.end()));
  bool downloads = false;
  for (const auto& step : merge_job.at("steps"))
    if (step.value("uses", "").starts_with("actions/download-artifact") && step.at("with").contains("pattern")) downloads = true;
  EXPECT_TRUE(downloads);
  auto merges = cowbench_commands(merge_job);
  ASSERT_TRUE(std::any_of(merges.begin(), merges.end(), [](const Command& c) { return c.sub == "merge"; }));
  expect_known_options(cowbench_commands(*docs));
}

}  // namespace
}  // namespace cowbench::test
