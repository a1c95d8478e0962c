// The statistics of the regression gate (see stats.h).
#include "reports/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cowbench::rep {
namespace {

// The continued fraction of the incomplete beta function, evaluated by the modified Lentz
// method: terms d(2m) = m(b-m)x / ((a+2m-1)(a+2m)), d(2m+1) = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1)).
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double f = d;
  for (int m = 1; m <= 500; ++m) {
    for (int odd = 0; odd < 2; ++odd) {
      double term = odd ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                        : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
      d = 1 + term * d;
      if (std::fabs(d) < kTiny) d = kTiny;
      c = 1 + term / c;
      if (std::fabs(c) < kTiny) c = kTiny;
      d = 1 / d;
      double step = c * d;
      f *= step;
      if (odd && std::fabs(step - 1) < kEps) return f;
    }
  }
  return f;
}

// I_x(a, b), the regularized incomplete beta function.
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  // The fraction converges fast below the mean; above it, use I_x(a, b) = 1 - I_(1-x)(b, a).
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

// The p in (0, 1) where the increasing `cdf` reaches `p`, by bisection over [lo, hi].
template <typename F>
double invert(F cdf, double p, double lo, double hi) {
  for (int i = 0; i < 200 && hi - lo > 1e-12 * std::max(1.0, std::fabs(lo)); ++i) {
    double mid = (lo + hi) / 2;
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

double digamma(double x) {
  double r = 0;
  for (; x < 6; x += 1) r -= 1 / x;
  double x2 = 1 / (x * x);
  return r + std::log(x) - 0.5 / x - x2 * (1.0 / 12 - x2 * (1.0 / 120 - x2 / 252));
}

double trigamma(double x) {
  double r = 0;
  for (; x < 6; x += 1) r += 1 / (x * x);
  double x2 = 1 / (x * x);
  return r + 1 / x + x2 / 2 + x2 / x * (1.0 / 6 - x2 * (1.0 / 30 - x2 * (1.0 / 42 - x2 / 30)));
}

// y > 0 with trigamma(y) = v (trigamma falls from +inf to 0): bisection on log y.
double inverse_trigamma(double v) {
  double lo = std::log(1e-8), hi = std::log(1e8);
  for (int i = 0; i < 200; ++i) {
    double mid = (lo + hi) / 2;
    (trigamma(std::exp(mid)) > v ? lo : hi) = mid;
  }
  return std::exp((lo + hi) / 2);
}

}  // namespace

VariancePrior fit_variance_prior(const std::vector<double>& vars, const std::vector<double>& dfs) {
  // e_i = log s²_i - digamma(df_i/2) + log(df_i/2) has mean log s0² - digamma(d0/2) + log(d0/2)
  // and variance trigamma(df_i/2) + trigamma(d0/2).
  std::vector<double> e, tri;
  for (size_t i = 0; i < vars.size() && i < dfs.size(); ++i) {
    if (dfs[i] <= 0 || vars[i] <= 0) continue;
    e.push_back(std::log(vars[i]) - digamma(dfs[i] / 2) + std::log(dfs[i] / 2));
    tri.push_back(trigamma(dfs[i] / 2));
  }
  if (e.size() < 3) return {};
  MeanVar m = mean_var(e);
  double excess = m.var - std::accumulate(tri.begin(), tri.end(), 0.0) / static_cast<double>(tri.size());
  constexpr double kInfinite = 1e6;
  double d0 = excess > 0 ? 2 * inverse_trigamma(excess) : kInfinite;
  d0 = std::min(d0, kInfinite);
  double log_s0 = m.mean + (d0 >= kInfinite ? 0 : digamma(d0 / 2) - std::log(d0 / 2));
  return {std::exp(log_s0), d0};
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double normal_quantile(double p) {
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  return invert(normal_cdf, p, -40, 40);
}

double student_t_cdf(double t, double df) {
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  if (df > 1e5) return normal_cdf(t);  // indistinguishable, and the fraction would converge slowly
  double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));  // P(T > |t|)
  return t > 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double df) {
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  return invert([df](double t) { return student_t_cdf(t, df); }, p, -1e6, 1e6);
}

std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> q(m);
  double running = 1;
  for (size_t k = m; k-- > 0;) {
    size_t i = order[k];
    running = std::min(running, p[i] * static_cast<double>(m) / static_cast<double>(k + 1));
    q[i] = std::min(1.0, running);
  }
  return q;
}

double excess_variance(const std::vector<double>& d, const std::vector<double>& se2) {
  size_t n = std::min(d.size(), se2.size());
  if (n < 3) return 0;
  constexpr double kChi2MedianDf1 = 0.45493642311957;
  // Around the rows' common shift: a shift of every row together is a change, not noise.
  std::vector<double> sorted(d.begin(), d.begin() + static_cast<long>(n));
  std::sort(sorted.begin(), sorted.end());
  double center = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::vector<double> dev;
  for (size_t i = 0; i < n; ++i) dev.push_back(d[i] - center);
  auto median_ratio = [&](double v) {
    std::vector<double> r;
    for (size_t i = 0; i < n; ++i) r.push_back(dev[i] * dev[i] / std::max(se2[i] + v, 1e-300));
    std::nth_element(r.begin(), r.begin() + static_cast<long>(n / 2), r.end());
    double hi = r[n / 2];
    if (n % 2) return hi;
    return (hi + *std::max_element(r.begin(), r.begin() + static_cast<long>(n / 2))) / 2;
  };
  if (median_ratio(0) <= kChi2MedianDf1) return 0;
  // The median ratio falls as v grows: bisection between 0 and a v that is surely enough.
  double lo = 0, hi = 1;
  for (size_t i = 0; i < n; ++i) hi = std::max(hi, dev[i] * dev[i] / kChi2MedianDf1);
  for (int i = 0; i < 200; ++i) {
    double mid = (lo + hi) / 2;
    (median_ratio(mid) > kChi2MedianDf1 ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

MeanVar mean_var(const std::vector<double>& v) {
  MeanVar m;
  m.n = static_cast<int>(v.size());
  if (v.empty()) return m;
  m.mean = std::accumulate(v.begin(), v.end(), 0.0) / m.n;
  if (m.n < 2) return m;
  double ss = 0;
  for (double x : v) ss += (x - m.mean) * (x - m.mean);
  m.var = ss / (m.n - 1);
  return m;
}

RowTest moderated_t(const MeanVar& a, const MeanVar& b, double prior_var, double prior_df) {
  RowTest r;
  r.diff = b.mean - a.mean;
  double own_df = std::max(0, a.n - 1) + std::max(0, b.n - 1);
  double own_ss = std::max(0, a.n - 1) * a.var + std::max(0, b.n - 1) * b.var;
  bool prior = prior_var > 0 && prior_df > 0;
  r.df = own_df + (prior ? prior_df : 0);
  if (r.df <= 0 || a.n < 1 || b.n < 1) return RowTest{r.diff, 0, 0, 0};
  double var = (own_ss + (prior ? prior_df * prior_var : 0)) / r.df;
  r.se = std::sqrt(var * (1.0 / a.n + 1.0 / b.n));
  r.t = r.se > 0 ? r.diff / r.se : 0;
  return r;
}

double min_detectable(double se, double df, double alpha, double power) {
  if (se <= 0 || df <= 0) return 0;
  return (student_t_quantile(1 - alpha / 2, df) + student_t_quantile(power, df)) * se;
}

}  // namespace cowbench::rep
