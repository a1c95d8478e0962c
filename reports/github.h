// GitHub Actions: the job summary ($GITHUB_STEP_SUMMARY, appended) and workflow-command annotations (::error title=...::message).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cowbench::rep::github {

// The file of the current step's job summary, named by the runner.
inline constexpr const char* kStepSummaryEnv = "GITHUB_STEP_SUMMARY";
// GitHub refuses a step summary above 1 MiB; append_step_summary keeps under it.
inline constexpr int64_t kStepSummaryLimit = 1 << 20;

// True when running as a GitHub Actions step (GITHUB_ACTIONS=true).
bool in_github_actions();

// Appends `markdown` (and a newline when it has none) to the file $GITHUB_STEP_SUMMARY names,
// as GitHub expects: several writers in one step add up. Returns false, writing nothing, when
// the variable is unset or empty. Text that would take the file past kStepSummaryLimit is cut
// at a line end, with a last line saying so. Throws Error(kFailure) naming the file when it
// cannot be opened or written.
bool append_step_summary(std::string_view markdown);

// A workflow command's message: '%', '\r' and '\n' escaped as %25, %0D and %0A.
std::string escape_data(std::string_view s);
// A workflow command's property value: escape_data, and ':' and ',' as %3A and %2C.
std::string escape_property(std::string_view s);

enum class Level { kNotice, kWarning, kError };

// Where an annotation points and what it is called; empty / 0 fields are left out.
struct Annotation {
  Level level = Level::kError;
  std::string title;
  std::string file;
  int line = 0, end_line = 0, col = 0, end_column = 0;
  std::string message;
};

// One line "::error title=T,file=F,line=N::MESSAGE" (no newline), escaped: print it to stdout
// and GitHub shows it on the run's page (and in a PR's diff when it names a file).
std::string format_annotation(const Annotation& a);

}  // namespace cowbench::rep::github
