// What the applier and the indexers share about OCI changesets: whiteout names, path pieces, the per-layer written set.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace cowbench::img {

// ".wh.NAME" deletes NAME from the lower layers; ".wh..wh..opq" hides a directory's lower content.
inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

// "a/b/c" → {"a/b", "c"}; "c" → {"", "c"}.
std::pair<std::string, std::string> split_path(const std::string& path);
// join_path("", "c") = "c"; join_path("a/b", "c") = "a/b/c".
std::string join_path(const std::string& dir, std::string_view name);
// "a/b" → "a/.wh.b": the whiteout entry that deletes `path`.
std::string whiteout_path(const std::string& path);

// The paths one layer has written, with every directory above them, so that "did this
// layer write P, or anything below P" is one lookup: a layer's own entries are never hidden
// by its whiteouts or opaque markers.
class WrittenSet {
 public:
  void add(const std::string& path);
  bool contains_or_above(const std::string& path) const { return paths_.count(path) || ancestors_.count(path); }
  bool has_below(const std::string& dir) const { return ancestors_.count(dir) > 0; }
  void clear() {
    paths_.clear();
    ancestors_.clear();
  }

 private:
  std::unordered_set<std::string> paths_, ancestors_;
};

// The names in directory `dirfd` (without "." and ".."); throws naming `what` on failure.
std::vector<std::string> dir_names(int dirfd, const std::string& what);

}  // namespace cowbench::img
