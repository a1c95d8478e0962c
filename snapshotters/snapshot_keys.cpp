// Minting cowbench's snapshot keys and sweeping those of dead runs (see snapshot_keys.h).
#include "snapshotters/snapshot_keys.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fmt/format.h>

#include "common/error.h"
#include "common/log.h"
#include "common/process.h"
#include "snapshotters/snapshotter.h"

namespace cowbench::snap {
namespace {

constexpr KeyKind kKinds[] = {KeyKind::kContainer, KeyKind::kListing, KeyKind::kImport, KeyKind::kLayer};

std::atomic<uint64_t> g_counter{0};

}  // namespace

std::string_view key_prefix(KeyKind kind) {
  switch (kind) {
    case KeyKind::kContainer: return "run-";
    case KeyKind::kListing: return "list-";
    case KeyKind::kImport: return "cowbench-import-";
    case KeyKind::kLayer: return "cbench-";
  }
  return "cowbench-";
}

std::string mint_key(KeyKind kind, std::string_view rest) {
  if (rest.empty()) return fmt::format("{}{}-{}", key_prefix(kind), getpid(), ++g_counter);
  return fmt::format("{}{}-{}", key_prefix(kind), getpid(), rest);
}

std::optional<pid_t> key_owner(std::string_view key) {
  for (KeyKind k : kKinds)
    if (auto pid = owner_pid(key, key_prefix(k))) return pid;
  return std::nullopt;
}

bool is_stale_key(std::string_view key) {
  auto pid = key_owner(key);
  return pid && *pid != getpid() && process_gone(*pid);
}

std::vector<std::string> remove_stale_snapshots(Snapshotter& sn) {
  std::vector<Info> victims;
  sn.walk([&](const Info& i) {
    if (is_stale_key(i.name)) victims.push_back(i);
  });
  std::vector<std::string> removed;
  // Children first: remove whatever no other victim names as its parent, until none is left.
  while (!victims.empty()) {
    size_t before = victims.size();
    for (auto it = victims.begin(); it != victims.end();) {
      bool parent_of_other =
          std::any_of(victims.begin(), victims.end(), [&](const Info& o) { return o.parent == it->name; });
      if (parent_of_other) {
        ++it;
        continue;
      }
      try {
        sn.remove(it->name);
        removed.push_back(it->name);
      } catch (const Error& e) {
        log::warn("cannot remove the stale snapshot {}: {}", it->name, e.what());
      }
      it = victims.erase(it);
    }
    if (victims.size() == before) break;  // a cycle cannot happen; never loop forever
  }
  return removed;
}

}  // namespace cowbench::snap
