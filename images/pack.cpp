// Builds an OCI image layout from tarballs and directories (see pack.h).
#include "images/pack.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "images/dir_layer.h"
#include "images/image.h"
#include "images/layout_writer.h"

namespace cowbench::img {
namespace {

// Copies the entries of a tar layer into `out` under the device policy; returns how many it
// wrote. Skipped device nodes are counted in `layer`, the first few named in `result`.
uint64_t copy_tar_layer(const std::string& file, LayerWriter& out, DevicePolicy devices, PackedLayer& layer,
                        PackResult& result) {
  LayerExpect expect;
  expect.name = file;
  LayerReader r(open_file_source(file), expect);
  TarEntry e;
  uint64_t entries = 0;
  while (r.next(e)) {
    if (e.type == EntryType::kChar || e.type == EntryType::kBlock) {
      if (devices == DevicePolicy::kRefuse)
        r.fail_entry(e.path, Errc::kInvalidInput,
                     fmt::format("{} device {}:{} refused (device policy: refuse; use skip or allow)",
                                 e.type == EntryType::kChar ? "character" : "block", e.dev_major, e.dev_minor));
      if (devices == DevicePolicy::kSkip) {
        ++layer.skipped_devices;
        if (result.skipped_device_paths.size() < kMaxNamedDevices) result.skipped_device_paths.push_back("/" + e.path);
        continue;
      }
    }
    out.add(e);
    ++entries;
    if (e.type != EntryType::kFile) continue;
    // Holes of sparse files are not handed out: written as zeros, so that sizes add up.
    static const std::vector<char> zeros(1 << 16, '\0');
    uint64_t pos = 0;
    auto fill = [&](uint64_t to) {
      for (; pos < to; pos += std::min<uint64_t>(to - pos, zeros.size()))
        out.data(zeros.data(), std::min<uint64_t>(to - pos, zeros.size()));
    };
    r.read_data([&](uint64_t off, const char* p, size_t n) {
      fill(off);
      out.data(p, n);
      pos = off + n;
    });
    fill(e.size);
  }
  r.finish();
  return entries;
}

bool is_empty_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) fail_sys("open directory {}", path);
  bool empty = true;
  while (dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") empty = false;
  }
  ::closedir(d);
  return empty;
}

}  // namespace

PackResult pack_image(const PackOptions& o) {
  if (o.layers.empty()) fail(Errc::kInvalidInput, "image pack needs at least one --layer (a tar file or a directory)");
  if (o.out.empty()) fail(Errc::kInvalidInput, "image pack needs --out DIR");
  struct stat st {};
  bool out_exists = ::stat(o.out.c_str(), &st) == 0;
  if (out_exists && (!S_ISDIR(st.st_mode) || !is_empty_dir(o.out)))
    fail(Errc::kAlreadyExists, "--out {}: exists and is not an empty directory (image pack writes a new layout)", o.out);
  std::vector<bool> is_dir;
  for (const auto& l : o.layers) {
    struct stat ls {};
    if (::stat(l.c_str(), &ls) != 0)
      fail(Errc::kInvalidInput, "--layer {}: {}", l, errno == ENOENT ? "does not exist" : std::strerror(errno));
    if (!S_ISDIR(ls.st_mode) && !S_ISREG(ls.st_mode))
      fail(Errc::kInvalidInput, "--layer {}: neither a tar file nor a directory", l);
    is_dir.push_back(S_ISDIR(ls.st_mode));
  }

  std::string out = o.out;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  size_t slash = out.rfind('/');
  std::string parent = slash == std::string::npos ? std::string(".") : out.substr(0, std::max<size_t>(slash, 1));
  struct stat ps {};
  if (::stat(parent.c_str(), &ps) != 0 || !S_ISDIR(ps.st_mode))
    fail(Errc::kInvalidInput, "--out {}: its parent directory {} does not exist", o.out, parent);
  TempDir tmp(parent, ".cowbench-pack");
  std::string staging = path_join(tmp.path(), "image");
  PackResult result;
  result.dir = o.out;
  LayoutWriter layout(staging);
  for (size_t i = 0; i < o.layers.size(); ++i) {
    PackedLayer pl;
    pl.source = o.layers[i];
    pl.directory = is_dir[i];
    auto w = layout.new_layer(o.compression);
    if (pl.directory) {
      DirLayerOptions dopt;
      dopt.devices = o.devices;
      DirLayerStats ds = write_dir_layer(pl.source, *w, dopt);
      pl.entries = ds.entries;
      pl.skipped_devices = ds.skipped_devices;
      for (const auto& p : ds.skipped_device_paths)
        if (result.skipped_device_paths.size() < kMaxNamedDevices) result.skipped_device_paths.push_back(p);
      if (ds.skipped_sockets > 0) log::warn("--layer {}: left out {} sockets (a tar cannot hold them)", pl.source, ds.skipped_sockets);
    } else {
      pl.entries = copy_tar_layer(pl.source, *w, o.devices, pl, result);
    }
    LayerWriter::Result r = layout.add_layer(*w);
    pl.digest = r.digest;
    pl.diff_id = r.diff_id;
    pl.size = r.size;
    pl.uncompressed_size = r.uncompressed_size;
    result.skipped_devices += pl.skipped_devices;
    result.layers.push_back(std::move(pl));
  }
  nlohmann::json config = {
      {"config", {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}}},
      {"history", nlohmann::json::array()}};
  for (const auto& l : result.layers)
    config["history"].push_back({{"created_by", fmt::format("cowbench image pack --layer {}", l.source)}});
  result.manifest_digest = layout.finish(config, host_platform(), o.tag).digest;
  if (out_exists && ::rmdir(out.c_str()) != 0) fail_sys("remove the empty {}", out);
  if (::rename(staging.c_str(), out.c_str()) != 0) fail_sys("rename {} to {}", staging, out);
  return result;
}

}  // namespace cowbench::img
