// The Markdown report (see markdown.h).
#include "reports/markdown.h"

#include <fmt/format.h>

namespace cowbench::rep {
namespace {

std::string escape_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

void section(std::string& out, const std::string& heading, const Table& t) {
  out += fmt::format("{} {}\n\n", heading, t.title);
  if (!t.caption.empty()) out += t.caption + "\n\n";
  out += markdown_table(t) + "\n";
}

}  // namespace

std::string markdown_table(const Table& t) {
  std::string out = "|";
  for (const auto& h : t.header) out += " " + escape_cell(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < t.header.size(); ++i) out += i < t.numeric.size() && t.numeric[i] ? " ---: |" : " :--- |";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (const auto& c : row) out += " " + escape_cell(c) + " |";
    out += "\n";
  }
  if (!t.notes.empty()) out += "\n";
  for (const auto& n : t.notes) out += n + "\n";
  return out;
}

std::string render_markdown(const Results& r, const std::vector<GbenchFile>& gbench) {
  Grouped g(r);
  ReportModel m = build_model(r, g);
  std::string out = "# cowbench report\n\n";
  for (const auto& f : m.facts) out += "- " + f + "\n";
  out += "\n## Findings\n\n";
  if (m.findings.empty()) out += "No run produced a result.\n";
  for (const auto& f : m.findings) out += "- " + f + "\n";
  out += "\n## Workloads\n\n";
  out += "Medians over the repeats; the 95 % CI is the half-width of an approximate interval for the median; "
         "“vs fastest” divides by the fastest backend's median.\n\n";
  out += std::string(kCopyColumnsExplained) + "\n\n";
  for (const auto& t : m.workloads) section(out, "###", t);
  if (!m.scale_out.empty()) out += "## Scale-out\n\n";
  for (const auto& t : m.scale_out) section(out, "###", t);
  if (m.failures) section(out, "##", *m.failures);
  if (!gbench.empty()) out += "## Microbenchmarks\n\n";
  for (const auto& f : gbench) section(out, "###", gbench_table(f));
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

}  // namespace cowbench::rep
