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
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "snapshotters/composefs/metadata_tree.h"
#include "snapshotters/composefs/object_store.h"
#include "snapshotters/erofs_image.h"
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
constexpr const char* kMeta = "meta";          // a committed snapshot's metadata tree (dir form), or its image's mount point
constexpr const char* kMetaImage = "meta.erofs";  // the EROFS form: the metadata tree packed by mkfs.erofs
constexpr const char* kMetaBuild = "meta.build";  // the EROFS form: a commit's tmpfs, where the tree to pack is made
constexpr const char* kManifest = "objects";   // the objects it refers to (HEX SIZE lines)
constexpr const char* kOwnUsage = "usage.json";  // the objects its commit added to the store
constexpr const char* kParentMeta = "parent";  // an active snapshot's parent id (its metadata tree)

// How a commit keeps its metadata tree.
enum class MetaForm {
  kErofs,  // packed into SNAPSHOT/meta.erofs, mounted read-only on SNAPSHOT/meta while the backend is open
  kDir,    // the directory SNAPSHOT/meta itself
};
const char* meta_form_name(MetaForm f) { return f == MetaForm::kErofs ? "erofs" : "dir"; }

// Whether a tmpfs keeps every xattr a metadata tree carries (trusted.*, and user.*, which
// tmpfs takes from Linux 6.6 on): a trial mount under `root`.
bool tmpfs_takes_xattrs(const std::string& root) {
  try {
    ProbeDir dir(root, "composefs-tmpfs");
    std::string mnt = dir.sub("mnt");
    ScopedMount m({Mount{"tmpfs", "tmpfs", {"mode=0755", "size=64k"}}}, mnt);
    std::string f = path_join(mnt, "f");
    write_test_file(f, "");
    bool ok = setxattr(f.c_str(), "trusted.overlay.metacopy", "", 0, 0) == 0 &&
              setxattr(f.c_str(), "user.cowbench", "1", 1, 0) == 0;
    m.close();
    return ok;
  } catch (const Error& e) {
    log::debug("composefs: no tmpfs for metadata trees: {}", e.what());
    return false;
  }
}

const std::string& option_safe_root(const std::string& root) {
  if (root.find_first_of(":,") != std::string::npos)
    fail(Errc::kInvalidInput, "composefs: root {} must not contain ':' or ',' (overlay option syntax)", root);
  return root;
}

class ComposefsSnapshotter final : public StoreSnapshotter {
 public:
  // `form`: how commits keep their metadata trees; nullopt: EROFS images where they work here, else directories.
  ComposefsSnapshotter(const std::string& root, VerifyMode verify, bool sync, std::optional<MetaForm> form)
      : StoreSnapshotter(option_safe_root(root)), verify_(verify) {
    Availability a = probe_composefs(root);
    if (!a.available) fail(Errc::kUnsupported, "composefs cannot keep snapshots in {}: {}", root, a.reason);
    if (form) {
      form_ = *form;
      if (form_ == MetaForm::kErofs) {
        Availability e = probe_erofs_metadata(root);
        if (!e.available) fail(Errc::kUnsupported, "composefs metadata=erofs cannot work in {}: {}", root, e.reason);
      }
    } else {
      Availability e = probe_erofs_metadata(root);
      form_ = e.available ? MetaForm::kErofs : MetaForm::kDir;
      if (!e.available) log::info("composefs: metadata trees kept as directories ({})", e.reason);
    }
    if (form_ == MetaForm::kErofs) {
      stage_on_tmpfs_ = tmpfs_takes_xattrs(root);
      if (!stage_on_tmpfs_) log::debug("composefs: metadata trees to pack are made in the work directory");
    }
    log::debug("composefs: commits keep their metadata trees in the {} form", meta_form_name(form_));
    store_ = std::make_unique<ObjectStore>(path_join(root, "objects"), sync);
    recover();
    load_manifests();
    if (uint64_t n = store_->sweep()) log::info("composefs: removed {} objects no snapshot holds", n);
  }

