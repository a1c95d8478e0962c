// The disk an imported image's layers take (see layer_disk.h).
#include "runner/layer_disk.h"

#include <set>

#include "common/error.h"
#include "common/log.h"

namespace cowbench {

nlohmann::json layer_disk(snap::Snapshotter& sn, const std::vector<std::string>& tops) {
  int64_t bytes = 0, images = 0;
  bool any_image = false;
  std::set<std::string> seen;  // a layer shared by several chains counts once
  std::vector<std::string> layers;
  try {
    for (const auto& top : tops)
      for (std::string name = top; !name.empty() && seen.insert(name).second; name = sn.stat(name).parent) {
        layers.push_back(name);
        snap::Usage u = sn.usage(name);
        if (u.image_bytes >= 0) {
          any_image = true;
          images += u.image_bytes;
        }
      }
    bytes = sn.distinct_bytes(layers);
  } catch (const Error& e) {
    log::debug("{}: cannot measure the image's layers: {}", sn.backend(), e.what());
    return {{"layer_bytes", nullptr}, {"layer_image_bytes", nullptr}};
  }
  return {{"layer_bytes", bytes}, {"layer_image_bytes", any_image ? nlohmann::json(images) : nlohmann::json(nullptr)}};
}

nlohmann::json layer_disk(snap::Snapshotter& sn, const std::string& top) {
  return layer_disk(sn, std::vector<std::string>{top});
}

}  // namespace cowbench
