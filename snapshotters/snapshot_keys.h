// The snapshot keys cowbench owns (containers, image listings, imports, workload layers) and the sweeper of dead runs' keys.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cowbench::snap {

class Snapshotter;

// Every key cowbench makes names the process that made it (PREFIX<pid>-<rest>), so that what a
// killed process left behind can be told from what a live one still uses. Keys are unique
// within a process (a process-wide counter) and across processes (the pid).
enum class KeyKind {
  kContainer,  // "run-<pid>-<n>": a container's writable snapshot (and its cgroup's name)
  kListing,    // "list-<pid>-<n>": a read-only view made to list an image's files
  kImport,     // "cowbench-import-<pid>-<rest>": the active snapshot a layer is applied in
  kLayer,      // "cbench-<pid>-<n>": the tag of a workload's own layers ("<tag>-layer-<i>")
};

// The prefix of a kind's keys ("run-", "list-", "cowbench-import-", "cbench-").
std::string_view key_prefix(KeyKind kind);

// A new key of `kind`: "<prefix><pid>-<n>", or "<prefix><pid>-<rest>" when `rest` is given
// (the caller then makes it unique, e.g. an import's chain id).
std::string mint_key(KeyKind kind, std::string_view rest = {});

// The process that made `key`, when it is one of cowbench's keys (any kind); nullopt otherwise.
std::optional<pid_t> key_owner(std::string_view key);

// True when `key` is one of cowbench's keys and the process that made it is gone (not this one).
bool is_stale_key(std::string_view key);

// Removes the snapshots of `sn` whose key is stale (is_stale_key): containers, listings,
// imports and workload layers of killed runs, children before parents. A snapshot that cannot
// be removed is logged and left. Returns the keys removed.
std::vector<std::string> remove_stale_snapshots(Snapshotter& sn);

}  // namespace cowbench::snap
