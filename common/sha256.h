// A streaming SHA-256 (OpenSSL EVP): image digests, chain ids and workload digests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace cowbench {

// Move-only; the context is freed by the destructor.
class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  Sha256(Sha256&& o) noexcept;
  Sha256& operator=(Sha256&& o) noexcept;
  ~Sha256();

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Bytes hashed so far.
  uint64_t size() const noexcept { return size_; }
  // The 64 hex digits of everything hashed; the object must not be updated afterwards.
  std::string hex();
  // "sha256:<hex>" (the OCI form); the object must not be updated afterwards.
  std::string digest() { return "sha256:" + hex(); }

 private:
  evp_md_ctx_st* ctx_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace cowbench
