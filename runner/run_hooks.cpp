// The pieces `cowbench run` plugs into the matrix (see run_hooks.h).
#include "runner/run_hooks.h"

#include <atomic>
#include <chrono>
#include <mutex>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "images/image.h"
#include "images/import.h"

namespace cowbench {

namespace {

// The image is opened (and a synthetic one generated) once per run, on first use, and
// shared by every backend's import.
struct OpenedImage {
  std::once_flag once;
  std::unique_ptr<img::Image> image;
  std::atomic<bool> told_skipped{false};  // the skipped device nodes are said once per run
};

// "skipped N device nodes (/dev/console, /dev/null, ...); --devices allow to keep them"
std::string skipped_devices_note(const img::ImportResult& r) {
  std::string names;
  for (const auto& p : r.skipped_device_paths) names += (names.empty() ? "" : ", ") + p;
  if (r.skipped_devices > r.skipped_device_paths.size()) names += ", ...";
  return fmt::format("skipped {} device node{} ({}); --devices allow to keep them", r.skipped_devices,
                     r.skipped_devices == 1 ? "" : "s", names);
}

nlohmann::json describe_import(const img::Image& image, const img::ImportResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const img::LayerImport& l : r.layers) {
    layers.push_back({{"chain_id", l.chain_id},
                      {"diff_id", l.diff_id},
                      {"reused", l.reused},
                      {"apply_ns", l.apply_ns},
                      {"commit_ns", l.commit_ns},
                      {"files", l.stats.files},
                      {"bytes", l.stats.file_bytes}});
  }
  return {{"ref", image.ref.text},
          {"format", image.format},
          {"manifest", image.manifest.digest},
          {"platform", image.platform.str()},
          {"uncompressed_bytes", r.uncompressed_bytes},
          {"skipped_devices", r.skipped_devices},
          {"layers", std::move(layers)}};
}

}  // namespace

std::function<PreparedImage(snap::Snapshotter&, const std::string&)> make_image_importer(const RunConfig& cfg) {
  auto opened = std::make_shared<OpenedImage>();
  img::ImageRef ref = img::parse_ref(cfg.image);  // a malformed reference is an error before any work
  std::string cache_dir = path_join(cfg.workdir, "images");
  std::string scratch = path_join(cfg.workdir, "import-mnt");
  img::OpenOptions oo{cfg.platform};
  bool fresh = cfg.fresh;
  img::DevicePolicy devices = img::parse_device_policy(cfg.devices);
  return [=](snap::Snapshotter& sn, const std::string& backend) -> PreparedImage {
    std::call_once(opened->once, [&] {
      if (ref.kind == img::ImageRef::Kind::kSynth)
        log::info("generating synthetic image {} (cached in {})", ref.text, cache_dir);
      opened->image = std::make_unique<img::Image>(img::open_image(ref, cache_dir, oo));
    });
    const img::Image& image = *opened->image;
    make_dirs(scratch);
    img::ImportOptions io;
    io.fresh = fresh;
    io.scratch_dir = scratch;
    io.apply.devices = devices;
    img::ImportResult r;
    try {
      r = img::import_image(image, sn, io);
    } catch (Error& e) {
      throw Error(e.code(), fmt::format("importing {} into {}: {}", image.ref.text, backend, e.what()), e.sys_errno());
    }
    if (r.skipped_devices > 0 && !opened->told_skipped.exchange(true))
      fmt::print(stderr, "cowbench: {}: {}\n", image.ref.text, skipped_devices_note(r));
    PreparedImage p;
    p.top = r.top;
    p.devices = img::device_policy_name(devices);
    p.skipped_devices = r.skipped_devices;
    p.cached = r.reused;
    p.import_ns = r.reused ? 0 : r.total_ns;
    p.info = describe_import(image, r);
    return p;
  };
}

}  // namespace cowbench
