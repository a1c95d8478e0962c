// The backend registry (see registry.h).
#include "snapshotters/registry.h"

#include "common/error.h"
#include "snapshotters/btrfs/btrfs_snapshotter.h"
#include "snapshotters/composefs/composefs_snapshotter.h"
#include "snapshotters/copy/copy_snapshotter.h"
#include "snapshotters/erofs/erofs_snapshotter.h"
#include "snapshotters/fuse_overlayfs/fuse_overlayfs_snapshotter.h"
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"
#include "snapshotters/reflink/reflink_snapshotter.h"
#include "snapshotters/unionfs_fuse/unionfs_fuse_snapshotter.h"

namespace cowbench::snap {

void Registry::add(BackendSpec spec) {
  std::string name = spec.name;
  if (!specs_.emplace(name, std::move(spec)).second) fail(Errc::kFailure, "backend '{}' registered twice", name);
}

const BackendSpec* Registry::find(const std::string& name) const {
  auto it = specs_.find(name);
  return it == specs_.end() ? nullptr : &it->second;
}

const BackendSpec& Registry::get(const std::string& name) const {
  if (const BackendSpec* s = find(name)) return *s;
  std::string known;
  for (const auto& [n, s] : specs_) known += (known.empty() ? "" : ", ") + n;
  fail(Errc::kInvalidInput, "unknown backend '{}' (known: {})", name, known);
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, s] : specs_) out.push_back(n);
  return out;
}

void register_builtin_backends(Registry& registry) {
  register_overlayfs(registry);
  register_copy(registry);
  register_fuse_overlayfs(registry);
  register_unionfs_fuse(registry);
  register_reflink(registry);
  register_btrfs(registry);
  register_erofs(registry);
  register_composefs(registry);
}

const Registry& builtin_registry() {
  static const Registry r = [] {
    Registry reg;
    register_builtin_backends(reg);
    return reg;
  }();
  return r;
}

void check_options(const BackendSpec& spec, const BackendOptions& options) {
  for (const auto& [k, v] : options) {
    bool known = false;
    for (const auto& o : spec.options) known = known || o.name == k;
    if (known) continue;
    std::string valid;
    for (const auto& o : spec.options) valid += (valid.empty() ? "" : ", ") + o.name;
    fail(Errc::kInvalidInput, "backend {} has no option '{}' (valid: {})", spec.name, k, valid.empty() ? "none" : valid);
  }
}

BackendOptions parse_options(const std::string& text) {
  BackendOptions out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    std::string item = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!item.empty()) {
      auto eq = item.find('=');
      if (eq == 0) fail(Errc::kInvalidInput, "backend option '{}' has no name", item);
      if (eq == std::string::npos)
        out[item] = "on";
      else
        out[item.substr(0, eq)] = item.substr(eq + 1);
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace cowbench::snap
