// SHA-256 digests and chain ids (see digest.h).
#include "images/digest.h"

#include "common/error.h"

namespace cowbench::img {

std::string sha256_digest(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.digest();
}

bool is_sha256_digest(std::string_view d) noexcept {
  constexpr std::string_view kPrefix = "sha256:";
  if (d.size() != kPrefix.size() + 64 || d.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : d.substr(kPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string digest_hex(std::string_view d, std::string_view what) {
  if (is_sha256_digest(d)) return std::string(d.substr(7));
  auto colon = d.find(':');
  if (colon != std::string_view::npos && colon > 0 && d.substr(0, colon) != "sha256")
    fail(Errc::kUnsupported, "{}: digest algorithm '{}' is not supported (only sha256)", what, d.substr(0, colon));
  fail(Errc::kInvalidInput, "{}: '{}' is not a sha256 digest", what, d);
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  out.reserve(diff_ids.size());
  for (const auto& d : diff_ids) out.push_back(out.empty() ? d : sha256_digest(out.back() + " " + d));
  return out;
}

}  // namespace cowbench::img
