// Bencher Metric Format JSON (see bmf.h).
#include "reports/bmf.h"

#include <algorithm>

#include "reports/metrics.h"

namespace cowbench::rep {
namespace {

using nlohmann::json;

void put(json& bench, const char* measure, int64_t value) {
  if (value >= 0) bench[measure] = {{"value", value}};
}

}  // namespace

json to_bmf(const Results& r) {
  json out = json::object();
  for (const SummaryRow& s : summarize(r.runs)) {
    if (s.n == 0) continue;  // every run failed: nothing to track
    json bench = json::object();
    put(bench, kBmfWallTime, s.median_wall_ns);
    if (s.median_wall_ns >= 0 && s.ci95_ns >= 0) {
      bench[kBmfWallTime]["lower_value"] = std::max<int64_t>(0, s.median_wall_ns - s.ci95_ns);
      bench[kBmfWallTime]["upper_value"] = s.median_wall_ns + s.ci95_ns;
    }
    put(bench, kBmfCopyups, copyup_events(s).value);
    put(bench, kBmfCopyupBytes, copyup_bytes(s).value);
    put(bench, kBmfCowBytes, cow_bytes(s).value);
    put(bench, kBmfUpperBytes, s.median_upper_bytes);
    put(bench, kBmfPageCacheBytes, s.median_page_cache_bytes);
    if (!bench.empty()) out[s.backend + "/" + s.workload] = std::move(bench);
  }
  return out;
}

std::string render_bmf(const Results& r) { return to_bmf(r).dump(2) + "\n"; }

}  // namespace cowbench::rep
