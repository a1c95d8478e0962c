// SHA-256 digests and chain ids (see digest.h).
#include "images/digest.h"

#include <utility>

#include "common/error.h"

namespace cowbench::img {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) fail(Errc::kFailure, "OpenSSL: cannot start a SHA-256");
}

Sha256::Sha256(Sha256&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)), size_(o.size_) {}

Sha256& Sha256::operator=(Sha256&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = std::exchange(o.ctx_, nullptr);
    size_ = o.size_;
  }
  return *this;
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(const void* data, size_t n) {
  if (n == 0) return;
  if (EVP_DigestUpdate(ctx_, data, n) != 1) fail(Errc::kFailure, "OpenSSL: SHA-256 update failed");
  size_ += n;
}

std::string Sha256::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &len) != 1) fail(Errc::kFailure, "OpenSSL: SHA-256 final failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  out.reserve(7 + 2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

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
