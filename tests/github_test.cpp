// GitHub Actions: workflow-command escaping and annotations, and the job summary appended to the file $GITHUB_STEP_SUMMARY names.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/error.h"
#include "common/fs.h"
#include "reports/github.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

namespace gh = rep::github;

TEST(GithubCommands, EscapingOfDataAndProperties) {
  EXPECT_EQ(gh::escape_data("50% done\r\nnext: a, b"), "50%25 done%0D%0Anext: a, b");
  EXPECT_EQ(gh::escape_property("50% done\r\nnext: a, b"), "50%25 done%0D%0Anext%3A a%2C b");
  EXPECT_EQ(gh::escape_data("%0A"), "%250A") << "an escape-looking text stays text";
  EXPECT_EQ(gh::escape_property(""), "");
}

TEST(GithubCommands, Annotations) {
  gh::Annotation a;
  a.title = "overlayfs/append-log: wall time";
  a.message = "median 12.0 ms -> 15.0 ms (+25 %), p = 0.008\nbase n=5, new n=5";
  EXPECT_EQ(gh::format_annotation(a),
            "::error title=overlayfs/append-log%3A wall time::median 12.0 ms -> 15.0 ms (+25 %25), p = 0.008%0Abase n=5, new n=5");
  gh::Annotation w;
  w.level = gh::Level::kWarning;
  w.file = "docs/examples/cowbench.yml";
  w.line = 3;
  w.end_line = 4;
  w.col = 2;
  w.end_column = 9;
  w.message = "busy host";
  EXPECT_EQ(gh::format_annotation(w), "::warning file=docs/examples/cowbench.yml,line=3,endLine=4,col=2,endColumn=9::busy host");
  gh::Annotation n;
  n.level = gh::Level::kNotice;
  n.message = "3 of 75 runs were busy";
  EXPECT_EQ(gh::format_annotation(n), "::notice::3 of 75 runs were busy");
}

TEST(GithubSummary, AppendsToTheFileTheVariableNames) {
  TempDir tmp(scratch_root(), "gh-summary");
  std::string file = path_join(tmp.path(), "step_summary");
  {
    ScopedEnv unset(gh::kStepSummaryEnv, nullptr);
    EXPECT_FALSE(gh::append_step_summary("# nothing"));
    ScopedEnv empty(gh::kStepSummaryEnv, "");
    EXPECT_FALSE(gh::append_step_summary("# nothing"));
  }
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "no variable, no file";

  write_file_atomic(file, "earlier step text\n", 0644, false);
  ScopedEnv set(gh::kStepSummaryEnv, file.c_str());
  EXPECT_TRUE(gh::append_step_summary("## cowbench compare\n\n| a | b |\n| --- | --- |"));
  EXPECT_TRUE(gh::append_step_summary("second\n"));
  EXPECT_EQ(read_file(file), "earlier step text\n## cowbench compare\n\n| a | b |\n| --- | --- |\nsecond\n");
}

TEST(GithubSummary, StaysUnderGithubsLimit) {
  TempDir tmp(scratch_root(), "gh-summary");
  std::string file = path_join(tmp.path(), "step_summary");
  write_file_atomic(file, std::string(gh::kStepSummaryLimit - 1000, 'x') + "\n", 0644, false);
  ScopedEnv set(gh::kStepSummaryEnv, file.c_str());
  std::string table;
  for (int i = 0; i < 200; ++i) table += "| row " + std::to_string(i) + " | 1 |\n";
  EXPECT_TRUE(gh::append_step_summary(table));
  std::string text = read_file(file);
  EXPECT_LE(static_cast<int64_t>(text.size()), gh::kStepSummaryLimit);
  EXPECT_NE(text.find("| row 0 | 1 |\n"), std::string::npos);
  EXPECT_EQ(text.find("| row 199 |"), std::string::npos);
  EXPECT_NE(text.find("1 MiB"), std::string::npos) << "says it was cut";
  EXPECT_EQ(text.back(), '\n');
}

TEST(GithubSummary, UnwritableFileIsAnErrorNamingIt) {
  TempDir tmp(scratch_root(), "gh-summary");
  std::string file = path_join(tmp.path(), "no/such/dir/summary");
  ScopedEnv set(gh::kStepSummaryEnv, file.c_str());
  try {
    gh::append_step_summary("x");
    ADD_FAILURE() << "wrote to a file in a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kFailure);
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cowbench::test
