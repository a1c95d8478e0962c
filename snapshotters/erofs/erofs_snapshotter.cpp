// The erofs backend (see erofs_snapshotter.h).
#include "snapshotters/erofs/erofs_snapshotter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "snapshotters/erofs_image.h"
#include "snapshotters/overlay_layout.h"
#include "snapshotters/probe_util.h"

namespace cowbench::snap {
namespace {

constexpr const char* kErofsName = "erofs";
constexpr const char* kImageFile = "layer.erofs";
constexpr const char* kFactsFile = "layer.json";

// The overlay layout whose committed layers are EROFS images mounted on their fs/ dirs.
class ErofsSnapshotter final : public OverlayLayoutSnapshotter {
 public:
  explicit ErofsSnapshotter(const std::string& root) : OverlayLayoutSnapshotter(kErofsName, root, probe_erofs_backend) {}

  ~ErofsSnapshotter() override {
    std::lock_guard lock(layers_mu_);
    unmount_all();
  }

  std::string_view backend() const noexcept override { return kErofsName; }

 protected:
  Mount merged_mount(const std::string& lowers, const std::string& upper, const std::string& work) const override {
    if (upper.empty()) return Mount{"overlay", "overlay", {"lowerdir=" + lowers}};
    return Mount{"overlay", "overlay", {"workdir=" + work, "upperdir=" + upper, "lowerdir=" + lowers}};
  }

  // The parents' images are mounted here, where a failure still undoes the snapshot (the
  // store removes it), not in mounts_of, which runs once it is recorded.
  void create_storage(const Record& r, const std::vector<Record>& parents) override {
    hold_parents(r.id, parents);
    OverlayLayoutSnapshotter::create_storage(r, parents);
  }

  // (Snapshots made by an earlier process take their holds here, on their first mounts call.)
  std::vector<Mount> mounts_of(const Record& r, const std::vector<Record>& parents) override {
    hold_parents(r.id, parents);
    return OverlayLayoutSnapshotter::mounts_of(r, parents);
  }

  // The applied directory becomes LAYER.erofs; the directory is emptied (the image's mount point).
  void commit_storage(const Record& r) override {
    std::string dir = snapshot_dir(r.id), fs = fs_dir(r.id), image = path_join(dir, kImageFile);
    DiskUsage du = disk_usage(fs);
    uint64_t image_bytes = build_erofs_image(fs, image);
    struct stat st {};
    if (::stat(image.c_str(), &st) != 0) fail_sys("stat {}", image);
    nlohmann::json facts{{"dir_bytes", du.bytes},
                         {"dir_inodes", du.inodes},
                         {"image_bytes", image_bytes},
                         {"image_allocated_bytes", static_cast<uint64_t>(st.st_blocks) * 512}};
    write_file_atomic(path_join(dir, kFactsFile), facts.dump());
    // The image holds the layer now: a crash from here on leaves an image and (part of) the
    // directory it was made from, both the same tree.
    empty_dir(fs);
    remove_tree(path_join(dir, "work"));
    release_holds(r.id);  // a committed layer is not mounted itself: its parents need not stay for it
  }

  Usage usage_of(const Record& r, const std::vector<Record>& parents) override {
    if (r.info.kind != Kind::kCommitted) return OverlayLayoutSnapshotter::usage_of(r, parents);
    std::string facts_file = path_join(snapshot_dir(r.id), kFactsFile);
    nlohmann::json facts;
    try {
      facts = nlohmann::json::parse(read_file(facts_file));
    } catch (const nlohmann::json::exception& e) {
      fail(Errc::kInvalidInput, "layer facts {} are corrupt: {}", facts_file, e.what());
    }
    std::string image = path_join(snapshot_dir(r.id), kImageFile);
    struct stat st {};
    if (::stat(image.c_str(), &st) != 0) fail_sys("stat EROFS image {}", image);
    Usage u;
    u.size = static_cast<int64_t>(st.st_blocks) * 512;  // only the image is kept
    u.inodes = facts.value("dir_inodes", int64_t{0});
    u.image_bytes = static_cast<int64_t>(st.st_size);
    return u;
  }

  void remove_storage(uint64_t id) override {
    {
      std::lock_guard lock(layers_mu_);
      release_holds_locked(id);
      // The layer itself: no snapshot is on it any more (remove refuses a parent), so its
      // image can go from its mount point.
      if (auto it = layers_.find(id); it != layers_.end()) {
        auto layer = std::move(it->second);
        layers_.erase(it);
        layer.mount->close();
      }
    }
    std::string fs = fs_dir(id);
    if (is_mount_point(fs)) unmount(fs);  // a killed run's mount, found by recover()
    OverlayLayoutSnapshotter::remove_storage(id);
  }

  void close_storage() override {
    std::lock_guard lock(layers_mu_);
    unmount_all();
  }

