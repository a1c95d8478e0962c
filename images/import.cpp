// Imports an image into a snapshotter (see import.h).
#include "images/import.h"


#include <chrono>
#include <optional>

#include "common/clock.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "snapshotters/snapshot_keys.h"

namespace cowbench::img {
namespace {

std::optional<snap::Info> stat_if_exists(snap::Snapshotter& sn, const std::string& key) {
  try {
    return sn.stat(key);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound) return std::nullopt;
    throw;
  }
}

// Removes the active snapshot unless released (after a successful commit).
class ActiveGuard {
 public:
  ActiveGuard(snap::Snapshotter& sn, std::string key) : sn_(sn), key_(std::move(key)) {}
  ActiveGuard(const ActiveGuard&) = delete;
  ActiveGuard& operator=(const ActiveGuard&) = delete;
  ~ActiveGuard() {
    if (key_.empty()) return;
    try {
      sn_.remove(key_);
    } catch (const std::exception& e) {
      log::warn("could not remove the failed import's snapshot {}: {}", key_, e.what());
    }
  }
  void release() noexcept { key_.clear(); }

 private:
  snap::Snapshotter& sn_;
  std::string key_;
};

}  // namespace

ImportResult import_image(const Image& image, snap::Snapshotter& sn, const ImportOptions& options) {
  int64_t start = monotonic_ns();
  ImportResult out;
  for (const auto& k : snap::remove_stale_snapshots(sn)) log::info("removed {} left by a killed run", k);
  if (options.fresh) {
    for (size_t i = image.layers.size(); i-- > 0;) {
      const std::string& chain = image.layers[i].chain_id;
      if (!stat_if_exists(sn, chain)) continue;
      try {
        sn.remove(chain);
      } catch (const Error& e) {
        if (e.code() != Errc::kFailedPrecondition) throw;
        fail(Errc::kFailedPrecondition,
             "--fresh: cannot remove the cached layer {} of {}: {} (remove the containers or images on it first)", chain,
             image.ref.text, e.what());
      }
    }
  }

  std::string parent;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const LayerInfo& l = image.layers[i];
    LayerImport li;
    li.digest = l.blob.digest;
    li.diff_id = l.diff_id;
    li.chain_id = l.chain_id;
    if (auto info = stat_if_exists(sn, l.chain_id)) {
      if (info->kind != snap::Kind::kCommitted || info->parent != parent)
        fail(Errc::kFailedPrecondition, "{}: snapshot {} exists but is not the committed layer {} on '{}' ({} on '{}')",
             sn.backend(), l.chain_id, i + 1, parent, snap::kind_name(info->kind), info->parent);
      li.reused = true;
      parent = l.chain_id;
      out.layers.push_back(std::move(li));
      continue;
    }

    std::string key = snap::mint_key(snap::KeyKind::kImport, l.chain_id.substr(7, 16));
    snap::Labels labels = {{"cowbench.image.diff-id", l.diff_id},
                           {"cowbench.image.layer", l.blob.digest.empty() ? l.source : l.blob.digest}};
    int64_t t0 = monotonic_ns();
    auto mounts = sn.prepare(key, parent, labels);
    ActiveGuard guard(sn, key);
    int64_t t1 = monotonic_ns();
    {
      TempDir target(options.scratch_dir, "import");
      ScopedMount mounted(mounts, target.path());
      int64_t t2 = monotonic_ns();
      auto reader = image.read_layer(i, options.limits);
      li.stats = apply_layer(*reader, target.path(), options.apply);
      int64_t t3 = monotonic_ns();
      mounted.close();
      int64_t t4 = monotonic_ns();
      li.mount_ns = t2 - t1;
      li.apply_ns = t3 - t2;
      li.unmount_ns = t4 - t3;
    }
    int64_t t5 = monotonic_ns();
    try {
      sn.commit(l.chain_id, key, labels);
    } catch (const Error& e) {
      // Another import committed the same layer meanwhile: its content is the same.
      auto info = e.code() == Errc::kAlreadyExists ? stat_if_exists(sn, l.chain_id) : std::nullopt;
      if (!info || info->kind != snap::Kind::kCommitted) throw;
      li.reused = true;
    }
    if (!li.reused) guard.release();
    li.prepare_ns = t1 - t0;
    li.commit_ns = monotonic_ns() - t5;
    out.uncompressed_bytes += li.stats.digests.uncompressed_size;
    log::info("{}: layer {}/{} {} applied in {:.3f}s ({} entries, {} MB)", sn.backend(), i + 1, image.layers.size(),
              l.chain_id.substr(0, 19), li.apply_ns / 1e9, li.stats.entries, li.stats.digests.uncompressed_size >> 20);
    parent = l.chain_id;
    out.layers.push_back(std::move(li));
  }
  out.top = parent;
  out.reused = !out.layers.empty();
  for (const auto& l : out.layers) out.reused = out.reused && l.reused;
  out.total_ns = monotonic_ns() - start;
  return out;
}

}  // namespace cowbench::img
