// The HTML report (see html.h).
#include "reports/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "reports/family.h"
#include "reports/metrics.h"
#include "reports/report_model.h"
#include "reports/svg.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

constexpr const char* kStyle = R"(
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d1f23; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 36px 0 4px; padding-bottom: 4px; border-bottom: 2px solid #d9dce1; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.lead { color: #50555e; margin: 4px 0 14px; }
ul.facts { list-style: none; padding: 0; margin: 0 0 10px; color: #50555e; }
ul.legend { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 6px 18px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; }
.findings li { margin: 4px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #dfe2e6; border-radius: 8px; padding: 12px 14px 8px; }
figcaption { font-size: 14px; color: #50555e; margin-bottom: 6px; }
figcaption strong { color: #1d1f23; font-size: 15px; }
figure svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 4px; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e4e6ea; text-align: left; vertical-align: top; }
th { background: #eef0f3; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
p.note { font-size: 13px; color: #50555e; margin: 2px 0 12px; }
.scroll { overflow-x: auto; }
details { margin-top: 28px; }
pre { background: #fff; border: 1px solid #dfe2e6; border-radius: 6px; padding: 10px; overflow-x: auto; font-size: 12px; }
footer { margin-top: 36px; color: #80858e; font-size: 13px; }
)";

std::string esc(const std::string& s) { return xml_escape(s); }

std::string figure(const std::string& title, const std::string& caption, const std::string& svg) {
  return fmt::format("<figure><figcaption><strong>{}</strong>{}</figcaption>\n{}</figure>\n", esc(title),
                     caption.empty() ? "" : " — " + esc(caption), svg);
}

std::string html_table(const Table& t) {
  std::string out = "<div class=\"scroll\"><table>\n<thead><tr>";
  auto cls = [&](size_t i) { return i < t.numeric.size() && t.numeric[i] ? " class=\"num\"" : ""; };
  for (size_t i = 0; i < t.header.size(); ++i) out += fmt::format("<th{}>{}</th>", cls(i), esc(t.header[i]));
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) out += fmt::format("<td{}>{}</td>", cls(i), esc(row[i]));
    out += "</tr>\n";
  }
  out += "</tbody></table></div>\n";
  for (const auto& n : t.notes) out += "<p class=\"note\">" + esc(n) + "</p>\n";
  return out;
}

std::string section(const char* id, const std::string& title, const std::string& lead, const std::string& body) {
  return fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}{}</section>\n", id, esc(title),
                     lead.empty() ? "" : "<p class=\"lead\">" + esc(lead) + "</p>\n", body);
}

std::string grid(const std::vector<std::string>& figures) {
  std::string out = "<div class=\"grid\">\n";
  for (const auto& f : figures) out += f;
  return out + "</div>\n";
}

bool any_measured(const BarGroup& g) {
  return std::any_of(g.bars.begin(), g.bars.end(), [](const Bar& b) { return std::isfinite(b.value); });
}

// Median wall time with 95 % CI whiskers, one chart per workload.
std::vector<std::string> wall_figures(const Grouped& g, const Palette& p) {
  std::vector<std::string> out;
  for (const auto& w : g.workloads()) {
    BarChart c;
    c.title = fmt::format("{}: median wall time per backend, with 95 % confidence interval", w);
    c.desc = "Horizontal bars, one per backend; whiskers span the 95 % interval of the median.";
    c.unit = Unit::kNs;
    c.axis_label = "median wall time";
    BarGroup grp;
    for (const auto& b : g.backends()) {
      const SummaryRow* s = g.row(b, w);
      if (!s) continue;
      Bar bar{b, b, s->median_wall_ns < 0 ? NAN : static_cast<double>(s->median_wall_ns), std::max<double>(0, s->ci95_ns), ""};
      if (s->n == 0) bar.note = "failed";
      grp.bars.push_back(bar);
    }
    if (!any_measured(grp)) continue;  // every run failed: the tables say so
    c.groups.push_back(grp);
    out.push_back(figure(w, "median wall time ± 95 % CI", bar_chart_svg(c, p)));
  }
  return out;
}

// One figure of a byte figure per backend, grouped by workload; workloads where no backend
// measured it are left out. `value` gives the figure and an optional suffix for its note.
template <typename F>
std::optional<std::string> bytes_figure(const Grouped& g, const Palette& p, const std::string& title, const std::string& caption,
                                        F value) {
  BarChart c;
  c.title = title;
  c.desc = caption;
  c.unit = Unit::kBytes;
  c.axis_label = "bytes (median over repeats)";
  for (const auto& w : g.workloads()) {
    BarGroup grp{w, {}};
    bool any = false;
    for (const auto& b : g.backends()) {
      const SummaryRow* s = g.row(b, w);
      if (!s || s->n == 0) continue;
      auto [v, suffix] = value(*s);
      any = any || v >= 0;
      Bar bar{b, b, v < 0 ? NAN : static_cast<double>(v), 0, ""};
      if (v >= 0) bar.note = format_bytes(static_cast<double>(v)) + suffix;
      grp.bars.push_back(bar);
    }
    if (any) c.groups.push_back(std::move(grp));
  }
  if (c.groups.empty()) return std::nullopt;
  return figure(title, caption, bar_chart_svg(c, p));
}

std::vector<std::string> disk_figures(const Grouped& g, const Palette& p) {
  std::vector<std::string> out;
  bool truth = false;
  auto copyup = [&](const SummaryRow& s) {
    Sourced by = copyup_bytes(s), ev = copyup_events(s);
    truth = truth || by.ground_truth;
    std::string suffix = ev.value >= 0 ? fmt::format(" in {} copy-up{}", format_count(static_cast<double>(ev.value)), ev.value == 1 ? "" : "s") : "";
    return std::make_pair(by.value, suffix + (by.ground_truth ? " †" : ""));
  };
  if (auto f = bytes_figure(g, p, "Copy-up bytes per backend", "data copied into the writable layer on first write", copyup)) {
    if (truth) f->insert(f->rfind("</figure>"), "<p class=\"note\">† ground truth read from the writable layer (not traced).</p>\n");
    out.push_back(*f);
  }
  bool cow_truth = false;
  auto cow = [&](const SummaryRow& s) {
    Sourced by = cow_bytes(s), fresh = new_bytes(s);
    cow_truth = cow_truth || by.ground_truth;
    std::string suffix = fresh.value > 0 ? fmt::format(", {} new data", format_bytes(static_cast<double>(fresh.value))) : "";
    return std::make_pair(by.value, suffix + (by.ground_truth ? " †" : ""));
  };
  if (auto f = bytes_figure(g, p, "Block CoW bytes per backend",
                            "shared data of lower files rewritten (reflink, btrfs); new data beyond their inherited size in the "
                            "note",
                            cow)) {
    if (cow_truth) f->insert(f->rfind("</figure>"), "<p class=\"note\">† ground truth read with FIEMAP (not traced).</p>\n");
    out.push_back(*f);
  }
  auto upper = [](const SummaryRow& s) { return std::make_pair(s.median_upper_bytes, std::string()); };
  if (auto f = bytes_figure(g, p, "Writable-layer bytes per backend", "what one container's snapshot holds after the workload", upper))
    out.push_back(*f);
  return out;
}

// The latency distribution of the representative run: its CDF, or the four quantiles of
// files written before the CDF was recorded.
std::vector<std::pair<double, double>> cdf_points(const Quantiles& q) {
  std::vector<std::pair<double, double>> pts;
  for (auto [f, ns] : q.cdf) pts.emplace_back(static_cast<double>(ns), f);
  if (pts.empty())
    for (auto [f, ns] : {std::pair{0.5, q.p50}, {0.9, q.p90}, {0.99, q.p99}, {1.0, q.max}})
      if (ns >= 0) pts.emplace_back(static_cast<double>(ns), f);
  return pts;
}

std::vector<std::string> latency_figures(const Grouped& g, const Palette& p) {
  std::vector<std::string> out;
  for (const auto& w : g.workloads()) {
    LineChart c;
    c.title = fmt::format("{}: cumulative distribution of operation latency per backend", w);
    c.desc = "Lines, one per backend: the fraction of operations (y) that took at most the latency on the x axis (log scale).";
    c.x_unit = Unit::kNs;
    c.y_unit = Unit::kFraction;
    c.log_x = true;
    c.markers = false;
    c.x_label = "operation latency (log scale)";
    c.y_label = "fraction of operations";
    for (const auto& b : g.backends())
      if (const Run* r = g.representative(b, w); r && r->ops_count > 0) {
        auto pts = cdf_points(r->op_latency);
        if (!pts.empty()) c.series.push_back({b, pts});
      }
    if (!c.series.empty()) out.push_back(figure(w, "operation latency CDF (median run)", line_chart_svg(c, p)));
  }
  return out;
}

// image-family: disk and page cache of all K images against K, one line per backend.
std::vector<std::string> family_figures(const std::string& f, const Grouped& g, const Palette& p) {
  std::vector<std::string> out;
  std::vector<FamilyRow> rows = family_rows(f, g);
  for (auto [what, field] : {std::pair{"disk used by the images and their containers", &FamilyPoint::disk},
                             std::pair{"page cache after the reads", &FamilyPoint::cache}}) {
    LineChart c;
    c.title = fmt::format("{}: {} against the number of images", f, what);
    c.desc = "Lines, one per backend, with a marker per image count; a flat line is an image shared, a steep one copied.";
    c.x_unit = Unit::kCount;
    c.y_unit = Unit::kBytes;
    c.x_label = "images of the family (one container each)";
    c.y_label = what;
    std::set<int> ks;
    for (const auto& r : rows) {
      LineSeries s{r.backend, {}};
      for (const auto& pt : r.points)
        if (pt.*field >= 0) {
          s.points.emplace_back(pt.images, pt.*field);
          ks.insert(pt.images);
        }
      if (!s.points.empty()) c.series.push_back(std::move(s));
    }
    c.x_ticks.assign(ks.begin(), ks.end());
    if (!c.series.empty()) out.push_back(figure(fmt::format("{}: {}", f, what), "against the number of images", line_chart_svg(c, p)));
  }
  return out;
}

std::vector<std::string> scale_figures(const Grouped& g, const Palette& p) {
  std::vector<std::string> out;
  struct Panel {
    const char* what;
    int64_t SummaryRow::*field;
    Unit unit;
  };
  for (const auto& f : g.scale_families()) {
    if (is_image_family(f, g)) {
      for (auto& fig : family_figures(f, g, p)) out.push_back(std::move(fig));
      continue;
    }
    for (const Panel& panel : {Panel{"page-cache growth", &SummaryRow::median_page_cache_bytes, Unit::kBytes},
                               Panel{"disk used by the containers", &SummaryRow::median_upper_bytes, Unit::kBytes},
                               Panel{"wall time to run them all", &SummaryRow::median_wall_ns, Unit::kNs}}) {
      LineChart c;
      c.title = fmt::format("{}: {} against the number of containers", f, panel.what);
      c.desc = "Lines, one per backend, with a marker per container count.";
      c.x_unit = Unit::kCount;
      c.y_unit = panel.unit;
      c.x_label = "containers started together";
      c.y_label = panel.what;
      std::set<int> ns;
      for (const auto& b : g.backends()) {
        LineSeries s{b, {}};
        for (const auto& [n, w] : g.scale_points(f, b))
          if (const SummaryRow* row = g.row(b, w); row && row->*panel.field >= 0) {
            s.points.emplace_back(n, static_cast<double>(row->*panel.field));
            ns.insert(n);
          }
        if (!s.points.empty()) c.series.push_back(std::move(s));
      }
      c.x_ticks.assign(ns.begin(), ns.end());
      if (!c.series.empty()) out.push_back(figure(fmt::format("{}: {}", f, panel.what), "against the number of containers", line_chart_svg(c, p)));
    }
  }
  return out;
}

// The backend a benchmark instance runs on, when one of its name's components names one.
std::string backend_of(const GbenchRow& r, const std::vector<std::string>& backends) {
  size_t start = 0;
  while (start <= r.name.size()) {
    size_t end = r.name.find('/', start);
    std::string part = r.name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto colon = part.find(':');  // "backend:overlayfs" style arguments
    if (colon != std::string::npos) part = part.substr(colon + 1);
    for (const auto& b : backends)
      if (part == b) return b;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

std::string gbench_section(const std::vector<GbenchFile>& files, const std::vector<std::string>& backends, const Palette& p) {
  std::string body;
  for (const auto& f : files) {
    std::vector<std::string> figs;
    std::vector<std::string> families;
    for (const auto& r : f.rows)
      if (std::find(families.begin(), families.end(), r.family) == families.end()) families.push_back(r.family);
    for (const auto& fam : families) {
      BarChart c;
      c.title = fmt::format("{}: real time per iteration", fam);
      c.desc = "Horizontal bars, one per benchmark instance; skipped instances say why.";
      c.unit = Unit::kNs;
      c.axis_label = "real time per iteration";
      BarGroup grp;
      for (const auto& r : f.rows) {
        if (r.family != fam) continue;
        std::string label = r.instance.empty() ? r.name : r.instance;
        if (label.ends_with("/real_time")) label.resize(label.size() - std::string("/real_time").size());  // UseRealTime() says it
        Bar bar{label, backend_of(r, backends), r.error.empty() ? r.real_ns : NAN, 0, ""};
        if (!r.error.empty()) bar.note = "skipped: " + r.error;
        grp.bars.push_back(bar);
      }
      if (!any_measured(grp)) continue;  // every instance skipped: the table says why
      c.groups.push_back(grp);
      figs.push_back(figure(fam, "real time per iteration", bar_chart_svg(c, p)));
    }
    Table t = gbench_table(f);
    body += fmt::format("<h3>{}</h3>\n<p class=\"note\">{}</p>\n", esc(t.title), esc(t.caption)) + grid(figs) + html_table(t);
  }
  return section("microbenchmarks", "Microbenchmarks", "Google Benchmark programs over the same library (bench/).", body);
}

std::string legend_list(const std::vector<std::string>& backends, const Palette& p) {
  std::string out = "<ul class=\"legend\" aria-label=\"backend colours\">";
  for (const auto& b : backends)
    out += fmt::format("<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>", p.color(b), esc(b));
  return out + "</ul>\n";
}

}  // namespace

std::string render_html(const Results& r, const std::vector<GbenchFile>& gbench) {
  Grouped g(r);
  ReportModel m = build_model(r, g);
  Palette p(g.backends());
  std::string body;
  body += "<h1>cowbench report</h1>\n<ul class=\"facts\">";
  for (const auto& f : m.facts) body += "<li>" + esc(f) + "</li>";
  body += "</ul>\n" + legend_list(g.backends(), p);

  std::string findings = "<ul class=\"findings\">\n";
  for (const auto& f : m.findings) findings += "<li>" + esc(f) + "</li>\n";
  if (m.findings.empty()) findings += "<li>No run produced a result.</li>\n";
  body += section("findings", "Findings", "", findings + "</ul>\n");

  if (auto figs = wall_figures(g, p); !figs.empty())
    body += section("wall-time", "Wall time", "Median over the repeats; whiskers: 95 % confidence interval of the median.", grid(figs));
  if (auto figs = disk_figures(g, p); !figs.empty())
    body += section("copy-up", "Copy-up, block CoW and writable layer", "Medians over the repeats, per workload and backend.",
                    grid(figs));
  if (auto figs = latency_figures(g, p); !figs.empty())
    body += section("latency", "Operation latency",
                    "Cumulative distribution of per-operation latency in the run with the median wall time.", grid(figs));
  if (!g.scale_families().empty()) {  // scale-out and image-family
    std::string tables;
    for (const auto& t : m.scale_out) tables += "<h3>" + esc(t.title) + "</h3>\n<p class=\"note\">" + esc(t.caption) + "</p>\n" + html_table(t);
    body += section("scale-out", "Scale-out", "Page cache and disk as more containers of one image run together.",
                    grid(scale_figures(g, p)) + tables);
  }
  std::string tables;
  for (const auto& t : m.workloads) tables += "<h3>" + esc(t.title) + "</h3>\n" + html_table(t);
  body += section("tables", "Results by workload",
                  std::string("Medians over the repeats; “vs fastest” divides by the fastest backend's median. ") +
                      kCopyColumnsExplained,
                  tables);
  if (m.failures) body += section("failures", "Failed runs", "", html_table(*m.failures));
  if (!gbench.empty()) body += gbench_section(gbench, g.backends(), p);
  body += fmt::format("<details><summary>Configuration and host (JSON)</summary>\n<pre>{}</pre>\n<pre>{}</pre>\n</details>\n",
                      esc(r.config.dump(2)), esc(r.host.dump(2)));
  body += "<footer>Generated by cowbench from a results.json of schema cowbench/v1. Self-contained: no script, no network.</footer>\n";
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>cowbench report</title>\n"
      "<style>{}</style>\n</head>\n<body>\n<main>\n{}</main>\n</body>\n</html>\n",
      kStyle, body);
}

}  // namespace cowbench::rep
