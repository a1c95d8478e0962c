// The composefs backend (see composefs_snapshotter.h).
#include "snapshotters/composefs/composefs_snapshotter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "snapshotters/composefs/metadata_tree.h"
#include "snapshotters/composefs/object_store.h"
#include "snapshotters/overlayfs/overlayfs_snapshotter.h"
#include "snapshotters/probe_util.h"
#include "snapshotters/store_snapshotter.h"

namespace cowbench::snap {
namespace {

using composefs::ObjectRef;
using composefs::ObjectStore;
using composefs::VerifyMode;

constexpr const char* kComposefsName = "composefs";
// The overlay options of every composefs mount: a data-only lower layer needs metacopy, and
// renamed directories of committed uppers are resolved into the next metadata tree.
const std::vector<std::string> kLayerOptions = {"metacopy=on", "redirect_dir=on"};

// Files of a snapshot directory.
constexpr const char* kMeta = "meta";          // a committed snapshot's metadata tree
constexpr const char* kManifest = "objects";   // the objects it refers to (HEX SIZE lines)
constexpr const char* kOwnUsage = "usage.json";  // the objects its commit added to the store
constexpr const char* kParentMeta = "parent";  // an active snapshot's parent id (its metadata tree)

const std::string& option_safe_root(const std::string& root) {
  if (root.find_first_of(":,") != std::string::npos)
    fail(Errc::kInvalidInput, "composefs: root {} must not contain ':' or ',' (overlay option syntax)", root);
  return root;
}

class ComposefsSnapshotter final : public StoreSnapshotter {
 public:
  ComposefsSnapshotter(const std::string& root, VerifyMode verify, bool sync)
      : StoreSnapshotter(option_safe_root(root)), verify_(verify) {
    Availability a = probe_composefs(root);
    if (!a.available) fail(Errc::kUnsupported, "composefs cannot keep snapshots in {}: {}", root, a.reason);
    store_ = std::make_unique<ObjectStore>(path_join(root, "objects"), sync);
    recover();
    load_manifests();
    if (uint64_t n = store_->sweep()) log::info("composefs: removed {} objects no snapshot holds", n);
  }

  std::string_view backend() const noexcept override { return kComposefsName; }

 protected:
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    std::string dir = snapshot_dir(r.id), fs = fs_dir(r.id);
    if (mkdir(fs.c_str(), 0755) != 0) fail_sys("create {}", fs);
    if (chmod(fs.c_str(), 0755) != 0) fail_sys("chmod {}", fs);  // umask must not narrow it
    if (parents.empty()) return;
    const Record& p = parents.front();
    // The parent's objects must all be there before anything mounts them: checked once per
    // parent while the backend is open (the store changes only through it).
    verify_parent(p);
    // The merged root takes the upper dir's owner and mode: inherit the parent's.
    struct stat st {};
    std::string pmeta = metadata_lower(p.id);
    if (::stat(pmeta.c_str(), &st) != 0) fail_sys("stat {}", pmeta);
    if (chown(fs.c_str(), st.st_uid, st.st_gid) != 0) fail_sys("chown {}", fs);
    if (chmod(fs.c_str(), st.st_mode & 07777) != 0) fail_sys("chmod {}", fs);
    if (r.info.kind == Kind::kActive) {
      std::string work = path_join(dir, "work");
      if (mkdir(work.c_str(), 0700) != 0) fail_sys("create {}", work);
      write_file_atomic(path_join(dir, kParentMeta), std::to_string(p.id), 0600, false);
    }
  }

  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) override {
    bool ro = r.info.kind == Kind::kView;
    if (parents.empty()) return {Mount{"bind", fs_dir(r.id), {ro ? "ro" : "rw", "rbind"}}};
    std::string lowers = metadata_lower(parents.front().id) + "::" + store_->dir();
    Mount m{"overlay", "overlay", {}};
    if (!ro) {
      m.options = {"workdir=" + path_join(snapshot_dir(r.id), "work"), "upperdir=" + fs_dir(r.id)};
    }
    m.options.push_back("lowerdir=" + lowers);
    m.options.insert(m.options.end(), kLayerOptions.begin(), kLayerOptions.end());
    return {m};
  }

