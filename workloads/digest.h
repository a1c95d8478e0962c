// Incremental sha256 (OpenSSL EVP) for workload digests.
#pragma once

#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace cowbench::wl {

class Digest {
 public:
  Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  ~Digest();
  void add(std::string_view bytes);
  // Hex of the sha256 of everything added; the object must not be used afterwards.
  std::string hex();

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace cowbench::wl
