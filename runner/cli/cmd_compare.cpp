// CLI command `compare`: the CI regression gate between two results files (exit 1 on a regression).
#include <fmt/format.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "reports/compare.h"
#include "reports/github.h"
#include "reports/reports.h"
#include "reports/units.h"
#include "runner/cli/command.h"

namespace cowbench {
namespace {

struct CompareArgs {
  std::string base, now, format = "md", out, gate = "wall";
  double threshold = 5, alpha = 0.05, power = 0.8;
  bool across_rounds = false;
};

int run_compare(const CompareArgs& a) {
  rep::Results base = rep::load_input(a.base, "base file");
  rep::Results now = rep::load_input(a.now, "new file");
  rep::CompareOptions o;
  o.threshold = a.threshold / 100;
  o.alpha = a.alpha;
  o.power = a.power;
  o.gate_all = a.gate == "all";
  o.within_rounds = !a.across_rounds;
  rep::Comparison c;
  try {
    c = rep::compare_results(base, now, o);
  } catch (const Error& e) {
    fail(e.code(), "{} vs {}: {}", a.base, a.now, e.what());
  }
  std::string text = a.format == "json" ? rep::comparison_json(c, a.base, a.now).dump(2) + "\n"
                                        : rep::comparison_markdown(c, a.base, a.now) + "\n";
  std::cout << text;
  if (!a.out.empty()) write_file_atomic(a.out, text, 0644, false);
  // In GitHub Actions (or wherever $GITHUB_STEP_SUMMARY is set): the Markdown into the job
  // summary, an error annotation per regression that fails the gate.
  if (rep::github::in_github_actions() || std::getenv(rep::github::kStepSummaryEnv)) {
    rep::github::append_step_summary(a.format == "json" ? rep::comparison_markdown(c, a.base, a.now) : text);
    for (const auto& r : c.rows) {
      if (!r.gates || r.verdict != rep::Verdict::kRegression) continue;
      rep::github::Annotation an;
      an.title = fmt::format("cowbench regression: {} {}", r.backend == "*" ? "all backends" : r.backend,
                             r.workload == "*" ? "all workloads" : r.workload);
      an.message = fmt::format("{}: {} ({} vs {})", r.metric->label, rep::format_change(r.change), a.now, a.base);
      // Workflow commands go to stdout; with --format json stdout stays JSON, and the runner
      // reads them from stderr too.
      (a.format == "json" ? std::cerr : std::cout) << rep::github::format_annotation(an) << "\n";
    }
  }
  return c.regressed() ? 1 : 0;
}

}  // namespace

void add_compare_commands(CLI::App& app, Commands& out) {
  auto a = std::make_shared<CompareArgs>();
  auto* compare = app.add_subcommand(
      "compare",
      "the CI gate: NEW against BASE — counters exactly, times by a moderated t-test on log values over all rows "
      "(Benjamini-Hochberg), each row with the smallest change it could detect; exit 1 on a regression, 2 on bad input");
  compare->add_option("BASE", a->base, "results.json of the baseline")->required();
  compare->add_option("NEW", a->now, "results.json to judge")->required();
  compare->add_option("--threshold", a->threshold, "relative change, in percent, a measured figure must exceed to count as a regression")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  compare->add_option("--alpha", a->alpha, "false-discovery rate over all tested rows (0 < A < 1)")
      ->check(CLI::Range(1e-9, 0.999999))
      ->capture_default_str();
  compare->add_option("--power", a->power, "power at which the smallest detectable change is stated (0 < P < 1)")
      ->check(CLI::Range(0.01, 0.999))
      ->capture_default_str();
  compare->add_option("--gate", a->gate,
                      "what fails the gate: wall (exact counters and wall time) | all (also the shift every backend shares, setup, "
                      "latencies, CPU, page cache)")
      ->check(CLI::IsMember({"wall", "all"}))
      ->capture_default_str();
  compare->add_flag("--across-rounds", a->across_rounds,
                    "test wall times as measured, without taking out what each round's backends shared (the host at "
                    "that moment); the default takes it out");
  compare->add_option("--format", a->format, "md | json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  compare->add_option("--out", a->out, "also write the output to this file");
  out.push_back({compare, [a] { return run_compare(*a); }});
}

}  // namespace cowbench
