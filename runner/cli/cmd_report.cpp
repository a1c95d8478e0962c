// CLI commands over results files: `report` (Markdown, CSV, HTML, Bencher Metric Format) and `compare` (the CI regression gate).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "reports/bmf.h"
#include "reports/compare.h"
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

int run_compare(const std::string& base_path, const std::string& new_path, double threshold_pct, double alpha, const std::string& out) {
  rep::Results base = rep::load_input(base_path, "base file");
  rep::Results now = rep::load_input(new_path, "new file");
  rep::CompareOptions o;
  o.threshold = threshold_pct / 100;
  o.alpha = alpha;
  rep::Comparison c;
  try {
    c = rep::compare_results(base, now, o);
  } catch (const Error& e) {
    fail(e.code(), "{} vs {}: {}", base_path, new_path, e.what());
  }
  std::string md = rep::comparison_markdown(c, base_path, new_path) + "\n";
  std::cout << md;
  if (!out.empty()) write_file_atomic(out, md, 0644, false);
  return c.count(rep::Verdict::kRegression) > 0 ? 1 : 0;
}

}  // namespace

void add_report_commands(CLI::App& app, Commands& out) {
  struct Opts {
    std::string input, format = "md", out;
    std::vector<std::string> gbench;
    std::string base, now;
    double threshold = 5, alpha = 0.05;
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

  auto* compare = app.add_subcommand(
      "compare",
      "the CI gate: per (backend, workload, metric) test NEW against BASE (Mann-Whitney U over the repeats + threshold); "
      "exit 1 on a regression, 2 on bad input");
  compare->add_option("BASE", o->base, "results.json of the baseline")->required();
  compare->add_option("NEW", o->now, "results.json to judge")->required();
  compare->add_option("--threshold", o->threshold, "relative change of the median, in percent, that counts as a regression")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  compare->add_option("--alpha", o->alpha, "significance level of the U test (0 < A < 1)")
      ->check(CLI::Range(1e-9, 0.999999))
      ->capture_default_str();
  compare->add_option("--out", o->out, "also write the Markdown table to this file (e.g. $GITHUB_STEP_SUMMARY)");
  out.push_back({compare, [o] { return run_compare(o->base, o->now, o->threshold, o->alpha, o->out); }});
}

}  // namespace cowbench
