// GitHub Actions job summary and annotations (see github.h).
#include "reports/github.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/error.h"
#include "common/fd.h"

namespace cowbench::rep::github {
namespace {

std::string escape(std::string_view s, bool property) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '%': out += "%25"; break;
      case '\r': out += "%0D"; break;
      case '\n': out += "%0A"; break;
      case ':': out += property ? "%3A" : ":"; break;
      case ',': out += property ? "%2C" : ","; break;
      default: out += c;
    }
  }
  return out;
}

void write_all(int fd, std::string_view s, const std::string& path) {
  while (!s.empty()) {
    ssize_t n = write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_sys("job summary {}: write", path);
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

bool in_github_actions() {
  const char* v = std::getenv("GITHUB_ACTIONS");
  return v && std::string_view(v) == "true";
}

bool append_step_summary(std::string_view markdown) {
  const char* env = std::getenv(kStepSummaryEnv);
  if (!env || !*env) return false;
  std::string path = env;
  Fd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) fail_sys("job summary {} (${})", path, kStepSummaryEnv);
  struct stat st {};
  int64_t used = fstat(fd.get(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  std::string text(markdown);
  if (text.empty() || text.back() != '\n') text += '\n';
  constexpr std::string_view kCut = "\n*(cut here: GitHub keeps at most 1 MiB of job summary per step)*\n";
  int64_t room = kStepSummaryLimit - used;
  if (static_cast<int64_t>(text.size()) > room) {
    int64_t keep = room - static_cast<int64_t>(kCut.size());
    if (keep <= 0) return true;  // full already: nothing more fits
    size_t end = text.rfind('\n', static_cast<size_t>(keep - 1));
    text = text.substr(0, end == std::string::npos ? 0 : end + 1);
    text += kCut;
  }
  write_all(fd.get(), text, path);
  if (int rc = fd.close(); rc != 0) fail_errno(-rc, "job summary {}: close", path);
  return true;
}

std::string escape_data(std::string_view s) { return escape(s, false); }
std::string escape_property(std::string_view s) { return escape(s, true); }

std::string format_annotation(const Annotation& a) {
  std::string out = "::";
  out += a.level == Level::kError ? "error" : a.level == Level::kWarning ? "warning" : "notice";
  std::string props;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    props += (props.empty() ? " " : ",") + std::string(key) + "=" + escape_property(value);
  };
  auto num = [](int v) { return v > 0 ? std::to_string(v) : std::string(); };
  add("title", a.title);
  add("file", a.file);
  add("line", num(a.line));
  add("endLine", num(a.end_line));
  add("col", num(a.col));
  add("endColumn", num(a.end_column));
  return out + props + "::" + escape_data(a.message);
}

}  // namespace cowbench::rep::github
