// Snapshot bookkeeping shared by every backend (see store_snapshotter.h).
#include "snapshotters/store_snapshotter.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace cowbench::snap {
namespace {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string describe(const Record& r) { return fmt::format("{} snapshot '{}'", kind_name(r.info.kind), r.info.name); }

}  // namespace

const char* kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::kView: return "view";
    case Kind::kActive: return "active";
    case Kind::kCommitted: return "committed";
  }
  return "unknown";
}

const char* granularity_name(Granularity g) noexcept {
  switch (g) {
    case Granularity::kFile: return "file";
    case Granularity::kExtent: return "extent";
    case Granularity::kTree: return "tree";
  }
  return "unknown";
}

void to_json(nlohmann::json& j, const StorageInfo& s) {
  if (s.loop_device.empty()) {
    j = {{"loop_device", nullptr}};
    return;
  }
  j = {{"loop_device", s.loop_device}, {"image", s.image}, {"mode", s.mode}, {"fs", s.fs}};
  if (!s.fallback.empty()) j["fallback"] = s.fallback;
}

StoreSnapshotter::StoreSnapshotter(std::string root, bool sync_metadata)
    : root_((make_dirs(root, 0700), std::move(root))), store_(path_join(root_, "metadata"), sync_metadata) {
  make_dirs(path_join(root_, "snapshots"), 0700);
}

void StoreSnapshotter::recover() {
  std::lock_guard lock(mu_);
  auto ids = store_.ids();
  std::string dir = path_join(root_, "snapshots");
  DIR* d = opendir(dir.c_str());
  if (!d) fail_sys("open {}", dir);
  std::vector<uint64_t> orphans;
  uint64_t max_seen = 0;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    uint64_t id = std::strtoull(e->d_name, &end, 10);
    if (end == e->d_name || *end != 0) continue;
    max_seen = std::max(max_seen, id);
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) orphans.push_back(id);
  }
  closedir(d);
  for (uint64_t id : orphans) {
    log::info("removing storage of an unfinished snapshot: {}", snapshot_dir(id));
    try {
      remove_storage(id);
    } catch (const Error& e) {
      log::warn("cannot remove {}: {}", snapshot_dir(id), e.what());
    }
  }
  // Never reuse an id whose directory could not be removed.
  store_.next_id(max_seen);
}

std::string StoreSnapshotter::snapshot_dir(uint64_t id) const {
  return path_join(root_, fmt::format("snapshots/{}", id));
}
std::string StoreSnapshotter::fs_dir(uint64_t id) const { return path_join(snapshot_dir(id), "fs"); }

void StoreSnapshotter::check_open() const {
  if (closed_) fail(Errc::kFailedPrecondition, "{} snapshotter at {} is closed", backend(), root_);
}

void StoreSnapshotter::commit_storage(const Record&) {}
void StoreSnapshotter::close_storage() {}
void StoreSnapshotter::remove_storage(uint64_t id) { remove_tree(snapshot_dir(id)); }

Usage StoreSnapshotter::usage_of(const Record& r, const std::vector<Record>&) {
  DiskUsage du = disk_usage(fs_dir(r.id));
  return Usage{static_cast<int64_t>(du.bytes), static_cast<int64_t>(du.inodes), -1};
}

Info StoreSnapshotter::stat(const std::string& key) {
  std::lock_guard lock(mu_);
  check_open();
  return store_.get(key).info;
}

Info StoreSnapshotter::update(const Info& info, const std::vector<std::string>& fieldpaths) {
  std::lock_guard lock(mu_);
  check_open();
  Record r = store_.get(info.name);
  if (r.info.kind != info.kind)
    fail(Errc::kInvalidInput, "cannot update {}: the update says it is {}", describe(r), kind_name(info.kind));
  if (fieldpaths.empty()) {
    r.info.labels = info.labels;
  } else {
    for (const auto& path : fieldpaths) {
      if (path == "labels") {
        r.info.labels = info.labels;
      } else if (path.starts_with("labels.") && path.size() > 7) {
        std::string k = path.substr(7);
        if (auto it = info.labels.find(k); it != info.labels.end())
          r.info.labels[k] = it->second;
        else
          r.info.labels.erase(k);
      } else {
        fail(Errc::kInvalidInput, "cannot update field '{}' of {}: only labels can change", path, describe(r));
      }
    }
  }
  r.info.updated_ns = std::max(now_ns(), r.info.updated_ns + 1);
  store_.put(r);
  return r.info;
}

Usage StoreSnapshotter::usage(const std::string& key) {
  std::lock_guard lock(mu_);
  check_open();
  const Record& r = store_.get(key);
  return usage_of(r, store_.chain(r.info.parent));
}

int64_t StoreSnapshotter::distinct_bytes(const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  check_open();
  std::vector<Record> rs;
  for (const auto& k : keys) rs.push_back(store_.get(k));
  return distinct_of(rs);
}

