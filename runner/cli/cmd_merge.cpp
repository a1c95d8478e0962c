// CLI command `merge`: one results.json and its reports from the results of several shards or hosts.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "reports/csv.h"
#include "reports/html.h"
#include "reports/markdown.h"
#include "reports/merge.h"
#include "reports/reports.h"
#include "runner/cli/command.h"

namespace cowbench {
namespace {

int run_merge(const std::vector<std::string>& paths, const std::string& out, bool allow_mixed_hosts) {
  std::vector<rep::MergeInput> inputs;
  for (const auto& p : paths) inputs.push_back({p, rep::load_input(p, "results file")});
  rep::MergeOptions o;
  o.allow_mixed_hosts = allow_mixed_hosts;
  rep::Results r = rep::merge_results(inputs, o);
  // Everything rendered before anything is written: a failure leaves no partial output.
  std::string json = rep::to_json(r).dump(2) + "\n";
  std::string md = rep::render_markdown(r), csv = rep::render_csv(r), html = rep::render_html(r);
  make_dirs(out);
  write_file_atomic(path_join(out, "results.json"), json, 0644, false);
  write_file_atomic(path_join(out, "report.md"), md, 0644, false);
  write_file_atomic(path_join(out, "results.csv"), csv, 0644, false);
  write_file_atomic(path_join(out, "report.html"), html, 0644, false);
  std::cout << fmt::format("merged {} runs from {} files{} into {}\n", r.runs.size(), paths.size(),
                           r.testbeds.empty() ? "" : fmt::format(" ({} testbeds)", r.testbeds.size()),
                           path_join(out, "results.json"));
  // The merge succeeded; runs that failed in their shard are in the reports (their shard's
  // `run` already exited 1).
  size_t failed = std::count_if(r.runs.begin(), r.runs.end(), [](const rep::Run& x) { return x.status != "ok"; });
  if (failed) std::cerr << fmt::format("cowbench: {} of the merged runs had failed (see report.md)\n", failed);
  return 0;
}

}  // namespace

void add_merge_commands(CLI::App& app, Commands& out) {
  struct Opts {
    std::vector<std::string> inputs;
    std::string out;
    bool allow_mixed_hosts = false;
  };
  auto o = std::make_shared<Opts>();
  auto* merge = app.add_subcommand(
      "merge",
      "combine the results.json of several shards (run --shard I/N) or hosts into one, with its reports (md, csv, html)");
  merge->add_option("RESULTS", o->inputs, "results.json files to combine, in order")->required();
  merge->add_option("--out", o->out, "directory for results.json, report.md, results.csv and report.html")->required();
  merge->add_flag("--allow-mixed-hosts", o->allow_mixed_hosts,
                  "accept results from different hosts: each host becomes a testbed, named in every run and report row");
  out.push_back({merge, [o] { return run_merge(o->inputs, o->out, o->allow_mixed_hosts); }});
}

}  // namespace cowbench