  // The layer becomes a metadata tree: parent's tree + the upper's changes, data into the store.
  void commit_storage(const Record& r) override {
    std::string dir = snapshot_dir(r.id), meta = path_join(dir, kMeta), manifest = path_join(dir, kManifest);
    std::string parent;
    if (std::string p = path_join(dir, kParentMeta); path_exists(p)) parent = metadata_lower(std::stoull(read_file(p)));
    remove_tree(meta);  // a commit that failed before
    make_dirs(meta, 0755);
    try {
      ObjectStore::Batch batch = store_->batch();
      composefs::build_metadata_tree(parent, fs_dir(r.id), meta, batch);
      std::vector<ObjectRef> refs = composefs::tree_objects(meta);
      write_file_atomic(manifest, composefs::format_manifest(refs), 0600, false);
      nlohmann::json own = {{"objects", batch.new_objects()}, {"bytes", batch.new_bytes()}};
      write_file_atomic(path_join(dir, kOwnUsage), own.dump(), 0600, false);
      // Publishing is where an EROFS form would pack `meta` (mkfs.erofs) and mount it.
      batch.publish();  // with sync=on one syncfs: the objects, the tree and the manifest are on disk
      store_->hold(refs);
      std::lock_guard lock(manifests_mu_);
      manifests_[r.id] = std::move(refs);
      verified_.insert(r.id);  // its parent's objects were checked, its own hashed on the way in
    } catch (...) {
      for (const char* f : {kManifest, kOwnUsage}) unlink(path_join(dir, f).c_str());
      try {
        remove_tree(meta);
      } catch (const std::exception& e) {
        log::warn("composefs: cannot remove the unfinished metadata tree {}: {}", meta, e.what());
      }
      throw;
    }
    // The upper's data now lives in the store (the same inodes); its tree is the metadata's.
    remove_tree(fs_dir(r.id));
    remove_tree(path_join(dir, "work"));
    unlink(path_join(dir, kParentMeta).c_str());
  }

  void remove_storage(uint64_t id) override {
    remove_tree(snapshot_dir(id));
    std::vector<ObjectRef> refs;
    {
      std::lock_guard lock(manifests_mu_);
      auto it = manifests_.find(id);
      if (it == manifests_.end()) return;
      refs = std::move(it->second);
      manifests_.erase(it);
      verified_.erase(id);
    }
    if (store_) store_->release(refs);
  }

  Usage usage_of(const Record& r, const std::vector<Record>&) override {
    if (r.info.kind != Kind::kCommitted) {
      DiskUsage du = disk_usage(fs_dir(r.id));
      return Usage{static_cast<int64_t>(du.bytes), static_cast<int64_t>(du.inodes), -1};
    }
    // A committed snapshot alone: its metadata tree and the objects its commit added.
    DiskUsage du = disk_usage(path_join(snapshot_dir(r.id), kMeta));
    Usage u{static_cast<int64_t>(du.bytes), static_cast<int64_t>(du.inodes), -1};
    try {
      auto own = nlohmann::json::parse(read_file(path_join(snapshot_dir(r.id), kOwnUsage)));
      u.size += own.value("bytes", int64_t{0});
      u.inodes += own.value("objects", int64_t{0});
    } catch (const std::exception& e) {
      log::warn("composefs: no usage record for {}: {}", r.info.name, e.what());
    }
    return u;
  }

 private:
  // The directory a snapshot's metadata tree is mounted from as the non-data lower layer.
  // (The EROFS form: the mount point of its packed image.)
  std::string metadata_lower(uint64_t id) const { return path_join(snapshot_dir(id), kMeta); }

  void verify_parent(const Record& p) {
    {
      std::lock_guard lock(manifests_mu_);
      if (verified_.count(p.id)) return;
    }
    store_->verify(manifest_of(p.id), verify_, fmt::format("snapshot '{}'", p.info.name));
    std::lock_guard lock(manifests_mu_);
    verified_.insert(p.id);
  }

  std::vector<ObjectRef> manifest_of(uint64_t id) {
    std::lock_guard lock(manifests_mu_);
    auto it = manifests_.find(id);
    if (it == manifests_.end())
      fail(Errc::kInvalidInput, "composefs: snapshot {} has no manifest of its objects ({} is missing)",
           snapshot_dir(id), path_join(snapshot_dir(id), kManifest));
    return it->second;
  }

  // Every committed snapshot's manifest: what each holds in the store.
  void load_manifests() {
    std::vector<std::pair<uint64_t, std::string>> found;
    walk_ids([&](uint64_t id) {
      std::string m = path_join(snapshot_dir(id), kManifest);
      if (path_exists(m)) found.emplace_back(id, m);
    });
    std::lock_guard lock(manifests_mu_);
    for (const auto& [id, path] : found) {
      auto refs = composefs::parse_manifest(read_file(path), path);
      store_->hold(refs);
      manifests_[id] = std::move(refs);
    }
  }

  // Calls fn for each numeric directory under ROOT/snapshots.
  void walk_ids(const std::function<void(uint64_t)>& fn) {
    std::string dir = path_join(root(), "snapshots");
    DIR* d = opendir(dir.c_str());
    if (!d) fail_sys("open {}", dir);
    std::vector<uint64_t> ids;
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      uint64_t id = std::strtoull(e->d_name, &end, 10);
      if (end != e->d_name && *end == 0) ids.push_back(id);
    }
    closedir(d);
    for (uint64_t id : ids) fn(id);
  }

  VerifyMode verify_;
  std::unique_ptr<ObjectStore> store_;
  std::mutex manifests_mu_;  // remove_storage runs outside the store's lock
  std::map<uint64_t, std::vector<ObjectRef>> manifests_;
  std::set<uint64_t> verified_;  // committed snapshots whose objects were checked since open
};

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

}  // namespace