  ~ComposefsSnapshotter() override {
    std::lock_guard lock(images_mu_);
    unmount_images();
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
    std::string pmeta = hold_meta(r.id, p.id);
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
    std::string lowers = hold_meta(r.id, parents.front().id) + "::" + store_->dir();
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
    if (std::string p = path_join(dir, kParentMeta); path_exists(p)) parent = hold_meta(r.id, std::stoull(read_file(p)));
    // The EROFS form builds the tree to pack on a tmpfs of its own where it can (its stubs
    // are thrown away once packed: the work directory's file system neither makes nor frees
    // them; on ext4 that was most of an import), else in meta itself.
    std::string build = path_join(dir, kMetaBuild);
    if (is_mount_point(build)) unmount(build);  // a killed commit's
    remove_tree(build);
    remove_tree(meta);  // a commit that failed before
    make_dirs(meta, 0755);
    ScopedMount staging;
    if (form_ == MetaForm::kErofs && stage_on_tmpfs_) {
      make_dirs(build, 0755);
      staging = ScopedMount({Mount{"tmpfs", "tmpfs", {"mode=0755", "nr_inodes=0"}}}, build);
    } else {
      build = meta;
    }
    try {
      ObjectStore::Batch batch = store_->batch();
      composefs::build_metadata_tree(parent, fs_dir(r.id), build, batch);
      std::vector<ObjectRef> refs = composefs::tree_objects(build);
      write_file_atomic(manifest, composefs::format_manifest(refs), 0600, false);
      // The objects its commit added; meta_inodes: its tree's inodes (what an image holds, too).
      nlohmann::json own = {{"objects", batch.new_objects()},
                            {"bytes", batch.new_bytes()},
                            {"meta_inodes", disk_usage(build).inodes}};
      write_file_atomic(path_join(dir, kOwnUsage), own.dump(), 0600, false);
      // The EROFS form packs the tree; meta stays (empty) as the image's mount point.
      if (form_ == MetaForm::kErofs) {
        build_erofs_image(build, path_join(dir, kMetaImage), "", ErofsFiles::kStubs);
        if (staging.mounted()) {
          staging.close();
          remove_tree(build);
        } else {
          empty_dir(meta);
        }
      }
      batch.publish();  // with sync=on one syncfs: the objects, the tree and the manifest are on disk
      store_->hold(refs);
      std::lock_guard lock(manifests_mu_);
      manifests_[r.id] = std::move(refs);
      verified_.insert(r.id);  // its parent's objects were checked, its own hashed on the way in
    } catch (...) {
      for (const char* f : {kManifest, kOwnUsage, kMetaImage}) unlink(path_join(dir, f).c_str());
      try {
        if (staging.mounted()) staging.close();
        remove_tree(path_join(dir, kMetaBuild));
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
    release_meta(r.id);  // a committed snapshot is not mounted itself: its parent's image need not stay for it
  }

  void remove_storage(uint64_t id) override {
    release_meta(id);  // (no snapshot is on `id` itself: remove refuses a parent)
    // A killed run's mounts, found by recover(): an image, a commit's staging tmpfs.
    for (const char* m : {kMeta, kMetaBuild})
      if (std::string path = path_join(snapshot_dir(id), m); is_mount_point(path)) unmount(path);
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
    // A committed snapshot alone: its metadata tree (or image) and the objects its commit added.
    Usage u;
    std::string image = path_join(snapshot_dir(r.id), kMetaImage);
    if (struct stat st {}; ::stat(image.c_str(), &st) == 0) {
      u = Usage{static_cast<int64_t>(st.st_blocks) * 512, 0, -1, static_cast<int64_t>(st.st_size)};
    } else {
      DiskUsage du = disk_usage(path_join(snapshot_dir(r.id), kMeta));
      u = Usage{static_cast<int64_t>(du.bytes), static_cast<int64_t>(du.inodes), -1};
    }
    try {
      auto own = nlohmann::json::parse(read_file(path_join(snapshot_dir(r.id), kOwnUsage)));
      u.size += own.value("bytes", int64_t{0});
      u.inodes += own.value("objects", int64_t{0});
      if (u.image_bytes >= 0) u.inodes += own.value("meta_inodes", int64_t{0});
    } catch (const std::exception& e) {
      log::warn("composefs: no usage record for {}: {}", r.info.name, e.what());
    }
    return u;
  }

  void close_storage() override {
    std::lock_guard lock(images_mu_);
    unmount_images();
  }

 private:
  // The directory a committed snapshot's metadata tree is read from, the non-data lower layer
  // of the mounts on it: SNAPSHOT/meta, where a snapshot committed in the EROFS form has its
  // image mounted while a child holds it. (The form is the snapshot's own, told by its files: a
  // root can hold both.)
  std::string meta_dir(uint64_t id) const { return path_join(snapshot_dir(id), kMeta); }

  // Makes `parent`'s metadata tree readable for `child` (an active snapshot or view on it) and
  // counts `child` as its user, once: an image is mounted on its first user and unmounted after
  // its last (release_meta), so a chain of N commits keeps one image mounted, not N. Snapshots
  // of an earlier process take their holds on their first mounts call. Returns meta_dir(parent).
  std::string hold_meta(uint64_t child, uint64_t parent) {
    std::string meta = meta_dir(parent), image = path_join(snapshot_dir(parent), kMetaImage);
    std::lock_guard lock(images_mu_);
    if (holds_.contains(child)) return meta;
    if (path_exists(image)) {
      Image& img = images_[parent];
      if (!img.mount) {
        try {
          if (is_mount_point(meta)) {  // a killed run's mount of the same image: ours from here on
            log::info("unmounting {}, left mounted by an earlier run", meta);
            unmount(meta);
          }
          img.mount = std::make_unique<ErofsMount>(image, meta);
        } catch (...) {
          images_.erase(parent);
          throw;
        }
        log::debug("composefs: metadata image {} mounted {} on {}", image, img.mount->how(), meta);
      }
      ++img.users;
    }
    holds_[child] = parent;
    return meta;
  }

  // Drops `child`'s hold on its parent's tree; the last user's release unmounts the image.
  void release_meta(uint64_t child) {
    std::unique_ptr<ErofsMount> last;
    {
      std::lock_guard lock(images_mu_);
      auto h = holds_.find(child);
      if (h == holds_.end()) return;
      auto it = images_.find(h->second);
      holds_.erase(h);
      if (it == images_.end() || --it->second.users > 0) return;
      last = std::move(it->second.mount);
      images_.erase(it);
    }
    try {
      last->close();
    } catch (const std::exception& e) {
      log::warn("composefs: {}", e.what());
    }
  }

  void unmount_images() noexcept {
    for (auto& [id, img] : images_) {
      try {
        img.mount->close();
      } catch (const std::exception& e) {
        log::warn("composefs: {}", e.what());
      }
    }
    images_.clear();
    holds_.clear();
  }

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
  MetaForm form_ = MetaForm::kDir;
  bool stage_on_tmpfs_ = false;  // the EROFS form: commits make their trees on a tmpfs
  // A committed snapshot's metadata image, mounted while active snapshots and views on it hold it.
  struct Image {
    std::unique_ptr<ErofsMount> mount;
    int users = 0;
  };
  std::mutex images_mu_;  // remove_storage runs outside the store's lock
  std::map<uint64_t, Image> images_;
  std::map<uint64_t, uint64_t> holds_;  // active snapshot or view id → the parent whose tree it holds
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

namespace {

// The trial behind both probes: a metadata tree of one stub over an object, as a directory or
// (`erofs_meta`) packed as commits pack it and mounted, under an overlay with the objects as a
// data-only lower layer; read back and appended to (the data copied up).
Availability trial_composefs(const std::string& workdir, bool erofs_meta) {
  try {
    ProbeDir dir(workdir, erofs_meta ? "composefs-erofs" : kComposefsName);
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
    std::string lower = meta, how;
    std::unique_ptr<ErofsMount> image;  // outlives the overlay on it
    if (erofs_meta) {
      std::string file = path_join(dir.path(), "meta.erofs");
      build_erofs_image(meta, file, "", ErofsFiles::kStubs);
      lower = dir.sub("meta-image");
      try {
        image = std::make_unique<ErofsMount>(file, lower);
      } catch (const Error& e) {
        return {false, fmt::format("a compressed EROFS image of stubs does not mount (the kernel's EROFS may lack "
                                   "decompression, CONFIG_EROFS_FS_ZIP): {}",
                                   e.what())};
      }
      how = image->how();
    }
    Mount m{"overlay", "overlay",
            {"lowerdir=" + lower + "::" + objects, "upperdir=" + upper, "workdir=" + work, "metacopy=on",
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
                                 "Linux 6.5 or later; this is {}){}: {}",
                                 kernel_release(), erofs_meta ? " on an EROFS metadata image" : "", e.what())};
    }
    if (image) image->close();
    struct stat st {};
    std::string up = path_join(upper, "f");
    if (::stat(up.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) != content.size() + 1 ||
        getxattr(up.c_str(), composefs::kMetacopyXattr, nullptr, 0) >= 0)
      return {false, "an append through a trial overlay with a data-only lower layer did not copy the data up"};
    if (erofs_meta) return {true, fmt::format("trial metadata image (compressed EROFS, mounted {}) under it", how)};
    return {true, fmt::format("trial overlay with a data-only lower layer (metacopy, redirect) and a data copy-up on {}",
                              fs_type_name(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial composefs mount on {} failed: {}", fs_type_name_or(workdir), e.what())};
  }
}

}  // namespace

Availability probe_composefs(const std::string& workdir) {
  if (auto why = needs_root_reason()) return {false, *why};
  Availability plain = probe_overlayfs(workdir);
  if (!plain.available) return {false, "no kernel overlay here: " + plain.reason};
  return trial_composefs(workdir, false);
}

Availability probe_erofs_metadata(const std::string& workdir) {
  Availability images = probe_erofs(workdir);
  if (!images.available) return {false, "no EROFS images here: " + images.reason};
  return trial_composefs(workdir, true);
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
                   "system) before it names them; off (default, as the other backends: layer data is not synced)"},
                  {"metadata", "erofs|dir",
                   "how a commit keeps its metadata tree: erofs (the default where EROFS images work here: packed with "
                   "mkfs.erofs, mounted read-only) or dir (a plain directory of sparse stubs)"}};
  // The reason also says which form the metadata trees take by default here.
  spec.probe = [](const std::string& workdir) {
    Availability a = probe_composefs(workdir);
    if (!a.available) return a;
    Availability e = probe_erofs_metadata(workdir);
    a.reason += e.available ? fmt::format("; metadata trees as EROFS images: {}", e.reason)
                            : fmt::format("; metadata trees as directories: {}", e.reason);
    return a;
  };
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
    std::optional<MetaForm> form;
    if (auto it = options.find("metadata"); it != options.end()) {
      if (it->second == "erofs")
        form = MetaForm::kErofs;
      else if (it->second == "dir")
        form = MetaForm::kDir;
      else
        fail(Errc::kInvalidInput, "composefs option metadata takes erofs|dir, not '{}'", it->second);
    }
    return std::make_unique<ComposefsSnapshotter>(root, verify, sync, form);
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
