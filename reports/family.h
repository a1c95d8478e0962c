// Sharing across images (the image-family workload) for the reports: per backend and image count, the disk and page cache of all K images, the growth per added image, what was expected to be shared and what was.
#pragma once

#include <string>
#include <vector>

#include "reports/report_model.h"

namespace cowbench::rep {

struct FamilyPoint {
  int images = 0;
  double disk = -1, image = -1, cache = -1, read = -1;  // medians over the repeats, bytes; < 0 unknown
};

struct FamilyRow {
  std::string backend;
  std::string disk_sharing, cache_sharing;  // expected (the backend's capabilities)
  std::vector<FamilyPoint> points;          // ascending by images
  // (value at the largest K − value at the smallest K) / (Kmax − Kmin); < 0 unknown.
  double disk_per_image = -1, cache_per_image = -1, read_per_image = -1;
  // 1 − cache growth per added image / read per image, in [0, 1]: the part of an added
  // image's reads already in the page cache; < 0 unknown.
  double cache_shared = -1;
};

// True when the runs of scale family `family` are image-family points (extra.images).
bool is_image_family(const std::string& family, const Grouped& g);
// One row per backend that ran `family`, in the document's backend order.
std::vector<FamilyRow> family_rows(const std::string& family, const Grouped& g);
// The report table: expected and measured sharing side by side.
Table family_table(const std::string& family, const std::vector<FamilyRow>& rows);
// One sentence per backend, backends ranked by page-cache growth per added image.
std::vector<std::string> family_findings(const std::string& family, const std::vector<FamilyRow>& rows);

}  // namespace cowbench::rep
