// Inline SVG charts for the HTML report (see svg.h).
#include "reports/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace cowbench::rep {
namespace {

constexpr double kWidth = 560;       // every chart's viewBox width; the page scales it
constexpr double kCharWidth = 7.0;   // average advance of a 12 px sans-serif glyph (DejaVu Sans is wide)
constexpr const char* kInk = "#222";
constexpr const char* kMuted = "#666";
constexpr const char* kGrid = "#e3e3e3";

// A coordinate; never NaN or inf in an attribute.
std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.1f}", v) : "0"; }

double text_width(const std::string& s) {
  size_t glyphs = 0;
  for (unsigned char c : s) glyphs += (c & 0xC0) != 0x80;  // count UTF-8 lead bytes only
  return static_cast<double>(glyphs) * kCharWidth;
}

// Appends SVG elements to one <svg> document.
class Svg {
 public:
  Svg(double w, double h, const std::string& title, const std::string& desc) {
    out_ = fmt::format(
        "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" "
        "aria-label=\"{}\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif\" "
        "font-size=\"12\">\n<title>{}</title>\n<desc>{}</desc>\n",
        num(w), num(h), num(w), num(h), xml_escape(title), xml_escape(title), xml_escape(desc));
  }
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& tip) {
    out_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" rx=\"2\"><title>{}</title></rect>\n",
                        num(x), num(y), num(std::max(0.0, w)), num(h), fill, xml_escape(tip));
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1) {
    out_ += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>\n", num(x1), num(y1),
                        num(x2), num(y2), stroke, num(width));
  }
  // anchor: start | middle | end; extra: further attributes, e.g. font-weight.
  void text(double x, double y, const std::string& s, const char* anchor = "start", const std::string& fill = kInk,
            const std::string& extra = "") {
    out_ += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" fill=\"{}\"{}>{}</text>\n", num(x), num(y), anchor, fill,
                        extra.empty() ? "" : " " + extra, xml_escape(s));
  }
  void path(const std::string& d, const std::string& stroke, const std::string& tip) {
    out_ += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"><title>{}</title></path>\n",
                        d, stroke, xml_escape(tip));
  }
  void circle(double cx, double cy, const std::string& fill, const std::string& tip) {
    out_ += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\"><title>{}</title></circle>\n",
                        num(cx), num(cy), fill, xml_escape(tip));
  }
  std::string finish() { return out_ + "</svg>\n"; }

 private:
  std::string out_;
};

std::string default_note(const Bar& b, Unit u) {
  if (!std::isfinite(b.value)) return "not measured";
  return format_value(u, b.value) + (b.err > 0 ? " ± " + format_value(u, b.err) : "");
}

