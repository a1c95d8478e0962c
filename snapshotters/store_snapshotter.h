// A Snapshotter base that keeps the bookkeeping (keys, kinds, parents, labels, crash-safe
// metadata) so that a backend only says how a snapshot's storage is made, mounted and removed.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "snapshotters/metastore.h"
#include "snapshotters/snapshotter.h"

namespace cowbench::snap {

// Layout of a backend root:
//   ROOT/metadata/<id>.json   one record per snapshot (MetaStore)
//   ROOT/snapshots/<id>/      the snapshot's storage; fs/ is its tree by convention
// Every hook runs with the store's lock held.
class StoreSnapshotter : public Snapshotter {
 public:
  Info stat(const std::string& key) override;
  Info update(const Info& info, const std::vector<std::string>& fieldpaths = {}) override;
  Usage usage(const std::string& key) override;
  int64_t distinct_bytes(const std::vector<std::string>& keys) override;
  std::vector<Mount> mounts(const std::string& key) override;
  std::vector<Mount> prepare(const std::string& key, const std::string& parent, const Labels& labels = {}) override;
  std::vector<Mount> view(const std::string& key, const std::string& parent, const Labels& labels = {}) override;
  void commit(const std::string& name, const std::string& key, const Labels& labels = {}) override;
  void remove(const std::string& key) override;
  void walk(const std::function<void(const Info&)>& fn) override;
  void close() override;

  const std::string& root() const noexcept { return root_; }

 protected:
  // Creates ROOT (and its metadata) if missing. sync_metadata=false skips fsyncs.
  explicit StoreSnapshotter(std::string root, bool sync_metadata = true);

  // Removes storage that has no metadata (left by a process killed mid-prepare or
  // mid-remove). Derived constructors call it once they can run remove_storage.
  void recover();

  // Fills the new, empty directory snapshot_dir(r.id) for a snapshot on `parents`
  // (nearest first). Throws on failure; the caller then calls remove_storage.
  virtual void create_storage(const Record& r, const std::vector<Record>& parents) = 0;
  // The mounts of an active snapshot or view.
  virtual std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) = 0;
  // Makes an active snapshot's storage immutable, if the backend needs to (default: nothing).
  virtual void commit_storage(const Record& r);
  // Deletes a snapshot's storage (default: mount-safe rm -rf of snapshot_dir).
  virtual void remove_storage(uint64_t id);
  // Usage of the snapshot alone (default: allocated bytes and inodes of fs_dir).
  virtual Usage usage_of(const Record& r, const std::vector<Record>& parents);
  // What the snapshots `rs` take together (default: the sum of usage_of).
  virtual int64_t distinct_of(const std::vector<Record>& rs);
  // Releases backend resources at close() (default: nothing).
  virtual void close_storage();

  std::string snapshot_dir(uint64_t id) const;
  std::string fs_dir(uint64_t id) const;

 private:
  std::vector<Mount> create(Kind kind, const std::string& key, const std::string& parent, const Labels& labels);
  void check_open() const;

  std::string root_;
  std::mutex mu_;
  // Held shared while a removed snapshot's storage is deleted (outside mu_, so that removes of
  // different snapshots delete side by side), exclusively by close(), which waits for them.
  std::shared_mutex deleting_;
  MetaStore store_;
  bool closed_ = false;
};

}  // namespace cowbench::snap