 private:
  struct Layer {
    std::unique_ptr<ErofsMount> mount;
    int users = 0;  // active snapshots and views that hold it
  };

  // Mounts every parent's image (those not mounted yet) and counts `child` as their user,
  // once. On failure the layers this call mounted are unmounted again.
  void hold_parents(uint64_t child, const std::vector<Record>& parents) {
    std::lock_guard lock(layers_mu_);
    if (parents.empty() || holds_.contains(child)) return;
    std::vector<uint64_t> held, mounted;
    try {
      for (const auto& p : parents) {
        if (mount_layer(p.id)) mounted.push_back(p.id);
        ++layers_[p.id].users;
        held.push_back(p.id);
      }
    } catch (...) {
      for (uint64_t id : held) --layers_[id].users;
      for (uint64_t id : mounted) {
        try {
          layers_[id].mount->close();
        } catch (const std::exception& e) {
          log::warn("erofs: {}", e.what());
        }
        layers_.erase(id);
      }
      throw;
    }
    holds_[child] = std::move(held);
  }

  // Mounts layer `id`'s image on its fs/ dir unless it is mounted; true when this call mounted it.
  bool mount_layer(uint64_t id) {
    if (layers_.contains(id)) return false;
    std::string fs = fs_dir(id), image = path_join(snapshot_dir(id), kImageFile);
    // A killed run's mount of the same image: ours from here on.
    if (is_mount_point(fs)) {
      log::info("unmounting {}, left mounted by an earlier run", fs);
      unmount(fs);
    }
    auto m = std::make_unique<ErofsMount>(image, fs);
    log::debug("erofs: layer {} mounted {} on {}", image, m->how(), fs);
    layers_[id].mount = std::move(m);
    return true;
  }

  void release_holds(uint64_t child) {
    std::lock_guard lock(layers_mu_);
    release_holds_locked(child);
  }

  void release_holds_locked(uint64_t child) {
    auto it = holds_.find(child);
    if (it == holds_.end()) return;
    for (uint64_t id : it->second)
      if (auto l = layers_.find(id); l != layers_.end()) --l->second.users;
    holds_.erase(it);
  }

  void unmount_all() noexcept {
    for (auto& [id, layer] : layers_) {
      try {
        layer.mount->close();
      } catch (const std::exception& e) {
        log::warn("erofs: {}", e.what());
      }
    }
    layers_.clear();
    holds_.clear();
  }

  std::mutex layers_mu_;  // remove_storage runs without the store's lock
  std::map<uint64_t, Layer> layers_;
  std::map<uint64_t, std::vector<uint64_t>> holds_;  // snapshot id → the layers it holds
};

}  // namespace

Availability probe_erofs_backend(const std::string& workdir) {
  Availability images = probe_erofs(workdir);
  if (!images.available) return images;
  try {
    ProbeDir dir(workdir, "erofs-overlay");
    std::string tree = dir.sub("tree"), lower = dir.sub("lower"), upper = dir.sub("upper"), work = dir.sub("work"),
                merged = dir.sub("merged");
    write_test_file(path_join(tree, "f"), "lower");
    std::string image = path_join(dir.path(), "lower.erofs");
    build_erofs_image(tree, image);
    ErofsMount layer(image, lower);
    {
      ScopedMount m({Mount{"overlay", "overlay", {"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}, merged);
      write_test_file(path_join(merged, "f"), "upper");  // forces a copy-up out of the EROFS layer
      m.close();
    }
    layer.close();
    if (read_file(path_join(upper, "f")) != "upper")
      return {false, "a write through a trial overlay on an EROFS layer did not copy the file up"};
    return {true, fmt::format("{}; trial overlay on it with copy-up on {}", images.reason, fs_type_name_or(workdir))};
  } catch (const Error& e) {
    return {false, fmt::format("trial overlay on an EROFS layer under {} failed: {}", workdir, e.what())};
  }
}

void register_erofs(Registry& registry) {
  BackendSpec spec;
  spec.name = kErofsName;
  spec.description = "overlayfs whose committed layers are EROFS images (mkfs.erofs), mounted read-only as its lower "
                     "layers (file-backed, else a loop device), as containerd's EROFS snapshotter";
  spec.caps = Capabilities{Granularity::kFile, true, true,
                           "erofs and overlay in the kernel, mkfs.erofs (erofs-utils), CAP_SYS_ADMIN; loop devices "
                           "on kernels before 6.12"};
  spec.probe = probe_erofs_backend;
  spec.in_default = false;  // a research backend: run when named (--backends erofs, all)
  spec.create = [](const std::string& root, const BackendOptions& options) -> std::unique_ptr<Snapshotter> {
    check_options(builtin_registry().get(kErofsName), options);
    return std::make_unique<ErofsSnapshotter>(root);
  };
  registry.add(std::move(spec));
}

}  // namespace cowbench::snap
