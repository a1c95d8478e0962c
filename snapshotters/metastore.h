// Crash-safe snapshot metadata: one JSON file per snapshot, written atomically.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "snapshotters/snapshotter.h"

namespace cowbench::snap {

// One snapshot's metadata. `id` names its storage directory and never changes, so a
// commit only rewrites metadata.
struct Record {
  uint64_t id = 0;
  Info info;
};

// The metadata of one snapshotter root: ROOT/metadata/<id>.json, each file replaced
// atomically (temp, fsync, rename), so that a killed process leaves every snapshot either
// fully there or absent. Not thread-safe: StoreSnapshotter serialises access.
class MetaStore {
 public:
  // Loads every record under dir (created if missing); a corrupt file is an error naming it.
  explicit MetaStore(std::string dir, bool sync = true);

  const Record* find(const std::string& name) const;
  // Throws kNotFound naming `what` ("snapshot", "parent") and the name.
  const Record& get(const std::string& name, std::string_view what = "snapshot") const;

  // Allocates an id above every id seen in metadata or in `taken` (existing directories).
  uint64_t next_id(uint64_t taken_max = 0);
  // Writes (creates or replaces) the record; the name index follows.
  void put(const Record& r, const std::string& old_name = {});
  void erase(const Record& r);

  bool has_children(const std::string& name) const;
  // Committed parents from the nearest up; throws if a link is missing.
  std::vector<Record> chain(const std::string& parent) const;
  std::vector<Record> all() const;
  // Ids that have metadata.
  std::vector<uint64_t> ids() const;

 private:
  std::string file_for(uint64_t id) const;

  std::string dir_;
  bool sync_;
  std::map<std::string, Record> by_name_;
  uint64_t max_id_ = 0;
};

}  // namespace cowbench::snap
