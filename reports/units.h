// Human-readable numbers for reports: durations, sizes, counts, ratios, and chart axis ticks.
#pragma once

#include <string>
#include <vector>

namespace cowbench::rep {

// What a number measures; decides how it is printed and how an axis is scaled.
enum class Unit {
  kNs,        // a duration in nanoseconds: "812 ns", "12.3 µs", "4.56 ms", "1.23 s"
  kBytes,     // a size in bytes, binary prefixes: "512 B", "64 KiB", "1.5 GiB"
  kCount,     // a plain count: "1,234"
  kFraction,  // 0..1 shown as a percentage: "25 %"
  kPerSecond  // a rate: "1,234/s"
};

// Three significant digits, trailing zeros dropped; the unit prefix is the largest that keeps
// the number at or above 1. Negative values keep their sign. Non-finite values print as "—".
std::string format_ns(double ns);
std::string format_bytes(double bytes);
std::string format_count(double n);
std::string format_value(Unit unit, double v);
// A change relative to a base, signed: "+20.3 %", "-4.1 %"; "+∞" / "-∞" when the base is 0.
std::string format_change(double relative);
// "5.21×" (two decimals below 10, one below 100, none above).
std::string format_ratio(double ratio);

// The ticks of a linear axis from 0 to at least `max`: 1-2-2.5-5 steps in the unit that
// `max` is printed in (bytes step in KiB/MiB/GiB, not in powers of ten of bytes), about
// `target` of them. `labels` print each tick with its unit. max <= 0 gives the axis 0..1.
struct Ticks {
  std::vector<double> values;  // ascending, first 0, last >= max
  std::vector<std::string> labels;
};
Ticks linear_ticks(Unit unit, double max, int target = 5);
// Decade ticks of a log axis covering [lo, hi] (lo > 0): 1, 10, 100, ... in raw units.
Ticks log_ticks(Unit unit, double lo, double hi);

}  // namespace cowbench::rep
