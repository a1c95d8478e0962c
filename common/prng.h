// A small deterministic PRNG (splitmix64): the same seed gives the same sequence on every platform.
#pragma once

#include <cstdint>
#include <string>

namespace cowbench {

class Prng {
 public:
  explicit Prng(uint64_t seed) noexcept : state_(seed) {}
  uint64_t next() noexcept {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (n > 0); the slight modulo bias is irrelevant here.
  uint64_t below(uint64_t n) noexcept { return next() % n; }
  // n pseudo-random printable bytes.
  std::string text(size_t n) {
    std::string s(n, ' ');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + below(26));
    return s;
  }

 private:
  uint64_t state_;
};

}  // namespace cowbench
