// Sharing across images for the reports (see family.h).
#include "reports/family.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "reports/metrics.h"
#include "reports/units.h"

namespace cowbench::rep {
namespace {

double median_extra(const std::vector<const Run*>& runs, const char* key) {
  std::vector<double> v;
  for (const Run* r : runs)
    if (auto it = r->extra.find(key); it != r->extra.end() && it->is_number() && it->get<double>() >= 0) v.push_back(it->get<double>());
  double m = median(v);
  return std::isnan(m) ? -1 : m;
}

double median_cache(const std::vector<const Run*>& runs) {
  std::vector<double> v;
  for (const Run* r : runs)
    if (r->page_cache_bytes >= 0) v.push_back(static_cast<double>(r->page_cache_bytes));
  double m = median(v);
  return std::isnan(m) ? -1 : m;
}

std::string sharing_of(const std::vector<const Run*>& runs, const char* key) {
  for (const Run* r : runs)
    if (auto s = r->extra.find("sharing"); s != r->extra.end() && s->is_object() && s->contains(key) && (*s)[key].is_string())
      return (*s)[key].get<std::string>();
  return "?";
}

double growth(const std::vector<FamilyPoint>& p, double FamilyPoint::*field) {
  if (p.size() < 2 || p.front().*field < 0 || p.back().*field < 0 || p.back().images == p.front().images) return -1;
  return std::max(0.0, (p.back().*field - p.front().*field) / (p.back().images - p.front().images));
}

std::string bytes(double v) { return v < 0 ? "—" : format_bytes(v); }

}  // namespace

bool is_image_family(const std::string& family, const Grouped& g) {
  for (const auto& b : g.backends())
    for (const auto& [n, w] : g.scale_points(family, b))
      for (const Run* r : g.ok_runs(b, w))
        if (r->extra.contains("images")) return true;
  return false;
}

std::vector<FamilyRow> family_rows(const std::string& family, const Grouped& g) {
  std::vector<FamilyRow> out;
  for (const auto& b : g.backends()) {
    FamilyRow row;
    row.backend = b;
    for (const auto& [n, w] : g.scale_points(family, b)) {
      auto runs = g.ok_runs(b, w);
      if (runs.empty()) continue;
      row.disk_sharing = sharing_of(runs, "disk");
      row.cache_sharing = sharing_of(runs, "page_cache");
      row.points.push_back({n, median_extra(runs, "disk_bytes"), median_extra(runs, "image_bytes"), median_cache(runs),
                            median_extra(runs, "read_bytes")});
    }
    if (row.points.empty()) continue;
    row.disk_per_image = growth(row.points, &FamilyPoint::disk);
    row.cache_per_image = growth(row.points, &FamilyPoint::cache);
    row.read_per_image = growth(row.points, &FamilyPoint::read);
    if (row.cache_per_image >= 0 && row.read_per_image > 0)
      row.cache_shared = std::clamp(1 - row.cache_per_image / row.read_per_image, 0.0, 1.0);
    out.push_back(std::move(row));
  }
  return out;
}

Table family_table(const std::string& family, const std::vector<FamilyRow>& rows) {
  Table t;
  t.title = family;
  t.caption =
      "K images of one family (shared base, two runtimes, vendored duplicates), one container each reading its startup "
      "set; disk = the K images' layers + their containers, page cache grown from a dropped cache. Expected sharing "
      "next to the measured growth per added image.";
  t.header = {"backend", "shares (disk / cache)", "K", "disk", "page cache", "read", "disk per added image",
              "cache per added image", "of an added image's reads already cached"};
  t.numeric = {false, false, true, true, true, true, true, true, true};
  for (const auto& r : rows) {
    const FamilyPoint& lo = r.points.front();
    const FamilyPoint& hi = r.points.back();
    std::string ks = lo.images == hi.images ? std::to_string(lo.images) : fmt::format("{} → {}", lo.images, hi.images);
    auto span = [&](double FamilyPoint::*f) {
      return lo.images == hi.images ? bytes(lo.*f) : fmt::format("{} → {}", bytes(lo.*f), bytes(hi.*f));
    };
    t.rows.push_back({r.backend, r.disk_sharing + " / " + r.cache_sharing, ks, span(&FamilyPoint::disk),
                      span(&FamilyPoint::cache), span(&FamilyPoint::read), bytes(r.disk_per_image), bytes(r.cache_per_image),
                      r.cache_shared < 0 ? "—" : fmt::format("{:.0f} %", r.cache_shared * 100)});
  }
  return t;
}

std::vector<std::string> family_findings(const std::string& family, const std::vector<FamilyRow>& rows) {
  std::vector<const FamilyRow*> ranked;
  for (const auto& r : rows)
    if (r.cache_per_image >= 0 && r.disk_per_image >= 0) ranked.push_back(&r);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const FamilyRow* a, const FamilyRow* b) { return a->cache_per_image < b->cache_per_image; });
  std::vector<std::string> out;
  for (const FamilyRow* r : ranked)
    out.push_back(fmt::format("{}: each added image of the family cost {} of page cache against {} it read ({:.0f} % "
                              "already cached; expected to share: {}) and {} on disk (expected: {}).",
                              family + " " + r->backend, bytes(r->cache_per_image), bytes(r->read_per_image),
                              r->cache_shared * 100, r->cache_sharing, bytes(r->disk_per_image), r->disk_sharing));
  return out;
}

}  // namespace cowbench::rep
