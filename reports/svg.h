// Inline SVG charts drawn in C++ for the HTML report: horizontal bars with CI whiskers, line charts (linear or log x), legends.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "reports/units.h"

namespace cowbench::rep {

// Escapes text for XML/HTML content and attribute values (& < > " ').
std::string xml_escape(const std::string& s);

// A colour per series name (backend), the same in every chart of a report. The known
// backends keep fixed colours (Okabe–Ito, safe for colour-blind readers); other names get
// the remaining colours in the order given, then grey.
class Palette {
 public:
  explicit Palette(const std::vector<std::string>& names);
  std::string color(const std::string& name) const;

 private:
  std::map<std::string, std::string> colors_;
};

struct Bar {
  std::string label;   // shown left of the bar (usually the backend)
  std::string series;  // picks the colour
  double value = NAN;  // NaN: not measured (no bar, a note says so)
  double err = 0;      // whisker half-width; 0 draws none
  std::string note;    // text after the bar; "" = the value (± err) in the chart's unit
};
struct BarGroup {
  std::string label;  // a heading above the group's bars; "" for none
  std::vector<Bar> bars;
};
struct BarChart {
  std::string title;       // the SVG <title>: what a screen reader announces
  std::string desc;        // the SVG <desc>
  Unit unit = Unit::kNs;
  std::string axis_label;  // under the x axis
  std::vector<BarGroup> groups;
};
// Horizontal bars from 0, one row per bar, value axis at the bottom with nice ticks.
// Both chart functions return an <svg> element without xmlns, to be inlined in HTML (whose
// parser gives it the SVG namespace); it has role="img", an aria-label, <title> and <desc>.
std::string bar_chart_svg(const BarChart& c, const Palette& p);

struct LineSeries {
  std::string name;  // legend entry and colour
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in the given order
};
struct LineChart {
  std::string title, desc;
  Unit x_unit = Unit::kCount, y_unit = Unit::kBytes;
  bool log_x = false;           // decades; x values <= 0 are dropped
  std::vector<double> x_ticks;  // fixed x ticks (e.g. container counts); empty = automatic
  std::string x_label, y_label;
  std::vector<LineSeries> series;
  bool markers = true;  // a dot with a tooltip per point; off for dense lines such as CDFs
};
// Lines (each with a <title>) with point markers and a legend above the plot.
std::string line_chart_svg(const LineChart& c, const Palette& p);

}  // namespace cowbench::rep
