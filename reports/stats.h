// The statistics of the regression gate: Student's t and normal distributions, moderated variances, the drift between runs, Benjamini–Hochberg, minimum detectable change.
#pragma once

#include <vector>

namespace cowbench::rep {

// Standard normal: P(Z <= z), and its inverse for 0 < p < 1.
double normal_cdf(double z);
double normal_quantile(double p);

// Student's t with `df` > 0 degrees of freedom: P(T <= t), from the regularized incomplete
// beta function; and its inverse for 0 < p < 1 (bisection on the CDF).
double student_t_cdf(double t, double df);
double student_t_quantile(double p, double df);

// Benjamini–Hochberg adjusted p-values (q-values), in the order of `p`: reject every
// hypothesis with q <= alpha to keep the expected share of false discoveries at alpha (and,
// when nothing changed at all, the chance of any false alarm at alpha).
std::vector<double> benjamini_hochberg(const std::vector<double>& p);

// Variance between two runs that the repeats do not show (host drift from one run to the
// next), from many rows of which most did not change: the v >= 0 for which the median of
// (d_i - m)² / (se_i² + v) is that of a χ² with 1 df (0.4549), m the median of the d_i —
// genomic control (Devlin & Roeder, 1999) made additive, so that a row's own noise and the
// drift between runs add up instead of every row being widened by one factor, and taken
// around the rows' common shift, so that every row moving together (a regression of
// everything) is not mistaken for noise. 0 when the rows already fit their own errors, or with
// fewer than 3 rows.
double excess_variance(const std::vector<double>& d, const std::vector<double>& se2);

// The mean and the sample variance (n - 1) of `v`; variance 0 for fewer than two values.
struct MeanVar {
  double mean = 0, var = 0;
  int n = 0;
};
MeanVar mean_var(const std::vector<double>& v);

// The prior of a family of sample variances (limma's fitFDist, Smyth 2004): taking s²_i with
// df_i degrees of freedom as scaled χ² around a variance that itself varies between rows, the
// prior variance s0² and its degrees of freedom d0 that fit the rows' log-variances by moments.
// d0 is large when the rows share one noise level (then a row's own 4 df count for little),
// small when they differ; infinite (returned as 1e6) when they vary no more than χ² explains.
// Fewer than 3 rows with df > 0 and a positive variance: {0, 0} (no prior).
struct VariancePrior {
  double var = 0, df = 0;
};
VariancePrior fit_variance_prior(const std::vector<double>& vars, const std::vector<double>& dfs);

// A two-sample comparison of means on one row, its variance moderated towards a prior shared
// by the rows of a metric (the empirical-Bayes step of limma, Smyth 2004): with 3 repeats a
// row's own variance has 4 degrees of freedom and is often far too small by chance; pooled with
// `prior_df` degrees of freedom of the shared variance it is not.
struct RowTest {
  double diff = 0;  // mean(b) - mean(a)
  double se = 0;    // standard error of diff
  double df = 0;    // degrees of freedom of se
  double t = 0;     // diff / se
};
// `prior_var` <= 0 or `prior_df` <= 0: no prior (then both samples need two values or more;
// otherwise se is 0 and df 0).
RowTest moderated_t(const MeanVar& a, const MeanVar& b, double prior_var, double prior_df);

// The smallest true difference (on the scale of the test) a two-sided test at level `alpha`
// detects with probability `power`, for standard error `se` with `df` degrees of freedom.
double min_detectable(double se, double df, double alpha, double power);

}  // namespace cowbench::rep
