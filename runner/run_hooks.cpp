// The pieces `cowbench run` plugs into the matrix (see run_hooks.h).
#include "runner/run_hooks.h"

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
};

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
    img::ImportResult r;
    try {
      r = img::import_image(image, sn, io);
    } catch (Error& e) {
      throw Error(e.code(), fmt::format("importing {} into {}: {}", image.ref.text, backend, e.what()), e.sys_errno());
    }
    PreparedImage p;
    p.top = r.top;
    p.cached = r.reused;
    p.import_ns = r.reused ? 0 : r.total_ns;
    p.info = describe_import(image, r);
    return p;
  };
}

}  // namespace cowbench
