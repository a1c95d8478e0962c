// SHA-256 digests in OCI form ("sha256:<64 hex>"): streaming hashing, validation, chain ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"

namespace cowbench::img {

using cowbench::Sha256;  // streaming, common/sha256.h

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
