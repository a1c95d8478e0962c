// Shards of the run matrix (see shard.h).
#include "runner/shard.h"

#include <algorithm>
#include <charconv>

#include "common/error.h"

namespace cowbench {
namespace {

constexpr int kMaxShards = 1000;

// A whole decimal number, or -1.
int number(const std::string& s) {
  int v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty() ? v : -1;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos)
    fail(Errc::kInvalidInput, "--shard takes I/N (shard I of N, 0-based: 0/3, 1/3, 2/3), not '{}'", text);
  int i = number(text.substr(0, slash)), n = number(text.substr(slash + 1));
  if (i < 0 || n < 1)
    fail(Errc::kInvalidInput, "--shard takes I/N with whole numbers I >= 0 and N >= 1, not '{}'", text);
  if (n > kMaxShards) fail(Errc::kInvalidInput, "--shard {}: at most {} shards", text, kMaxShards);
  if (i >= n)
    fail(Errc::kInvalidInput, "--shard {}: the index is 0-based, so it must be below N ({}): 0/{} to {}/{}", text, n, n,
         n - 1, n);
  return {i, n};
}

std::vector<std::string> shard_workloads(const std::vector<std::string>& workloads, const Shard& s) {
  std::vector<std::string> sorted = workloads;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::string> mine;
  for (size_t k = static_cast<size_t>(s.index); k < sorted.size(); k += static_cast<size_t>(s.count)) mine.push_back(sorted[k]);
  if (mine.empty())
    fail(Errc::kInvalidInput, "--shard {}/{}: {} shards of {} workload{} leave shard {} with none; use at most {} shards",
         s.index, s.count, s.count, sorted.size(), sorted.size() == 1 ? "" : "s", s.index, sorted.size());
  // In the order the matrix gives them.
  std::vector<std::string> out;
  for (const auto& w : workloads)
    if (std::find(mine.begin(), mine.end(), w) != mine.end() && std::find(out.begin(), out.end(), w) == out.end())
      out.push_back(w);
  return out;
}

}  // namespace cowbench
