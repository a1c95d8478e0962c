// The report writers at once, and reading report inputs (see reports.h).
#include "reports/reports.h"

#include "common/error.h"
#include "common/fs.h"
#include "reports/csv.h"
#include "reports/html.h"
#include "reports/markdown.h"

namespace cowbench::rep {

void write_reports(const Results& r, const std::string& out_dir) {
  make_dirs(out_dir);
  write_file_atomic(path_join(out_dir, "report.md"), render_markdown(r), 0644, false);
  write_file_atomic(path_join(out_dir, "results.csv"), render_csv(r), 0644, false);
  write_file_atomic(path_join(out_dir, "report.html"), render_html(r), 0644, false);
}

Results load_input(const std::string& path, const std::string& role) {
  try {
    return load_results(path);
  } catch (const Error& e) {
    std::string what = e.what();
    // load_results already names the path in parse errors; do not say it twice.
    if (what.rfind(path, 0) == 0) fail(Errc::kInvalidInput, "{} {}", role, what);
    fail(Errc::kInvalidInput, "{} {}: {}", role, path, what);
  }
}

}  // namespace cowbench::rep
