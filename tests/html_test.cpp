// The HTML report: self-contained (no network, no script), every chart accessible, and drawn by a real browser (headless Chromium).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "common/fs.h"
#include "reports/gbench.h"
#include "reports/html.h"
#include "reports/results.h"
#include "reports/svg.h"
#include "tests/report_checks.h"
#include "tests/test_util.h"

namespace cowbench::test {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::string fixture_html() {
  return rep::render_html(rep::load_results(source_path("tests/golden/results.json")),
                          {rep::load_gbench(source_path("tests/golden/gbench.json"))});
}

TEST(Html, SelfContainedWithoutScriptOrNetwork) {
  std::string html = fixture_html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* banned : {"http:", "https:", "<script", "<link", "@import", "url(", " src=", "<iframe", "<img"})
    EXPECT_EQ(html.find(banned), std::string::npos) << "external reference or script: " << banned;
  for (const char* bad : {"NaN", "nan\"", "inf\""}) EXPECT_EQ(html.find(bad), std::string::npos) << bad;
}

TEST(Html, EveryChartIsLabelledAndEveryBackendKeepsItsColour) {
  rep::Results r = rep::load_results(source_path("tests/golden/results.json"));
  std::string html = fixture_html();
  size_t svgs = count(html, "<svg ");
  EXPECT_GE(svgs, 10u);
  EXPECT_EQ(count(html, "<title>"), svgs + count(html, "<rect ") + count(html, "<circle ") + count(html, "<path ") + 1)
      << "one <title> per chart, bar, line and marker, and the page's";
  EXPECT_EQ(count(html, "role=\"img\""), svgs);
  EXPECT_EQ(count(html, "<desc>"), svgs);
  for (const char* section : {"id=\"findings\"", "id=\"wall-time\"", "id=\"copy-up\"", "id=\"latency\"", "id=\"scale-out\"",
                              "id=\"tables\"", "id=\"failures\"", "id=\"microbenchmarks\""})
    EXPECT_NE(html.find(section), std::string::npos) << section;
  // overlayfs bars are always #0072B2: the legend's swatch and the chart fills agree.
  EXPECT_NE(html.find("background:#0072B2\"></span>overlayfs"), std::string::npos);
  std::regex bar("<rect [^>]*fill=\"([^\"]+)\"[^>]*><title>overlayfs: ");
  size_t overlay_bars = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), bar); it != std::sregex_iterator(); ++it, ++overlay_bars)
    EXPECT_EQ((*it)[1], "#0072B2");
  EXPECT_GT(overlay_bars, 5u);
}

TEST(Html, SvgPrimitivesNeverWriteNaN) {
  rep::Palette p({"overlayfs"});
  rep::BarChart c;
  c.title = "t <&>";
  c.groups.push_back({"", {{"a", "overlayfs", NAN, 0, ""}, {"b", "x", 0, 0, ""}}});
  std::string svg = rep::bar_chart_svg(c, p);
  EXPECT_EQ(svg.find("NaN"), std::string::npos) << svg;
  EXPECT_NE(svg.find("not measured"), std::string::npos);
  EXPECT_NE(svg.find("<title>t &lt;&amp;&gt;</title>"), std::string::npos);
  rep::LineChart l;
  l.log_x = true;
  l.series.push_back({"overlayfs", {{0, 0.5}, {-1, 1}}});  // nothing drawable on a log axis
  svg = rep::line_chart_svg(l, p);
  EXPECT_EQ(svg.find("NaN"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
}

TEST(Html, ChromiumDrawsEveryChart) {
  if (auto why = chromium_skip_reason()) GTEST_SKIP() << *why;
  TempDir dir(scratch_root(), "html");
  std::string html = fixture_html();
  std::string page = path_join(dir.path(), "report.html");
  write_file_atomic(page, html, 0644, false);
  Rendered r = render_in_chromium(page, dir.path());
  EXPECT_NE(r.dom.find("cowbench report"), std::string::npos);
  EXPECT_EQ(r.dom.find("NaN"), std::string::npos);
  EXPECT_EQ(count(r.dom, "<svg "), count(html, "<svg "));
  ASSERT_EQ(r.charts.size(), count(html, "<svg "));
  for (const auto& c : r.charts) {
    EXPECT_GT(c.width, 200) << c.label;
    EXPECT_GT(c.height, 60) << c.label;
    EXPECT_GT(c.marks, 2) << c.label << ": nothing drawn";
    EXPECT_GT(c.texts, 2) << c.label << ": no labels";
  }
  std::string png = path_join(dir.path(), "report.png");
  ASSERT_TRUE(screenshot(page, png, 1280, 2500, dir.path()));
  EXPECT_GT(read_file(png).size(), 20000u) << "a blank page compresses to almost nothing";
  // COWBENCH_SCREENSHOT=FILE keeps the screenshot (docs/report-screenshot.png is it, through pngquant).
  if (const char* keep = std::getenv("COWBENCH_SCREENSHOT")) std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace cowbench::test
