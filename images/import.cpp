// Imports an image into a snapshotter (see import.h).
#include "images/import.h"


#include <chrono>
#include <optional>

#include "common/clock.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "images/digest.h"
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

constexpr const char* kSkippedDevicesLabel = "cowbench.image.skipped-devices";
constexpr const char* kSkippedPathsLabel = "cowbench.image.skipped-device-paths";

// The skipped device nodes a committed layer recorded in its labels.
void skipped_from_labels(const snap::Labels& labels, LayerImport& li) {
  auto n = labels.find(kSkippedDevicesLabel);
  if (n == labels.end()) return;
  try {
    li.skipped_devices = std::stoull(n->second);
  } catch (const std::exception&) {
    return;  // a label from elsewhere: not ours to trust
  }
  auto p = labels.find(kSkippedPathsLabel);
  if (p == labels.end()) return;
  std::string_view rest = p->second;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    li.skipped_device_paths.emplace_back(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
}

}  // namespace

std::string layer_snapshot_name(const std::string& chain_id, DevicePolicy devices) {
  if (devices != DevicePolicy::kAllow) return chain_id;
  return sha256_digest(chain_id + " devices=" + device_policy_name(devices));
}

ImportResult import_image(const Image& image, snap::Snapshotter& sn, const ImportOptions& options) {
  int64_t start = monotonic_ns();
  ImportResult out;
  for (const auto& k : snap::remove_stale_snapshots(sn)) log::info("removed {} left by a killed run", k);
  if (options.fresh) {
    for (size_t i = image.layers.size(); i-- > 0;) {
      const std::string chain = layer_snapshot_name(image.layers[i].chain_id, options.apply.devices);
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
    li.chain_id = layer_snapshot_name(l.chain_id, options.apply.devices);
    if (auto info = stat_if_exists(sn, li.chain_id)) {
      if (info->kind != snap::Kind::kCommitted || info->parent != parent)
        fail(Errc::kFailedPrecondition, "{}: snapshot {} exists but is not the committed layer {} on '{}' ({} on '{}')",
             sn.backend(), li.chain_id, i + 1, parent, snap::kind_name(info->kind), info->parent);
      li.reused = true;
      skipped_from_labels(info->labels, li);
      parent = li.chain_id;
      out.layers.push_back(std::move(li));
      continue;
    }

    std::string key = snap::mint_key(snap::KeyKind::kImport, li.chain_id.substr(7, 16));
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
      li.skipped_devices = li.stats.skipped_devices;
      li.skipped_device_paths = li.stats.skipped_device_paths;
      int64_t t3 = monotonic_ns();
      mounted.close();
      int64_t t4 = monotonic_ns();
      li.mount_ns = t2 - t1;
      li.apply_ns = t3 - t2;
      li.unmount_ns = t4 - t3;
    }
    if (li.skipped_devices > 0) {
      labels[kSkippedDevicesLabel] = std::to_string(li.skipped_devices);
      std::string paths;
      for (const auto& p : li.skipped_device_paths) paths += (paths.empty() ? "" : "\n") + p;
      labels[kSkippedPathsLabel] = paths;
    }
    int64_t t5 = monotonic_ns();
    try {
      sn.commit(li.chain_id, key, labels);
    } catch (const Error& e) {
      // Another import committed the same layer meanwhile: its content is the same.
      auto info = e.code() == Errc::kAlreadyExists ? stat_if_exists(sn, li.chain_id) : std::nullopt;
      if (!info || info->kind != snap::Kind::kCommitted) throw;
      li.reused = true;
    }
    if (!li.reused) guard.release();
    li.prepare_ns = t1 - t0;
    li.commit_ns = monotonic_ns() - t5;
    out.uncompressed_bytes += li.stats.digests.uncompressed_size;
    log::info("{}: layer {}/{} {} applied in {:.3f}s ({} entries, {} MB)", sn.backend(), i + 1, image.layers.size(),
              li.chain_id.substr(0, 19), li.apply_ns / 1e9, li.stats.entries, li.stats.digests.uncompressed_size >> 20);
    parent = li.chain_id;
    out.layers.push_back(std::move(li));
  }
  out.top = parent;
  out.reused = !out.layers.empty();
  for (const auto& l : out.layers) {
    out.reused = out.reused && l.reused;
    out.skipped_devices += l.skipped_devices;
    for (const auto& p : l.skipped_device_paths)
      if (out.skipped_device_paths.size() < kMaxNamedDevices) out.skipped_device_paths.push_back(p);
  }
  out.total_ns = monotonic_ns() - start;
  return out;
}

}  // namespace cowbench::img
