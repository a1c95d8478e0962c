// JSON of image metadata (manifests, indexes, configs): reading it with errors that name
// the document, checking content against descriptors, the layers' diff ids from a config.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/error.h"
#include "images/image.h"

namespace cowbench::img {

inline constexpr size_t kMaxJson = 16 << 20;  // manifests, indexes and configs are small

// j[key] as T; kInvalidInput naming `what` and the field when it is missing or of another type.
template <typename T>
T json_get(const nlohmann::json& j, const char* key, const std::string& what) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail(Errc::kInvalidInput, "{}: field '{}': {}", what, key, e.what());
  }
}

// Parses `text`; kInvalidInput naming `what` when it is not JSON.
nlohmann::json parse_json(const std::string& text, const std::string& what);

// Checks small content against its descriptor (size and digest); kInvalidInput naming `what`.
void verify_content(const std::string& data, const Descriptor& d, const std::string& what);

// Sets the layers' diff ids and chain ids and the platform from img.config (rootfs.diff_ids,
// one per layer); kInvalidInput naming `what` when they are missing or do not fit.
void set_diff_ids(Image& img, const std::string& what);

}  // namespace cowbench::img
