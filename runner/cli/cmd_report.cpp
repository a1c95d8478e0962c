// CLI command over a results file: `report` (Markdown, CSV, HTML, Bencher Metric Format).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "reports/bmf.h"
#include "reports/csv.h"
#include "reports/gbench.h"
#include "reports/html.h"
#include "reports/markdown.h"
#include "reports/reports.h"
#include "runner/cli/command.h"

namespace cowbench {
namespace {

// Prints `text` to stdout, or writes it to `out` (atomically) when given.
void emit(const std::string& text, const std::string& out) {
  if (out.empty()) {
    std::cout << text;
    if (!text.empty() && text.back() != '\n') std::cout << "\n";
    return;
  }
  write_file_atomic(out, text, 0644, false);
}

int run_report(const std::string& input, const std::string& format, const std::string& out, const std::vector<std::string>& gbench) {
  rep::Results r = rep::load_input(input, "results file");
  std::vector<rep::GbenchFile> micro;
  for (const auto& g : gbench) micro.push_back(rep::load_gbench(g));
  if (format == "md") {
    emit(rep::render_markdown(r, micro), out);
  } else if (format == "bmf") {
    if (!micro.empty()) fail(Errc::kUsage, "--gbench goes into md or html reports, not bmf");
    emit(rep::render_bmf(r), out);
  } else if (format == "csv") {
    if (!micro.empty()) fail(Errc::kUsage, "--gbench goes into md or html reports, not csv");
    emit(rep::render_csv(r), out);
  } else {
    emit(rep::render_html(r, micro), out);
  }
  return 0;
}

}  // namespace

void add_report_commands(CLI::App& app, Commands& out) {
  struct Opts {
    std::string input, format = "md", out;
    std::vector<std::string> gbench;
  };
  auto o = std::make_shared<Opts>();

  auto* report = app.add_subcommand("report", "turn a results.json into a Markdown, CSV or HTML report, or Bencher Metric Format JSON (bmf)");
  report->add_option("RESULTS", o->input, "results.json written by `cowbench run`")->required();
  report->add_option("--format", o->format, "md | csv | html | bmf (Bencher Metric Format JSON, see docs/ci.md)")
      ->check(CLI::IsMember({"md", "csv", "html", "bmf"}))
      ->capture_default_str();
  report->add_option("--out", o->out, "write to this file instead of standard output");
  report->add_option("--gbench", o->gbench, "Google Benchmark JSON output (--benchmark_out_format=json) to fold in; repeatable")
      ->take_all();
  out.push_back({report, [o] { return run_report(o->input, o->format, o->out, o->gbench); }});
}

}  // namespace cowbench
