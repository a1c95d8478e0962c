// Human-readable numbers for reports (see units.h).
#include "reports/units.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <limits>

namespace cowbench::rep {
namespace {

struct Prefix {
  const char* suffix;
  double divisor;
};
constexpr std::array<Prefix, 4> kTime{{{"ns", 1}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}}};
constexpr std::array<Prefix, 5> kSize{{{"B", 1}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}}};

// "12.3", "1.5", "812": three significant digits (at least the integer part), no trailing zeros.
std::string sig3(double v) {
  double a = std::fabs(v);
  int decimals = a < 10 ? 2 : a < 100 ? 1 : 0;
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

// The largest prefix whose divisor is at most |v| (the first one for |v| < 1).
template <size_t N>
const Prefix& pick(const std::array<Prefix, N>& table, double v) {
  const Prefix* best = &table[0];
  for (const auto& p : table)
    if (std::fabs(v) >= p.divisor * 0.9995) best = &p;  // 999.6 µs prints as "1 ms", not "1000 µs"
  return *best;
}

template <size_t N>
std::string with_prefix(const std::array<Prefix, N>& table, double v) {
  if (!std::isfinite(v)) return "—";
  const Prefix& p = pick(table, v);
  return sig3(v / p.divisor) + " " + p.suffix;
}

// 1234567 → "1,234,567".
std::string grouped(double v) {
  long long n = std::llround(v);
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// How an axis in `unit` reaching `max` is scaled for its labels.
Prefix axis_prefix(Unit unit, double max) {
  switch (unit) {
    case Unit::kNs: return pick(kTime, max);
    case Unit::kBytes: return pick(kSize, max);
    case Unit::kFraction: return {"%", 0.01};
    case Unit::kCount:
    case Unit::kPerSecond: break;
  }
  return {"", 1};
}

}  // namespace

std::string format_ns(double ns) { return with_prefix(kTime, ns); }
std::string format_bytes(double bytes) { return with_prefix(kSize, bytes); }

std::string format_count(double n) {
  if (!std::isfinite(n)) return "—";
  if (std::fabs(n) < 1000 && n != std::floor(n)) return sig3(n);
  return grouped(n);
}

std::string format_value(Unit unit, double v) {
  if (!std::isfinite(v)) return "—";
  switch (unit) {
    case Unit::kNs: return format_ns(v);
    case Unit::kBytes: return format_bytes(v);
    case Unit::kCount: return format_count(v);
    case Unit::kFraction: return sig3(v * 100) + " %";
    case Unit::kPerSecond: return format_count(v) + "/s";
  }
  return sig3(v);
}

std::string format_change(double relative) {
  if (std::isnan(relative)) return "—";
  if (std::isinf(relative)) return relative > 0 ? "+∞" : "-∞";
  double pct = relative * 100;
  std::string s = std::fabs(pct) >= 1000 ? grouped(pct) : fmt::format("{:.1f}", pct);
  if (s == "-0.0") s = "0.0";
  return (pct > 0 && s != "0.0" ? "+" : "") + s + " %";
}

std::string format_ratio(double ratio) {
  if (!std::isfinite(ratio)) return "—";
  int decimals = ratio < 10 ? 2 : ratio < 100 ? 1 : 0;
  return (ratio >= 1000 ? grouped(ratio) : fmt::format("{:.{}f}", ratio, decimals)) + "×";
}

Ticks linear_ticks(Unit unit, double max, int target) {
  if (!(max > 0) || !std::isfinite(max)) max = 1;
  Prefix p = axis_prefix(unit, max);
  double scaled = max / p.divisor;
  double raw_step = scaled / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = 10 * mag;
  for (double nice : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (nice * mag >= raw_step * (1 - 1e-9)) {
      step = nice * mag;
      break;
    }
  }
  if ((unit == Unit::kCount || unit == Unit::kPerSecond) && step < 1) step = 1;
  int n = static_cast<int>(std::ceil(scaled / step - 1e-9));
  Ticks t;
  for (int i = 0; i <= std::max(1, n); ++i) {
    double v = i * step;
    t.values.push_back(v * p.divisor);
    if (i == 0) {
      t.labels.push_back("0");
    } else if (unit == Unit::kCount || unit == Unit::kPerSecond) {
      t.labels.push_back(format_value(unit, v));
    } else {
      t.labels.push_back(sig3(v) + " " + p.suffix);
    }
  }
  return t;
}

Ticks log_ticks(Unit unit, double lo, double hi) {
  if (!(lo > 0) || !std::isfinite(lo)) lo = 1;
  if (!(hi > lo) || !std::isfinite(hi)) hi = lo * 10;
  int a = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int b = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (b <= a) b = a + 1;
  Ticks t;
  for (int k = a; k <= b; ++k) {
    double v = std::pow(10.0, k);
    t.values.push_back(v);
    t.labels.push_back(format_value(unit, v));
  }
  return t;
}

}  // namespace cowbench::rep