// A legend of colour swatches and names, wrapped to the width; returns the height it takes.
// With svg null it only measures.
double legend(Svg* svg, const std::vector<std::string>& names, const Palette& p, double x0, double y0, double width) {
  double x = x0, y = y0;
  for (const auto& n : names) {
    double w = 18 + text_width(n) + 14;
    if (x + w > x0 + width && x > x0) x = x0, y += 18;
    if (svg) {
      svg->rect(x, y - 9, 12, 12, p.color(n), n);
      svg->text(x + 16, y + 1, n);
    }
    x += w;
  }
  return y - y0 + 18;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Palette::Palette(const std::vector<std::string>& names) {
  static const std::map<std::string, std::string> known{{"overlayfs", "#0072B2"}, {"reflink", "#E69F00"},
                                                        {"btrfs", "#009E73"},     {"fuse-overlayfs", "#CC79A7"},
                                                        {"copy", "#D55E00"},      {"unionfs-fuse", "#882255"}};
  static const std::array<const char*, 6> spare{"#56B4E9", "#8C6D31", "#7F3C8D", "#3B8686", "#B8860B", "#444444"};
  size_t next = 0;
  for (const auto& n : names) {
    if (colors_.count(n)) continue;
    auto k = known.find(n);
    colors_[n] = k != known.end() ? k->second : next < spare.size() ? spare[next++] : "#999999";
  }
}

std::string Palette::color(const std::string& name) const {
  auto it = colors_.find(name);
  return it == colors_.end() ? "#999999" : it->second;
}

std::string bar_chart_svg(const BarChart& c, const Palette& p) {
  constexpr double kRow = 22, kBar = 14, kHead = 22, kTop = 8, kAxis = 44;
  double label_w = 0, note_w = 0, max = 0, height = kTop;
  for (const auto& g : c.groups) {
    height += (g.label.empty() ? 0 : kHead) + kRow * static_cast<double>(g.bars.size());
    for (const auto& b : g.bars) {
      label_w = std::max(label_w, text_width(b.label));
      note_w = std::max(note_w, text_width(b.note.empty() ? default_note(b, c.unit) : b.note));
      if (std::isfinite(b.value)) max = std::max(max, b.value + std::max(0.0, b.err));
    }
  }
  label_w = std::min(label_w, 170.0) + 16;
  note_w = std::clamp(note_w + 10, 60.0, 190.0);
  double x0 = label_w, x1 = kWidth - note_w;
  Ticks ticks = linear_ticks(c.unit, max, x1 - x0 < 260 ? 3 : 5);
  double domain = ticks.values.back();
  auto X = [&](double v) { return x0 + (x1 - x0) * std::clamp(v / domain, 0.0, 1.0); };
  double plot_bottom = height;
  Svg svg(kWidth, height + kAxis, c.title, c.desc);
  // Grid and tick labels first, so that bars are drawn over the grid.
  for (size_t i = 0; i < ticks.values.size(); ++i) {
    double x = X(ticks.values[i]);
    svg.line(x, kTop, x, plot_bottom, i == 0 ? "#999" : kGrid);
    svg.text(x, plot_bottom + 16, ticks.labels[i], "middle", kMuted);
  }
  if (!c.axis_label.empty()) svg.text((x0 + x1) / 2, plot_bottom + 36, c.axis_label, "middle", kMuted);
  double y = kTop;
  for (const auto& g : c.groups) {
    if (!g.label.empty()) {
      svg.text(4, y + 15, g.label, "start", kInk, "font-weight=\"600\"");
      y += kHead;
    }
    for (const auto& b : g.bars) {
      double mid = y + kRow / 2;
      svg.text(x0 - 8, mid + 4, b.label, "end");
      std::string note = b.note.empty() ? default_note(b, c.unit) : b.note;
      double end = x0;
      if (std::isfinite(b.value)) {
        svg.rect(x0, mid - kBar / 2, X(b.value) - x0, kBar, p.color(b.series), fmt::format("{}: {}", b.label, note));
        end = X(b.value);
        if (b.err > 0) {
          double lo = X(std::max(0.0, b.value - b.err)), hi = X(b.value + b.err);
          svg.line(lo, mid, hi, mid, kInk, 1.5);
          svg.line(lo, mid - 5, lo, mid + 5, kInk, 1.5);
          svg.line(hi, mid - 5, hi, mid + 5, kInk, 1.5);
          end = hi;
        }
      }
      svg.text(end + 6, mid + 4, note, "start", std::isfinite(b.value) ? kInk : kMuted,
               std::isfinite(b.value) ? "" : "font-style=\"italic\"");
      y += kRow;
    }
  }
  return svg.finish();
}

std::string line_chart_svg(const LineChart& c, const Palette& p) {
  constexpr double kHeight = 300, kLeft = 70, kRight = 30, kBottom = 48;
  std::vector<std::string> names;
  double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
  for (const auto& s : c.series) {
    names.push_back(s.name);
    for (auto [x, y] : s.points) {
      if (c.log_x && x <= 0) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymax = std::max(ymax, y);
    }
  }
  if (!std::isfinite(xmin)) xmin = c.log_x ? 1 : 0, xmax = xmin + 1;
  double top = 14 + legend(nullptr, names, p, kLeft, 14, kWidth - kLeft - kRight);
  double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = top;
  Svg svg(kWidth, kHeight, c.title, c.desc);
  legend(&svg, names, p, kLeft, 14, kWidth - kLeft - kRight);

  Ticks yt = linear_ticks(c.y_unit, ymax, 5);
  double ydom = yt.values.back();
  auto Y = [&](double v) { return y0 - (y0 - y1) * std::clamp(v / ydom, 0.0, 1.0); };
  Ticks xt;
  if (c.log_x) {
    xt = log_ticks(c.x_unit, xmin, xmax);
  } else if (!c.x_ticks.empty()) {
    for (double v : c.x_ticks) xt.values.push_back(v), xt.labels.push_back(format_value(c.x_unit, v));
  } else {
    xt = linear_ticks(c.x_unit, xmax, 6);
  }
  double lo = c.log_x ? std::log10(xt.values.front()) : (c.x_ticks.empty() ? 0 : std::min(xmin, xt.values.front()));
  double hi = c.log_x ? std::log10(xt.values.back()) : std::max(xmax, xt.values.back());
  if (hi <= lo) hi = lo + 1;
  auto X = [&](double v) {
    double t = c.log_x ? std::log10(std::max(v, 1e-300)) : v;
    return x0 + (x1 - x0) * std::clamp((t - lo) / (hi - lo), 0.0, 1.0);
  };
  for (size_t i = 0; i < yt.values.size(); ++i) {
    double y = Y(yt.values[i]);
    svg.line(x0, y, x1, y, i == 0 ? "#999" : kGrid);
    svg.text(x0 - 6, y + 4, yt.labels[i], "end", kMuted);
  }
  for (size_t i = 0; i < xt.values.size(); ++i) {
    double x = X(xt.values[i]);
    svg.line(x, y1, x, y0, i == 0 ? "#999" : kGrid);
    svg.text(x, y0 + 16, xt.labels[i], "middle", kMuted);
  }
  if (!c.x_label.empty()) svg.text((x0 + x1) / 2, kHeight - 10, c.x_label, "middle", kMuted);
  if (!c.y_label.empty())
    svg.text(14, (y0 + y1) / 2, c.y_label, "middle", kMuted, fmt::format("transform=\"rotate(-90 14 {})\"", num((y0 + y1) / 2)));
  for (const auto& s : c.series) {
    std::string d;
    std::string color = p.color(s.name);
    for (auto [x, y] : s.points) {
      if (c.log_x && x <= 0) continue;
      d += fmt::format("{}{} {} ", d.empty() ? "M" : "L", num(X(x)), num(Y(y)));
    }
    if (d.empty()) continue;
    d.pop_back();
    svg.path(d, color, s.name);
    if (!c.markers) continue;
    for (auto [x, y] : s.points)
      if (!c.log_x || x > 0)
        svg.circle(X(x), Y(y), color, fmt::format("{}: {} at {}", s.name, format_value(c.y_unit, y), format_value(c.x_unit, x)));
  }
  return svg.finish();
}

}  // namespace cowbench::rep