Availability probe_composefs(const std::string& workdir) {
  if (auto why = needs_root_reason()) return {false, *why};
  Availability plain = probe_overlayfs(workdir);
  if (!plain.available) return {false, "no kernel overlay here: " + plain.reason};
  try {
    ProbeDir dir(workdir, kComposefsName);
    auto meta = dir.sub("meta"), objects = dir.sub("objects"), upper = dir.sub("upper"), work = dir.sub("work"),
         merged = dir.sub("merged");
    const std::string content = "composefs probe\n";
    make_dirs(path_join(objects, "ab"));
    write_test_file(path_join(objects, "ab/cdef"), content);
    std::string stub = path_join(meta, "f");
    write_test_file(stub, "");
    if (truncate(stub.c_str(), static_cast<off_t>(content.size())) != 0) fail_sys("truncate {}", stub);
    if (setxattr(stub.c_str(), composefs::kMetacopyXattr, "", 0, 0) != 0 ||
        setxattr(stub.c_str(), composefs::kRedirectXattr, "/ab/cdef", 8, 0) != 0)
      return {false, fmt::format("{} cannot hold trusted.overlay xattrs ({}): the metadata trees need them",
                                 fs_type_name_or(workdir), strerror(errno))};
    Mount m{"overlay", "overlay",
            {"lowerdir=" + meta + "::" + objects, "upperdir=" + upper, "workdir=" + work, "metacopy=on",
             "redirect_dir=on"}};
    try {
      ScopedMount mounted({m}, merged);
      if (read_file(path_join(merged, "f")) != content)
        return {false, "a trial overlay with a data-only lower layer does not read the object's content"};
      Fd f(open(path_join(merged, "f").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      if (!f || ::write(f.get(), "x", 1) != 1) fail_sys("append to {}", path_join(merged, "f"));
      f.reset();
      mounted.close();
    } catch (const Error& e) {
      return {false, fmt::format("overlayfs refuses data-only lower layers (lowerdir=META::OBJECTS with metacopy=on, "
                                 "Linux 6.5 or later; this is {}): {}",
                                 kernel_release(), e.what())};
    }
    struct stat st {};
    std::string up = path_join(upper, "f");
    if (::stat(up.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) != content.size() + 1 ||
        getxattr(up.c_str(), composefs::kMetacopyXattr, nullptr, 0) >= 0)
      return {false, "an append through a trial overlay with a data-only lower layer did not copy the data up"};
    return {true, fmt::format("trial overlay with a data-only lower layer (metacopy, redirect) and a data copy-up on {}",
                              fs_type_name(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial composefs mount on {} failed: {}", fs_type_name_or(workdir), e.what())};
  }
}

void register_composefs(Registry& registry) {
  BackendSpec spec;
  spec.name = kComposefsName;
  spec.description =
      "the composefs model: file contents once in a content-addressed object store shared by every image, a "
      "metadata tree per snapshot (sparse metacopy/redirect stubs), mounted as overlayfs data-only lower layers";
  spec.caps = Capabilities{Granularity::kFile, true, true,
                           "overlayfs with data-only lower layers (Linux 6.5+), trusted xattrs on the work directory's "
                           "file system, CAP_SYS_ADMIN"};
  spec.caps.disk_sharing = spec.caps.cache_sharing = "file content";  // one object per distinct content
  spec.options = {{"verify", "stat|digest",
                   "what preparing a snapshot checks of the objects its parent refers to: stat (default: each exists "
                   "with its size and its store mtime stamp, else it is hashed) or digest (each is hashed)"},
                  {"sync", "on|off",
                   "on: a commit makes its new objects and metadata durable (one syncfs of the work directory's file "
                   "system) before it names them; off (default, as the other backends: layer data is not synced)"}};
  spec.probe = probe_composefs;
  spec.in_default = false;  // not in the default matrix (yet): --backends composefs
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    check_options(builtin_registry().get(kComposefsName), options);
    VerifyMode verify = VerifyMode::kStat;
    if (auto it = options.find("verify"); it != options.end()) {
      if (it->second == "digest")
        verify = VerifyMode::kDigest;
      else if (it->second != "stat")
        fail(Errc::kInvalidInput, "composefs option verify takes stat|digest, not '{}'", it->second);
    }
    bool sync = false;
    if (auto it = options.find("sync"); it != options.end()) {
      if (it->second != "on" && it->second != "off")
        fail(Errc::kInvalidInput, "composefs option sync takes on|off, not '{}'", it->second);
      sync = it->second == "on";
    }
    return std::make_unique<ComposefsSnapshotter>(root, verify, sync);
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
