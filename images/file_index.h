// The content of an image's merged view (path → type, mode, owner, size, sha256): from layers, a tree, or JSON.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "images/changeset.h"
#include "images/layer_reader.h"

namespace cowbench::img {

struct FileInfo {
  char type = 'f';     // f d l p c b
  uint32_t mode = 0;   // permission bits incl. setuid/sticky; 0 for symlinks
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;   // regular files
  std::string sha256;  // regular files: "sha256:<hex>" of the content
  std::string target;  // symlinks: the target; devices: "major:minor"
  int64_t mtime_ns = 0;
  bool operator==(const FileInfo&) const = default;
};

// Relative paths without a leading slash ("usr/bin/sh"); "" is the root directory.
struct FileIndex {
  std::map<std::string, FileInfo> entries;

  size_t count(char type) const;
  uint64_t file_bytes() const;  // sum of regular file sizes
  bool operator==(const FileIndex&) const = default;
};

nlohmann::json to_json(const FileIndex& index);
// Throws kInvalidInput on a malformed document.
FileIndex file_index_from_json(const nlohmann::json& j);

// Walks the tree at `root` (not crossing mounts) and hashes every regular file.
FileIndex index_directory(const std::string& root);

// "" when equal; else one line per difference. Directory mtimes are never compared (creating
// a child changes them); other mtimes only when `mtimes`.
std::string diff_index(const FileIndex& expected, const FileIndex& actual, bool mtimes = true);

// Builds a FileIndex by applying layers in memory with the OCI changeset rules the applier
// follows (whiteouts, opaque directories, replacement, symlinks in parent paths resolved
// beneath the root). Feed every layer in order; an escape through a symlink is refused.
class IndexBuilder {
 public:
  IndexBuilder();
  // Reads all of `layer`, verifies it (LayerReader::finish) and applies it.
  void add_layer(LayerReader& layer);
  // Or entry by entry (reading a regular file's data): begin_layer() before each layer's
  // entries; the caller calls LayerReader::finish() after the last.
  void begin_layer();
  void apply(LayerReader& r, const TarEntry& e);
  const FileIndex& index() const noexcept { return index_; }
  FileIndex take() { return std::move(index_); }

 private:
  // The real path of directory `dir`; missing ones are made (as the applier makes parents)
  // unless `missing` is given, which is then set instead.
  std::string resolve_dir(LayerReader& r, const std::string& dir, const std::string& entry, bool* missing = nullptr);
  void erase_tree(const std::string& path);

  FileIndex index_;
  WrittenSet written_;  // by the current layer
};

}  // namespace cowbench::img
