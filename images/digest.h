// SHA-256 digests in OCI form ("sha256:<64 hex>"): streaming hashing, validation, chain ids.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cowbench::img {

// A streaming SHA-256 (OpenSSL EVP). Move-only; the context is freed by the destructor.
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
  // "sha256:<hex>" of everything hashed; the object must not be updated afterwards.
  std::string digest();

 private:
  EVP_MD_CTX* ctx_ = nullptr;
  uint64_t size_ = 0;
};

// "sha256:<hex>" of `data`.
std::string sha256_digest(std::string_view data);

// True for "sha256:" followed by exactly 64 lower-case hex digits (the only algorithm read).
bool is_sha256_digest(std::string_view d) noexcept;

// The 64 hex digits of a valid sha256 digest. Throws kInvalidInput naming `what` (e.g.
// "layer 2 digest") when `d` is not one, and kUnsupported for another algorithm (sha512).
std::string digest_hex(std::string_view d, std::string_view what);

// OCI chain ids: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
// Returns one chain id per diff id, in order.
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);

}  // namespace cowbench::img