int64_t StoreSnapshotter::distinct_of(const std::vector<Record>& rs) {
  int64_t n = 0;
  for (const auto& r : rs) n += usage_of(r, store_.chain(r.info.parent)).size;
  return n;
}

std::vector<Mount> StoreSnapshotter::mounts(const std::string& key) {
  std::lock_guard lock(mu_);
  check_open();
  const Record& r = store_.get(key);
  if (r.info.kind == Kind::kCommitted)
    fail(Errc::kFailedPrecondition, "{} has no mounts: only active snapshots and views are mounted", describe(r));
  return mounts_of(r, store_.chain(r.info.parent));
}

std::vector<Mount> StoreSnapshotter::prepare(const std::string& key, const std::string& parent, const Labels& labels) {
  return create(Kind::kActive, key, parent, labels);
}

std::vector<Mount> StoreSnapshotter::view(const std::string& key, const std::string& parent, const Labels& labels) {
  return create(Kind::kView, key, parent, labels);
}

std::vector<Mount> StoreSnapshotter::create(Kind kind, const std::string& key, const std::string& parent,
                                            const Labels& labels) {
  std::lock_guard lock(mu_);
  check_open();
  if (key.empty()) fail(Errc::kInvalidInput, "{}: a snapshot key must not be empty", backend());
  if (key.find('\0') != std::string::npos) fail(Errc::kInvalidInput, "{}: a snapshot key must not hold NUL", backend());
  if (const Record* existing = store_.find(key))
    fail(Errc::kAlreadyExists, "cannot create {} '{}': the key is taken by {}", kind_name(kind), key, describe(*existing));
  std::vector<Record> parents;
  if (!parent.empty()) {
    const Record* p = store_.find(parent);
    if (!p) fail(Errc::kNotFound, "cannot create {} '{}': parent '{}' does not exist", kind_name(kind), key, parent);
    if (p->info.kind != Kind::kCommitted)
      fail(Errc::kFailedPrecondition, "cannot create {} '{}': parent {} is not committed", kind_name(kind), key,
           describe(*p));
    parents = store_.chain(parent);
  }

  Record r;
  r.id = store_.next_id();
  r.info.name = key;
  r.info.parent = parent;
  r.info.kind = kind;
  r.info.labels = labels;
  r.info.created_ns = r.info.updated_ns = now_ns();

  std::string dir = snapshot_dir(r.id);
  if (mkdir(dir.c_str(), 0700) != 0) fail_sys("create snapshot directory {}", dir);
  try {
    create_storage(r, parents);
    store_.put(r);
  } catch (...) {
    try {
      remove_storage(r.id);
    } catch (const std::exception& e) {
      log::warn("cannot clean up {}: {}", dir, e.what());
    }
    throw;
  }
  return mounts_of(r, parents);
}

void StoreSnapshotter::commit(const std::string& name, const std::string& key, const Labels& labels) {
  std::lock_guard lock(mu_);
  check_open();
  if (name.empty()) fail(Errc::kInvalidInput, "{}: a committed snapshot's name must not be empty", backend());
  Record r = store_.get(key);
  if (r.info.kind != Kind::kActive)
    fail(Errc::kFailedPrecondition, "cannot commit {}: only active snapshots can be committed", describe(r));
  if (const Record* existing = store_.find(name))
    fail(Errc::kAlreadyExists, "cannot commit '{}' as '{}': the name is taken by {}", key, name, describe(*existing));
  commit_storage(r);
  r.info.name = name;
  r.info.kind = Kind::kCommitted;
  for (const auto& [k, v] : labels) r.info.labels[k] = v;
  r.info.updated_ns = std::max(now_ns(), r.info.updated_ns + 1);
  store_.put(r, key);
}

void StoreSnapshotter::remove(const std::string& key) {
  std::shared_lock deleting(deleting_);
  uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    check_open();
    Record r = store_.get(key);
    if (store_.has_children(key)) fail(Errc::kFailedPrecondition, "cannot remove {}: it has children", describe(r));
    // Metadata first: a crash between the two steps leaves storage that recover() removes.
    store_.erase(r);
    id = r.id;
  }
  // The snapshot is gone; its files go without the lock (a tree of 10,000 files takes a second
  // or more on ext4), while other calls go on. Ids are never reused.
  remove_storage(id);
}

void StoreSnapshotter::walk(const std::function<void(const Info&)>& fn) {
  std::vector<Record> all;
  {
    std::lock_guard lock(mu_);
    check_open();
    all = store_.all();
  }
  for (const auto& r : all) fn(r.info);
}

void StoreSnapshotter::close() {
  std::unique_lock deleting(deleting_);  // removes still deleting finish first
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  close_storage();
}

}  // namespace cowbench::snap
