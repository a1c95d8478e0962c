// An inode's identity (device, inode number) as a hash key: hard links seen once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

namespace cowbench {

struct InodeKey {
  dev_t dev;
  ino_t ino;
  bool operator==(const InodeKey&) const = default;
};
struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const noexcept { return std::hash<uint64_t>()(k.ino ^ (uint64_t{k.dev} << 40)); }
};

}  // namespace cowbench
