// JSON of image metadata (see image_json.h).
#include "images/image_json.h"

#include "images/digest.h"

namespace cowbench::img {

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(Errc::kInvalidInput, "{} is not valid JSON: {}", what, e.what());
  }
}

void verify_content(const std::string& data, const Descriptor& d, const std::string& what) {
  if (d.size >= 0 && data.size() != static_cast<uint64_t>(d.size))
    fail(Errc::kInvalidInput, "{}: size mismatch: its descriptor says {} bytes, the blob has {}", what, d.size, data.size());
  std::string got = sha256_digest(data);
  if (!d.digest.empty() && got != d.digest)
    fail(Errc::kInvalidInput, "{}: digest mismatch: expected {}, got {}", what, d.digest, got);
}

void set_diff_ids(Image& img, const std::string& what) {
  const auto& rootfs = img.config.contains("rootfs") ? img.config["rootfs"] : nlohmann::json();
  if (!rootfs.is_object() || !rootfs.contains("diff_ids") || !rootfs["diff_ids"].is_array())
    fail(Errc::kInvalidInput, "{}: the config has no rootfs.diff_ids", what);
  const auto& ids = rootfs["diff_ids"];
  if (ids.size() != img.layers.size())
    fail(Errc::kInvalidInput, "{}: the config lists {} diff_ids for {} layers", what, ids.size(), img.layers.size());
  std::vector<std::string> diff_ids;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i].is_string()) fail(Errc::kInvalidInput, "{}: diff_id {} is not a string", what, i + 1);
    diff_ids.push_back(ids[i].get<std::string>());
    digest_hex(diff_ids.back(), fmt::format("{}: diff_id {}", what, i + 1));
  }
  auto chains = chain_ids(diff_ids);
  for (size_t i = 0; i < img.layers.size(); ++i) {
    img.layers[i].diff_id = diff_ids[i];
    img.layers[i].chain_id = chains[i];
  }
  img.platform.os = img.config.value("os", "");
  img.platform.architecture = img.config.value("architecture", "");
  img.platform.variant = img.config.value("variant", "");
}

}  // namespace cowbench::img
