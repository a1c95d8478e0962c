// Incremental sha256 (see digest.h).
#include "workloads/digest.h"

#include <openssl/evp.h>

#include "common/error.h"

namespace cowbench::wl {

Digest::Digest() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) fail(Errc::kFailure, "sha256 init failed");
}
Digest::~Digest() { EVP_MD_CTX_free(ctx_); }
void Digest::add(std::string_view b) { EVP_DigestUpdate(ctx_, b.data(), b.size()); }
std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace cowbench::wl
